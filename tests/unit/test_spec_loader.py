"""The spec loader builds the expected model from every accepted shape of the format."""

from __future__ import annotations

import dataclasses
import sys
import textwrap
from pathlib import Path

import pytest

from dagu.errors import NotFound, SpecError
from dagu.spec import load_dag, load_dag_text, parse_params
from dagu.spec.model import (
    ContinueOn,
    CronEntry,
    DagType,
    Output,
    Param,
    Parallel,
    Precondition,
    RepeatPolicy,
    RetryPolicy,
)


def write(tmp_path: Path, text: str, name: str = "dag.yaml") -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return path


def load(tmp_path: Path, text: str, **kwargs):
    return load_dag(write(tmp_path, text), **kwargs)


def names_and_depends(dag) -> list[tuple[str, tuple[str, ...]]]:
    return [(s.name, s.depends) for s in dag.steps]


# --- file level ---------------------------------------------------------------------------


def test_dag_name_defaults_to_file_stem_and_location_points_at_the_file(tmp_path):
    dag = load(tmp_path, "steps:\n  - echo hi\n")
    assert dag.name == "dag"
    assert dag.location.file == str(tmp_path / "dag.yaml")
    assert dag.source == "steps:\n  - echo hi\n"


def test_name_key_and_name_argument_override_the_stem(tmp_path):
    path = write(tmp_path, "name: from-key\nsteps: [echo hi]\n")
    assert load_dag(path).name == "from-key"
    assert load_dag(path, name="from-arg").name == "from-arg"


def test_missing_file_raises_not_found(tmp_path):
    with pytest.raises(NotFound):
        load_dag(tmp_path / "nope.yaml")


def test_empty_file_loads_as_a_dag_without_steps(tmp_path):
    dag = load(tmp_path, "")
    assert dag.steps == ()
    assert dag.dotenv == (".env",)


def test_load_dag_text_uses_the_file_argument_for_name_and_errors():
    dag = load_dag_text("steps: [echo a]\n", "/x/etl.yaml")
    assert dag.name == "etl"
    with pytest.raises(SpecError) as info:
        load_dag_text("steps: [{name: a, bogus: 1}]\n", "/x/etl.yaml")
    assert info.value.file == "/x/etl.yaml"


def test_later_documents_become_local_dags_by_name(tmp_path):
    dag = load(
        tmp_path,
        """\
        steps:
          - call: child
        ---
        ---
        name: child
        params: X=1
        steps:
          - echo child
        """,
    )
    assert list(dag.local_dags) == ["child"]
    child = dag.local_dags["child"]
    assert child.params == (Param("X", "1"),)
    assert child.steps[0].commands == ("echo child",)
    assert child.steps[0].location.line == 8
    assert "name: child" in child.source and "call: child" not in child.source
    assert dag.steps[0].type == "dag"


def test_yaml_anchors_and_merge_keys_are_resolved(tmp_path):
    dag = load(
        tmp_path,
        """\
        steps:
          - &first
            name: a
            command: echo a
            retry_policy: {limit: 2, interval_sec: 1}
          - <<: *first
            name: b
        """,
    )
    assert dag.step("b").retry_policy == RetryPolicy(2, 1.0)
    assert dag.step("b").commands == ("echo a",)


# --- key spellings ------------------------------------------------------------------------


def test_camel_case_and_snake_case_keys_load_to_the_same_model(tmp_path):
    snake = """\
        max_active_runs: 2
        max_active_steps: 3
        timeout_sec: 60
        delay_sec: 1
        restart_wait_sec: 2
        max_clean_up_time_sec: 9
        hist_retention_days: 7
        skip_if_successful: true
        log_dir: /logs
        working_dir: /work
        handler_on: {exit: {command: echo bye}}
        mail_on: {failure: true}
        run_config: {disable_param_edit: true}
        steps:
          - name: a
            command: "false"
            continue_on: {exit_code: [1, 2], mark_success: true}
            retry_policy: {limit: 2, interval_sec: 5, max_interval_sec: 30, exit_code: 3}
            working_dir: sub
            signal_on_stop: SIGINT
            mail_on_error: true
            timeout_sec: 10
            log_output: merged
        """
    camel = (
        snake.replace("max_active_runs", "maxActiveRuns")
        .replace("max_active_steps", "maxActiveSteps")
        .replace("timeout_sec", "timeoutSec")
        .replace("delay_sec", "delaySec")
        .replace("restart_wait_sec", "restartWaitSec")
        .replace("max_clean_up_time_sec", "maxCleanUpTimeSec")
        .replace("hist_retention_days", "histRetentionDays")
        .replace("skip_if_successful", "skipIfSuccessful")
        .replace("log_dir", "logDir")
        .replace("working_dir: /work", "workingDir: /work")
        .replace("working_dir: sub", "dir: sub")
        .replace("handler_on", "handlerOn")
        .replace("mail_on_error", "mailOnError")
        .replace("mail_on", "mailOn")
        .replace("run_config", "runConfig")
        .replace("disable_param_edit", "disableParamEdit")
        .replace("continue_on", "continueOn")
        .replace("exit_code", "exitCode")
        .replace("mark_success", "markSuccess")
        .replace("retry_policy", "retryPolicy")
        .replace("max_interval_sec", "maxIntervalSec")
        .replace("interval_sec", "intervalSec")
        .replace("signal_on_stop", "signalOnStop")
        .replace("log_output", "logOutput")
    )
    assert "_" not in camel.replace("SIGINT", "")
    a = load(tmp_path, snake)
    b = load(tmp_path, camel)
    assert (a.max_active_runs, a.max_active_steps, a.timeout_sec, a.delay_sec) == (2, 3, 60, 1)
    assert (a.restart_wait_sec, a.max_clean_up_time_sec, a.hist_retention_days) == (2, 9, 7)
    assert a.skip_if_successful and a.log_dir == "/logs" and a.working_dir == "/work"
    assert dict(a.mail_on) == {"failure": True} and dict(a.run_config) == {"disable_param_edit": True}
    step = a.steps[0]
    assert step.continue_on == ContinueOn(exit_codes=(1, 2), mark_success=True)
    assert step.retry_policy == RetryPolicy(2, 5.0, 1.0, 30.0, (3,))
    assert (step.working_dir, step.signal_on_stop, step.mail_on_error, step.timeout_sec) == ("sub", "SIGINT", True, 10)
    assert step.log_output == "merged"
    assert a.handler_on.exit.commands == ("echo bye",)
    # Handler locations differ by a column ("handlerOn" is shorter), so compare them apart.
    assert b.handler_on.exit.commands == ("echo bye",)
    assert dataclasses.replace(a, source="", handler_on=None) == dataclasses.replace(b, source="", handler_on=None)


def test_accepted_2x_root_keys_are_kept_in_extras(tmp_path):
    dag = load(
        tmp_path,
        """\
        consts: [{A: 1}]
        labels: {team: data}
        catchup_window: 2d12h
        overlap_policy: latest
        tools: [jq/jq@1.7]
        otel: {enabled: true}
        steps: [echo a]
        """,
    )
    assert dag.extras["consts"] == ({"A": 1},)
    assert dag.extras["labels"] == {"team": "data"}
    assert dag.extras["tools"] == ("jq/jq@1.7",)
    assert dag.catchup_window_s == 2.5 * 86400
    assert dag.overlap_policy == "latest"


# --- steps forms, names, chain ------------------------------------------------------------


def test_auto_names_use_the_prefix_of_the_step_kind_and_its_position(tmp_path):
    dag = load(
        tmp_path,
        """\
        steps:
          - echo a
          - script: echo b
          - type: http
            command: GET http://localhost
          - call: other
          - command: |
              echo multi
              echo line
          - container: {image: alpine}
            command: echo c
          - call: other
            parallel: [a, b]
          - id: only_id
            command: echo d
        """,
    )
    assert [s.name for s in dag.steps] == [
        "cmd_1", "script_2", "http_3", "dag_4", "script_5", "docker_6", "parallel_7", "cmd_8",
    ]  # fmt: skip
    assert dag.step("script_5").script == "echo multi\necho line\n"
    assert dag.step("script_5").commands == ()
    assert dag.step("docker_6").type == "docker"
    assert dag.step("parallel_7").type == "parallel"


def test_auto_name_skips_a_name_already_taken(tmp_path):
    dag = load(tmp_path, "steps:\n  - name: cmd_2\n    command: echo a\n  - echo b\n")
    assert [s.name for s in dag.steps] == ["cmd_2", "cmd_3"]


def test_chain_mode_injects_the_previous_step_and_extends_explicit_depends(tmp_path):
    dag = load(
        tmp_path,
        """\
        steps:
          - name: a
            command: echo a
          - name: b
            command: echo b
          - name: c
            depends: [a]
            command: echo c
          - name: d
            depends: []
            command: echo d
          - name: e
            command: echo e
        """,
    )
    assert names_and_depends(dag) == [("a", ()), ("b", ("a",)), ("c", ("a", "b")), ("d", ()), ("e", ("d",))]
    assert dag.step("d").explicit_no_depends is True
    assert dag.type == DagType.CHAIN


def test_chain_groups_depend_on_the_previous_entry_and_are_depended_on_as_a_whole(tmp_path):
    dag = load(
        tmp_path,
        """\
        steps:
          - name: first
            command: echo 1
          - - name: g1
              command: echo g1
            - name: g2
              command: echo g2
          - name: last
            command: echo last
        """,
    )
    assert names_and_depends(dag) == [("first", ()), ("g1", ("first",)), ("g2", ("first",)), ("last", ("g1", "g2"))]


def test_graph_mode_uses_only_explicit_depends_and_rewrites_ids_to_names(tmp_path):
    dag = load(
        tmp_path,
        """\
        type: graph
        steps:
          - name: extract data
            id: extract
            command: echo a
          - name: b
            command: echo b
          - name: c
            depends: extract
            command: echo c
        """,
    )
    assert names_and_depends(dag) == [("extract data", ()), ("b", ()), ("c", ("extract data",))]
    assert dag.step("extract data").id == "extract"


def test_mapping_form_names_steps_by_key_without_chain_edges(tmp_path):
    dag = load(
        tmp_path,
        """\
        steps:
          one:
            command: echo 1
          two:
            command: echo 2
            depends: one
        """,
    )
    assert names_and_depends(dag) == [("one", ()), ("two", ("one",))]


def test_command_list_gives_one_entry_per_item_and_string_one_entry(tmp_path):
    dag = load(
        tmp_path,
        """\
        type: graph
        steps:
          - name: a
            command: [echo 1, "echo 2"]
          - name: b
            command: python3
            script: print(1)
            shell: [bash, -x]
            shell_packages: [jq]
        """,
    )
    assert dag.step("a").commands == ("echo 1", "echo 2")
    b = dag.step("b")
    assert (b.commands, b.script, b.shell, b.shell_packages) == (("python3",), "print(1)", "bash -x", ("jq",))


# --- executor resolution ------------------------------------------------------------------


def test_executor_resolution_follows_the_documented_order(tmp_path):
    dag = load(
        tmp_path,
        """\
        type: graph
        container: {image: python:3.12}
        steps:
          - name: explicit
            type: k8s
            config: {image: busybox}
          - name: legacy
            executor: {type: http, config: {timeout: 5, skipTLSVerify: true}}
            command: GET http://x
          - name: legacy_string
            executor: jq
            command: .a
          - name: sub
            call: child
          - name: own_container
            container: other
            command: echo
          - name: dag_container
            command: echo
          - name: with_alias
            type: mail
            with: {to: a@b.c, from: x@y.z}
        """,
    )
    types = {s.name: s.type for s in dag.steps}
    assert types == {
        "explicit": "kubernetes", "legacy": "http", "legacy_string": "jq", "sub": "dag",
        "own_container": "docker", "dag_container": "docker", "with_alias": "mail",
    }  # fmt: skip
    assert dict(dag.step("legacy").config) == {"timeout": 5, "skip_tls_verify": True}
    assert dag.step("own_container").container == "other"
    assert dag.container["image"] == "python:3.12"


def test_dag_ssh_makes_untyped_steps_ssh_steps(tmp_path):
    dag = load(tmp_path, "ssh: {user: me, host: example.com, port: 22}\nsteps: [uptime]\n")
    assert dag.steps[0].type == "ssh"
    assert dag.ssh["host"] == "example.com"


def test_unknown_type_without_command_is_accepted(tmp_path):
    dag = load(tmp_path, "steps:\n  - type: custom-thing\n    config: {anything: 1}\n")
    assert dag.steps[0].type == "custom-thing"
    assert dag.steps[0].config["anything"] == 1


def test_run_string_is_an_alias_of_call_and_params_are_normalised(tmp_path):
    dag = load(
        tmp_path,
        """\
        type: graph
        steps:
          - name: a
            run: child
            params: {B: 2, A: "x y"}
          - name: b
            call: child
            params: "P=1 Q=2"
          - name: c
            call: child
            params: [X=1, {Y: true}]
        """,
    )
    assert dag.step("a").call == "child"
    assert dag.step("a").params == 'A="x y" B=2'
    assert parse_params(dag.step("a").params) == [Param("A", "x y"), Param("B", "2")]
    assert dag.step("b").params == "P=1 Q=2"
    assert dag.step("c").params == "X=1 Y=true"


def test_parallel_forms(tmp_path):
    dag = load(
        tmp_path,
        """\
        type: graph
        steps:
          - {name: expr, call: w, parallel: "${ITEMS}"}
          - {name: items, call: w, parallel: [a, 1, {k: v}]}
          - {name: obj, call: w, parallel: {items: "${X}", max_concurrent: 3}}
          - {name: camel, call: w, parallel: {items: [a], maxConcurrent: 1}}
        """,
    )
    assert dag.step("expr").parallel == Parallel(expression="${ITEMS}")
    assert dag.step("items").parallel == Parallel(items=("a", "1", {"k": "v"}))
    assert dag.step("obj").parallel == Parallel(expression="${X}", max_concurrent=3)
    assert dag.step("camel").parallel == Parallel(items=("a",), max_concurrent=1)


# --- params, env, dotenv, schedule --------------------------------------------------------


def test_parse_params_tokenises_like_dagu():
    assert parse_params('first "second arg" NAME=dflt D=`date +%s` E="a \\"q\\""') == [
        Param("1", "first", True),
        Param("2", "second arg", True),
        Param("NAME", "dflt"),
        Param("D", "`date +%s`"),
        Param("E", 'a "q"'),
    ]
    assert parse_params("") == []
    assert parse_params('{"A": 1, "B": "x"}') == [Param("A", "1"), Param("B", "x")]
    assert parse_params("K=$HOME") == [Param("K", "$HOME")]


@pytest.mark.parametrize(
    ("yaml_params", "expected", "text"),
    [
        ('first "second arg" NAME=dflt', [Param("1", "first", True), Param("2", "second arg", True), Param("NAME", "dflt")], 'first "second arg" NAME=dflt'),
        ('[A, {C: 3, B: 2}, "D=4"]', [Param("1", "A", True), Param("B", "2"), Param("C", "3"), Param("D", "4")], "A B=2 C=3 D=4"),
        ("{Z: 1, A: x y}", [Param("A", "x y"), Param("Z", "1")], 'A="x y" Z=1'),
        ("[{name: env, type: string, default: dev}]", [Param("env", "dev")], "env=dev"),
    ],
)
def test_params_shapes(tmp_path, yaml_params, expected, text):
    dag = load(tmp_path, f"params: {yaml_params}\nsteps: [echo]\n")
    assert list(dag.params) == expected
    assert dag.params_text == text
    assert parse_params(dag.params_text) == expected


@pytest.mark.parametrize(
    "env",
    [
        "{A: 1, B: two, C: true}",
        "[{A: 1}, {B: two}, {C: true}]",
        '["A=1", "B=two", "C=true"]',
        '[{A: 1}, "B=two", {C: true}]',
    ],
)
def test_env_shapes_load_in_source_order_with_stringified_values(tmp_path, env):
    dag = load(tmp_path, f"env: {env}\nsteps:\n  - name: s\n    command: echo\n    env: {env}\n")
    assert dag.env == (("A", "1"), ("B", "two"), ("C", "true"))
    assert dag.steps[0].env == dag.env


def test_env_values_stay_unevaluated(tmp_path):
    dag = load(tmp_path, 'env:\n  - OUT: "${HOME}/x"\n  - NOW: "`date`"\n  - EMPTY=\nsteps: [echo]\n')
    assert dag.env == (("OUT", "${HOME}/x"), ("NOW", "`date`"), ("EMPTY", ""))


def test_dotenv_string_or_list(tmp_path):
    assert load(tmp_path, "dotenv: .env.local\n").dotenv == (".env.local",)
    assert load(tmp_path, "dotenv: [a.env, b.env]\n").dotenv == ("a.env", "b.env")
    assert load(tmp_path, "dotenv: []\n").dotenv == ()


def test_schedule_forms_and_timezone_prefixes(tmp_path):
    dag = load(tmp_path, 'schedule: "CRON_TZ=Asia/Tokyo 0 9 * * 1-5"\n')
    assert dag.schedule.start == (CronEntry("0 9 * * 1-5", "Asia/Tokyo", "CRON_TZ=Asia/Tokyo 0 9 * * 1-5"),)
    dag = load(tmp_path, 'schedule: ["0 1 * * *", "TZ=UTC 30 2 * * *"]\n')
    assert [(e.expression, e.tz) for e in dag.schedule.start] == [("0 1 * * *", None), ("30 2 * * *", "UTC")]
    dag = load(tmp_path, 'schedule:\n  start: "0 8 * * *"\n  stop: ["0 18 * * *"]\n  restart: "0 12 * * *"\n')
    assert [e.expression for e in dag.schedule.stop] == ["0 18 * * *"]
    assert dag.schedule.restart[0].expression == "0 12 * * *"


def test_croniter_is_imported_only_when_a_schedule_exists(tmp_path):
    import subprocess

    path = write(tmp_path, "steps: [echo a]\n")
    code = (
        "import sys; from dagu.spec import load_dag; "
        f"load_dag({str(path)!r}); print('croniter' in sys.modules, "
        "any(m.split('.')[0] in ('grpc', 'uvicorn', 'starlette', 'docker', 'prometheus_client') for m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["False", "False"]


# --- handlers and policies ----------------------------------------------------------------


def test_handlers_are_steps_named_after_their_node(tmp_path):
    dag = load(
        tmp_path,
        """\
        handler_on:
          init: {command: echo init}
          success: {command: echo ok}
          failure: {command: echo bad}
          cancel: {command: echo stop}
          exit: {command: echo bye, name: ignored}
          wait: {command: echo wait}
        steps: [echo a]
        """,
    )
    hooks = {key: step.name for key, step in dag.handler_on.items()}
    assert hooks == {
        "init": "onInit", "success": "onSuccess", "failure": "onFailure",
        "abort": "onCancel", "exit": "onExit", "wait": "onWait",
    }  # fmt: skip
    assert dag.handler_on.abort.commands == ("echo stop",)


def test_preconditions_forms(tmp_path):
    dag = load(
        tmp_path,
        """\
        preconditions: "test -f x"
        steps:
          - name: a
            command: echo
            preconditions:
              - "test -d y"
              - condition: "`date +%d`"
                expected: "re:0[1-9]"
              - {command: "$X", expected: "1", negate: true}
          - name: b
            command: echo
            precondition: {condition: "true"}
        """,
    )
    assert dag.preconditions == (Precondition("test -f x"),)
    assert dag.step("a").preconditions == (
        Precondition("test -d y"),
        Precondition("`date +%d`", "re:0[1-9]"),
        Precondition("$X", "1", True),
    )
    assert dag.step("b").preconditions == (Precondition("true"),)


def test_continue_on_forms(tmp_path):
    dag = load(
        tmp_path,
        """\
        type: graph
        steps:
          - {name: a, command: x, continue_on: skipped}
          - {name: b, command: x, continue_on: failed}
          - {name: c, command: x, continue_on: {failure: true, output: "re:^warn"}}
          - {name: d, command: x, continueOn: {failed: true, output: [a, b], exitCode: 4}}
        """,
    )
    assert dag.step("a").continue_on == ContinueOn(skipped=True)
    assert dag.step("b").continue_on == ContinueOn(failure=True)
    assert dag.step("c").continue_on == ContinueOn(failure=True, output=("re:^warn",))
    assert dag.step("d").continue_on == ContinueOn(failure=True, output=("a", "b"), exit_codes=(4,))


def test_retry_policy_values(tmp_path):
    dag = load(
        tmp_path,
        """\
        type: graph
        steps:
          - {name: a, command: x, retry_policy: {limit: "${N}", interval_sec: "$WAIT"}}
          - {name: b, command: x, retry_policy: {limit: "3", interval_sec: 1.5, backoff: 1.5}}
          - {name: c, command: x, retry_policy: {limit: 1, interval_sec: 1, backoff: true, exit_code: [1, 2]}}
        """,
    )
    assert dag.step("a").retry_policy == RetryPolicy("${N}", "$WAIT")
    assert dag.step("b").retry_policy == RetryPolicy(3, 1.5, 1.5)
    assert dag.step("c").retry_policy == RetryPolicy(1, 1.0, 2.0, None, (1, 2))


@pytest.mark.parametrize(
    ("policy", "expected"),
    [
        ("{repeat: true, interval_sec: 5}", RepeatPolicy("while", interval_sec=5.0)),
        ('{condition: "$X", expected: "done"}', RepeatPolicy("until", "$X", "done")),
        ('{condition: "test -f x"}', RepeatPolicy("while", "test -f x")),
        ("{exit_code: [1], limit: 3}", RepeatPolicy("while", exit_codes=(1,), limit=3)),
        ('{repeat: until, condition: "$X", expected: ok, backoff: 2, maxIntervalSec: 60}', RepeatPolicy("until", "$X", "ok", backoff=2.0, max_interval_sec=60.0)),
    ],
)
def test_repeat_policy_mode_inference(tmp_path, policy, expected):
    dag = load(tmp_path, f"steps:\n  - command: x\n    repeat_policy: {policy}\n")
    assert dag.steps[0].repeat_policy == expected


def test_output_forms(tmp_path):
    dag = load(
        tmp_path,
        """\
        type: graph
        steps:
          - {name: a, command: x, output: $RESULT}
          - {name: b, command: x, output: {name: URL, key: theUrl, omit: true}}
        """,
    )
    assert dag.step("a").output == Output("RESULT")
    assert dag.step("b").output == Output("URL", "theUrl", True)


def test_executor_configs_are_checked_and_normalised_to_snake_case(tmp_path):
    dag = load(
        tmp_path,
        """\
        type: graph
        steps:
          - name: docker
            type: docker
            config: {image: alpine, autoRemove: true, containerName: x, volumes: ["/a:/b"]}
            command: echo hi
          - name: chat
            type: chat
            llm: {provider: openai, model: gpt-4o, temperature: 0.5, maxTokens: 100}
            messages: [{role: user, content: hello}]
          - name: hitl
            type: hitl
            config: {prompt: ok?, input: [A], required: [A]}
        """,
    )
    assert dict(dag.step("docker").config) == {"image": "alpine", "auto_remove": True, "container_name": "x", "volumes": ("/a:/b",)}
    assert dag.step("chat").llm["max_tokens"] == 100
    assert dag.step("chat").messages == ({"role": "user", "content": "hello"},)
    assert dag.step("hitl").config["required"] == ("A",)


# --- base config --------------------------------------------------------------------------


def test_base_config_is_merged_under_every_document(tmp_path):
    base = write(
        tmp_path,
        """\
        env: [FROM_BASE=1, SHARED=base]
        tags: base
        dotenv: base.env
        smtp: {host: smtp.example.com, port: 587}
        mail_on: {failure: true, success: true}
        max_active_runs: 4
        hist_retention_days: 9
        handler_on: {failure: {command: notify}}
        """,
        "base.yaml",
    )
    path = write(
        tmp_path,
        """\
        env: {SHARED: dag}
        tags: [mine]
        dotenv: [dag.env]
        smtp: {username: me}
        mail_on: {failure: false}
        max_active_runs: 1
        steps: [echo a]
        ---
        name: child
        steps: [echo b]
        """,
    )
    dag = load_dag(path, base_config=base)
    assert dag.env == (("FROM_BASE", "1"), ("SHARED", "base"), ("SHARED", "dag"))
    assert dag.tags == ("base", "mine")
    assert dag.dotenv == ("base.env", "dag.env")
    assert dict(dag.smtp) == {"host": "smtp.example.com", "port": 587, "username": "me"}
    assert dict(dag.mail_on) == {"failure": False}
    assert (dag.max_active_runs, dag.hist_retention_days) == (1, 9)
    assert dag.handler_on.failure.commands == ("notify",)
    child = dag.local_dags["child"]
    assert child.max_active_runs == 4 and child.env == (("FROM_BASE", "1"), ("SHARED", "base"))


def test_missing_base_config_is_ignored(tmp_path):
    dag = load(tmp_path, "steps: [echo a]\n", base_config=tmp_path / "absent.yaml")
    assert dag.env == ()


def test_base_config_errors_name_the_base_file(tmp_path):
    base = write(tmp_path, "max_active_runs: lots\n", "base.yaml")
    with pytest.raises(SpecError) as info:
        load(tmp_path, "steps: [echo a]\n", base_config=base)
    assert info.value.file == str(base)
    assert info.value.field == "max_active_runs"


def test_loading_a_typical_file_is_fast(tmp_path):
    import time

    steps = "".join(f"  - name: s{i}\n    command: echo {i}\n    retry_policy: {{limit: 1, interval_sec: 1}}\n" for i in range(50))
    path = write(tmp_path, "env: {A: 1}\nparams: X=1\nsteps:\n" + steps)
    load_dag(path)  # warm imports
    started = time.perf_counter()
    for _ in range(10):
        load_dag(path)
    per_load = (time.perf_counter() - started) / 10
    # NOTE: generous bound so slow CI machines pass; a regression to pure-Python YAML
    # parsing or per-load imports would still show up as 10x slower.
    assert per_load < 0.05, f"loading a 50-step DAG took {per_load * 1000:.1f} ms"
