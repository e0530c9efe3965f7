"""Run semantics end to end: real `dagu` processes, real shells, real files under a temp DAGU_HOME."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path


from helpers import ROOT, run_dagu, wait_for


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / f"{name}.yaml"
    path.write_text(textwrap.dedent(text))
    return path


def start(tmp_path: Path, path: Path, *args: str, env: dict | None = None, timeout: float = 60):
    return run_dagu("start", *args, str(path), home=tmp_path / "home", env=env, timeout=timeout)


def status(tmp_path: Path, dag: str, *args: str, env: dict | None = None) -> dict:
    result = run_dagu("status", "--json", *args, dag, home=tmp_path / "home", env=env)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def nodes(doc: dict) -> dict[str, dict]:
    return {n["step"]["name"]: n for n in doc["nodes"]}


def statuses(doc: dict) -> dict[str, str]:
    return {name: n["statusLabel"] for name, n in nodes(doc).items()}


def stdout_of(node: dict) -> str:
    return Path(node["stdout"]).read_text() if node["stdout"] else ""




# -- order and dependencies ------------------------------------------------------------


def test_chain_runs_steps_in_order_and_stops_at_a_failure(tmp_path):
    path = write(tmp_path, "chain", """
        steps:
          - command: echo one
          - command: "false"
          - command: echo three
    """)
    result = start(tmp_path, path)
    assert result.returncode == 1
    doc = status(tmp_path, "chain")
    assert statuses(doc) == {"cmd_1": "succeeded", "cmd_2": "failed", "cmd_3": "aborted"}
    assert doc["statusLabel"] == "failed"
    assert "Result: Failed" in result.stdout


def test_graph_branches_run_independently_of_a_failure(tmp_path):
    path = write(tmp_path, "g", """
        type: graph
        steps:
          - name: bad
            command: "exit 2"
          - name: after_bad
            depends: bad
            command: echo never
          - name: good
            command: echo fine
          - name: after_good
            depends: good
            command: echo also fine
    """)
    start(tmp_path, path)
    doc = status(tmp_path, "g")
    assert statuses(doc) == {"bad": "failed", "after_bad": "aborted", "good": "succeeded", "after_good": "succeeded"}
    assert nodes(doc)["bad"]["exitCode"] == 2


def test_graph_fan_out_runs_in_parallel(tmp_path):
    # Three steps that each wait until all three have started: only parallel execution finishes.
    marker = tmp_path / "m"
    marker.mkdir()
    body = f'touch {marker}/$DAG_RUN_STEP_NAME; for i in $(seq 100); do [ $(ls {marker} | wc -l) -ge 3 ] && exit 0; sleep 0.05; done; exit 1'
    path = write(tmp_path, "fan", f"""
        type: graph
        steps:
          - name: a
            command: '{body}'
          - name: b
            command: '{body}'
          - name: c
            command: '{body}'
    """)
    assert start(tmp_path, path).returncode == 0


def test_max_active_steps_limits_concurrency(tmp_path):
    log = tmp_path / "events"
    step = f'echo "start $(date +%s%N)" >> {log}; sleep 0.3; echo "end $(date +%s%N)" >> {log}'
    path = write(tmp_path, "lim", f"""
        type: graph
        max_active_steps: 1
        steps:
          - name: a
            command: '{step}'
          - name: b
            command: '{step}'
          - name: c
            command: '{step}'
    """)
    assert start(tmp_path, path).returncode == 0
    events = sorted((int(t), kind) for kind, t in (ln.split() for ln in log.read_text().splitlines()))
    running = peak = 0
    for _, kind in events:
        running += 1 if kind == "start" else -1
        peak = max(peak, running)
    assert peak == 1


def test_a_retry_waits_for_a_free_slot_under_max_active_steps(tmp_path):
    counter = tmp_path / "count"
    log = tmp_path / "events"
    path = write(tmp_path, "slot", f"""
        type: graph
        max_active_steps: 1
        steps:
          - name: flaky
            command: 'echo "start $(date +%s%N)" >> {log}; n=$(cat {counter} 2>/dev/null || echo 0); echo $((n+1)) > {counter}; sleep 0.1; echo "end $(date +%s%N)" >> {log}; [ $n -ge 1 ]'
            retry_policy:
              limit: 2
              interval_sec: 0.1
          - name: other
            command: 'echo "start $(date +%s%N)" >> {log}; sleep 0.5; echo "end $(date +%s%N)" >> {log}'
    """)
    assert start(tmp_path, path).returncode == 0
    doc = nodes(status(tmp_path, "slot"))
    assert doc["flaky"]["retryCount"] == 1 and doc["other"]["statusLabel"] == "succeeded"
    events = sorted((int(t), kind) for kind, t in (ln.split() for ln in log.read_text().splitlines()))
    running = peak = 0
    for _, kind in events:
        running += 1 if kind == "start" else -1
        peak = max(peak, running)
    # NOTE: the retry's delay (0.1 s) ends while `other` (0.5 s) holds the only slot, so the
    # restart must queue for it; a restart that ignored max_active_steps would make peak 2.
    assert peak == 1 and len(events) == 6


# -- preconditions and continue_on -------------------------------------------------------


def test_step_preconditions_skip_and_negate(tmp_path):
    path = write(tmp_path, "pre", """
        type: graph
        params: MODE=fast
        steps:
          - name: matches
            command: echo yes
            preconditions:
              - condition: "${MODE}"
                expected: "re:^fa"
          - name: mismatch
            command: echo no
            preconditions:
              - condition: "${MODE}"
                expected: slow
          - name: negated
            command: echo yes
            preconditions:
              - condition: "test -e /definitely/not/here"
                negate: true
    """)
    start(tmp_path, path)
    doc = status(tmp_path, "pre")
    assert statuses(doc) == {"matches": "succeeded", "mismatch": "skipped", "negated": "succeeded"}


def test_skipped_step_skips_its_dependents_unless_continue_on_skipped(tmp_path):
    path = write(tmp_path, "skip", """
        type: graph
        steps:
          - name: s1
            command: echo x
            preconditions: "false"
          - name: d1
            depends: s1
            command: echo x
          - name: s2
            command: echo x
            preconditions: "false"
            continue_on: skipped
          - name: d2
            depends: s2
            command: echo ran
    """)
    assert start(tmp_path, path).returncode == 0
    assert statuses(status(tmp_path, "skip")) == {"s1": "skipped", "d1": "skipped", "s2": "skipped", "d2": "succeeded"}


def test_dag_precondition_not_met_aborts_without_running_steps(tmp_path):
    path = write(tmp_path, "dagpre", """
        preconditions:
          - condition: "`echo no`"
            expected: "yes"
        steps:
          - command: echo should not run
    """)
    result = start(tmp_path, path)
    assert result.returncode == 0
    doc = status(tmp_path, "dagpre")
    assert doc["statusLabel"] == "aborted"
    assert statuses(doc) == {"cmd_1": "not_started"}


def test_continue_on_exit_code_output_and_mark_success(tmp_path):
    path = write(tmp_path, "cont", """
        type: graph
        steps:
          - name: by_code
            command: "exit 4"
            continue_on:
              exit_code: [4]
          - name: after_code
            depends: by_code
            command: echo ok
          - name: by_output
            command: "echo 'WARN: disk low'; exit 1"
            continue_on:
              output: ["re:^WARN"]
              mark_success: true
          - name: after_output
            depends: by_output
            command: echo ok
          - name: wrong_code
            command: "exit 5"
            continue_on:
              exit_code: 4
          - name: after_wrong
            depends: wrong_code
            command: echo never
    """)
    assert start(tmp_path, path).returncode == 1
    doc = status(tmp_path, "cont")
    assert statuses(doc) == {
        "by_code": "failed", "after_code": "succeeded", "by_output": "succeeded", "after_output": "succeeded",
        "wrong_code": "failed", "after_wrong": "aborted",
    }
    assert doc["statusLabel"] == "failed"


def test_continuable_failure_makes_the_run_partially_succeeded(tmp_path):
    path = write(tmp_path, "part", """
        steps:
          - command: "false"
            continue_on:
              failure: true
          - command: echo after
    """)
    assert start(tmp_path, path).returncode == 1
    assert status(tmp_path, "part")["statusLabel"] == "partially_succeeded"


# -- retry, repeat, timeouts ----------------------------------------------------------------


def test_step_fails_twice_then_succeeds_under_retry_policy(tmp_path):
    counter = tmp_path / "count"
    path = write(tmp_path, "flaky", f"""
        steps:
          - name: flaky
            command: 'n=$(cat {counter} 2>/dev/null || echo 0); n=$((n+1)); echo $n > {counter}; [ $n -ge 3 ]'
            retry_policy:
              limit: 5
              interval_sec: 0
    """)
    assert start(tmp_path, path).returncode == 0
    node = nodes(status(tmp_path, "flaky"))["flaky"]
    assert node["statusLabel"] == "succeeded" and node["retryCount"] == 2
    assert counter.read_text().strip() == "3"


def test_retry_policy_gives_up_after_the_limit_and_honours_exit_codes(tmp_path):
    counter = tmp_path / "count"
    path = write(tmp_path, "giveup", f"""
        type: graph
        steps:
          - name: limited
            command: 'echo x >> {counter}; exit 3'
            retry_policy:
              limit: 2
              intervalSec: 0
          - name: not_listed
            command: 'exit 9'
            retry_policy:
              limit: 3
              interval_sec: 0
              exit_code: [3]
    """)
    start(tmp_path, path)
    doc = nodes(status(tmp_path, "giveup"))
    assert doc["limited"]["statusLabel"] == "failed" and doc["limited"]["retryCount"] == 2
    assert counter.read_text().count("x") == 3
    assert doc["not_listed"]["retryCount"] == 0


def test_hung_step_is_killed_by_its_timeout_with_its_grandchildren(tmp_path):
    pidfile = tmp_path / "grandchild.pid"
    path = write(tmp_path, "hang", f"""
        max_clean_up_time_sec: 1
        steps:
          - name: hang
            timeout_sec: 1
            command: 'sleep 300 & echo $! > {pidfile}; wait'
    """)
    began = time.monotonic()
    result = start(tmp_path, path)
    assert time.monotonic() - began < 20
    assert result.returncode == 1
    node = nodes(status(tmp_path, "hang"))["hang"]
    assert node["statusLabel"] == "failed" and node["exitCode"] == 124
    pid = int(pidfile.read_text())
    wait_for(lambda: not _alive(pid), "the grandchild to die")


def test_repeat_policy_until_condition(tmp_path):
    counter = tmp_path / "count"
    path = write(tmp_path, "rep", f"""
        steps:
          - name: poll
            command: 'n=$(cat {counter} 2>/dev/null || echo 0); echo $((n+1)) > {counter}; echo $((n+1))'
            output: N
            repeat_policy:
              condition: "${{N}}"
              expected: "4"
              interval_sec: 0
              limit: 10
    """)
    assert start(tmp_path, path).returncode == 0
    node = nodes(status(tmp_path, "rep"))["poll"]
    assert node["doneCount"] == 4 and node["outputs"] == {"N": "4"}


def test_run_timeout_fails_the_run_and_aborts_steps(tmp_path):
    path = write(tmp_path, "slow", """
        timeout_sec: 1
        max_clean_up_time_sec: 1
        handler_on:
          failure:
            command: echo failure handler
        steps:
          - name: long
            command: sleep 30
          - name: next
            command: echo never
    """)
    result = start(tmp_path, path)
    assert result.returncode == 1
    doc = status(tmp_path, "slow")
    assert doc["statusLabel"] == "failed"
    assert statuses(doc) == {"long": "aborted", "next": "aborted"}
    assert "timed out" in doc["error"]
    assert doc["onFailure"]["statusLabel"] == "succeeded"


def test_delay_sec_pauses_after_each_launch(tmp_path):
    path = write(tmp_path, "delay", """
        delay_sec: 1
        type: graph
        steps:
          - command: "true"
          - command: "true"
    """)
    began = time.monotonic()
    assert start(tmp_path, path).returncode == 0
    assert time.monotonic() - began >= 1.0


# -- values ---------------------------------------------------------------------------------


def test_params_env_outputs_and_run_variables_reach_steps(tmp_path):
    (tmp_path / ".env").write_text("FROM_DOTENV=dot\n")
    path = write(tmp_path, "vals", """
        params: "first NAME=world GREETED=${GREETING}!"
        env:
          - GREETING: hello
          - PHRASE: "${GREETING} ${GREETING}"
        steps:
          - name: a
            id: step_a
            command: echo "$1 $PHRASE $NAME $GREETED $FROM_DOTENV"
            output: OUT
          - name: b
            command: 'echo "${OUT}|$DAG_NAME|$DAG_RUN_STEP_NAME|${step_a.exit_code}|`echo tick`"'
            output: B
    """)
    result = run_dagu("start", str(path), "--", "NAME=there", home=tmp_path / "home")
    assert result.returncode == 0, result.stdout + result.stderr
    doc = nodes(status(tmp_path, "vals"))
    assert doc["a"]["outputs"] == {"OUT": "first hello hello there hello! dot"}
    assert doc["b"]["outputs"] == {"B": "first hello hello there hello! dot|vals|b|0|tick"}


def test_host_environment_is_filtered_to_the_allow_list(tmp_path):
    path = write(tmp_path, "envf", """
        env:
          - FORWARDED: ${SECRET_HOST_VAR}
        steps:
          - command: 'echo "[${SECRET_HOST_VAR:-unset}] [$FORWARDED] [${DAGU_CUSTOM}]"'
            output: OUT
    """)
    env = {"SECRET_HOST_VAR": "s3cret", "DAGU_CUSTOM": "passes"}
    assert start(tmp_path, path, env=env).returncode == 0
    assert nodes(status(tmp_path, "envf"))["cmd_1"]["outputs"]["OUT"] == "[unset] [s3cret] [passes]"


def test_steps_run_in_the_dag_file_folder_by_default(tmp_path):
    flows = tmp_path / "flows"
    flows.mkdir()
    path = write(flows, "cwd", """
        steps:
          - command: pwd
            output: DIR
          - working_dir: sub
            command: pwd
            output: SUB
    """)
    (flows / "sub").mkdir()
    result = run_dagu("start", str(path), home=tmp_path / "home", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    doc = nodes(status(tmp_path, "cwd"))
    assert doc["cmd_1"]["outputs"]["DIR"] == str(flows)
    assert doc["cmd_2"]["outputs"]["SUB"] == str(flows / "sub")


# -- handlers -------------------------------------------------------------------------------


def test_failing_init_handler_aborts_the_run_and_runs_abort_and_exit(tmp_path):
    path = write(tmp_path, "init", """
        handler_on:
          init:
            command: "exit 1"
          abort:
            command: echo aborted
          exit:
            command: echo bye
        steps:
          - command: echo never
    """)
    start(tmp_path, path)
    doc = status(tmp_path, "init")
    assert doc["statusLabel"] == "aborted"
    assert statuses(doc) == {"cmd_1": "not_started"}
    assert doc["onInit"]["statusLabel"] == "failed"
    assert doc["onCancel"]["statusLabel"] == "succeeded"
    assert stdout_of(doc["onExit"]).strip() == "bye"


def test_failure_handler_sees_the_run_status_and_failing_handler_fails_the_run(tmp_path):
    path = write(tmp_path, "hf", """
        handler_on:
          failure:
            command: echo "status=$DAG_RUN_STATUS"
          exit:
            command: "exit 3"
        steps:
          - command: "false"
    """)
    assert start(tmp_path, path).returncode == 1
    doc = status(tmp_path, "hf")
    assert stdout_of(doc["onFailure"]).strip() == "status=failed"
    assert doc["onExit"]["statusLabel"] == "failed"
    assert doc["statusLabel"] == "failed"


def test_exit_handler_failure_turns_a_success_into_failed(tmp_path):
    path = write(tmp_path, "hx", """
        handler_on:
          exit:
            command: "false"
        steps:
          - command: "true"
    """)
    assert start(tmp_path, path).returncode == 1
    assert status(tmp_path, "hx")["statusLabel"] == "failed"


# -- stop, kill, retry ---------------------------------------------------------------------------


def _spawn_start(tmp_path: Path, path: Path, *args: str) -> subprocess.Popen:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DAGU_")}
    env.update({"DAGU_HOME": str(tmp_path / "home"), "DISABLE_PROGRESS": "1", "DAGU_HEARTBEAT_INTERVAL": "0.2",
                "PYTHONPATH": str(ROOT)})
    return subprocess.Popen([sys.executable, "-m", "dagu", "start", *args, str(path)], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _running_status(tmp_path: Path, dag: str, step: str):
    def check():
        r = run_dagu("status", "--json", dag, home=tmp_path / "home")
        if r.returncode != 0:
            return None
        doc = json.loads(r.stdout)
        return doc if nodes(doc)[step]["statusLabel"] == "running" else None

    return wait_for(check, f"step {step} of {dag} to be running")


def test_dagu_stop_from_a_second_process_aborts_the_run(tmp_path):
    marker = tmp_path / "got-int"
    path = write(tmp_path, "stoppable", f"""
        max_clean_up_time_sec: 5
        handler_on:
          abort:
            command: echo abort handler
        steps:
          - name: wait
            signal_on_stop: SIGINT
            command: 'trap "touch {marker}; exit 130" INT; sleep 60 & wait'
          - name: never
            command: echo never
    """)
    proc = _spawn_start(tmp_path, path)
    try:
        _running_status(tmp_path, "stoppable", "wait")
        stop = run_dagu("stop", "stoppable", home=tmp_path / "home", timeout=30)
        assert stop.returncode == 0, stop.stderr
        assert proc.wait(timeout=30) == 0  # aborted runs exit 0
    finally:
        proc.kill()
        proc.communicate()
    doc = status(tmp_path, "stoppable")
    assert doc["statusLabel"] == "aborted"
    assert statuses(doc) == {"wait": "aborted", "never": "not_started"}
    assert marker.exists()
    assert doc["onCancel"]["statusLabel"] == "succeeded"


def test_stop_with_nothing_running_exits_zero(tmp_path):
    assert run_dagu("stop", "nothing", home=tmp_path / "home").returncode == 0


def test_kill_9_of_the_run_process_leaves_readable_history_and_a_zombie(tmp_path):
    pidfile = tmp_path / "sleeper.pid"
    path = write(tmp_path, "victim", f"""
        steps:
          - name: first
            command: echo done
          - name: sleeper
            command: 'echo $$ > {pidfile}; exec sleep 60'
    """)
    proc = _spawn_start(tmp_path, path)
    try:
        doc = _running_status(tmp_path, "victim", "sleeper")
        assert doc["statusLabel"] == "running"
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
    finally:
        proc.kill()
        proc.communicate()
    os.kill(int(pidfile.read_text()), signal.SIGKILL)  # the orphaned step process
    fast = {"DAGU_SCHEDULER_ZOMBIE_DETECTION_INTERVAL": "1s"}
    doc = wait_for(
        lambda: (d := status(tmp_path, "victim", env=fast))["statusLabel"] == "failed" and d,
        "the zombie run to be marked failed",
    )
    assert statuses(doc) == {"first": "succeeded", "sleeper": "failed", }
    assert "zombie" in doc["error"]
    text = run_dagu("status", "victim", home=tmp_path / "home")
    assert text.returncode == 0 and "first" in text.stdout


def test_retry_reruns_failed_steps_under_the_same_run_id(tmp_path):
    flag = tmp_path / "fixed"
    count = tmp_path / "ran"
    path = write(tmp_path, "again", f"""
        steps:
          - name: ok
            command: 'echo x >> {count}'
          - name: needs_fix
            command: 'test -f {flag}'
          - name: after
            command: echo after
    """)
    assert start(tmp_path, path, "--run-id", "r1").returncode == 1
    flag.touch()
    result = run_dagu("retry", "--run-id", "r1", str(path), home=tmp_path / "home")
    assert result.returncode == 0, result.stdout + result.stderr
    doc = status(tmp_path, "again", "--run-id", "r1")
    assert doc["dagRunId"] == "r1" and doc["statusLabel"] == "succeeded"
    assert statuses(doc) == {"ok": "succeeded", "needs_fix": "succeeded", "after": "succeeded"}
    assert count.read_text().count("x") == 1  # the succeeded step kept its result
    attempts = list((tmp_path / "home/data/dag-runs/again/dag-runs").rglob("attempt_*"))
    assert len(attempts) == 2


def test_duplicate_run_id_is_refused(tmp_path):
    path = write(tmp_path, "dup", "steps:\n  - command: 'true'\n")
    assert start(tmp_path, path, "--run-id", "same").returncode == 0
    again = start(tmp_path, path, "--run-id", "same")
    assert again.returncode == 1 and "already exists" in again.stderr


def test_status_without_history_exits_one(tmp_path):
    result = run_dagu("status", "never-ran", home=tmp_path / "home")
    assert result.returncode == 1 and "no run" in result.stderr


# -- sub-DAGs ----------------------------------------------------------------------------------


def test_sub_dag_failure_fails_the_calling_step(tmp_path):
    path = write(tmp_path, "parent", """
        steps:
          - name: call_it
            call: child
      ---
        name: child
        steps:
          - command: "exit 7"
    """.replace("      ---", "---"))
    assert start(tmp_path, path).returncode == 1
    doc = status(tmp_path, "parent")
    assert statuses(doc) == {"call_it": "failed"}
    assert json.loads(stdout_of(nodes(doc)["call_it"]))["status"] == "failed"


def test_sub_dag_from_another_file_with_params(tmp_path):
    write(tmp_path, "worker", """
        params: "WHO=nobody"
        steps:
          - command: echo "hi ${WHO}"
            output: SAID
    """)
    path = write(tmp_path, "boss", """
        steps:
          - call: worker
            params:
              WHO: boss
            output: R
          - command: echo "${R.outputs.SAID}"
            output: FINAL
    """)
    assert start(tmp_path, path).returncode == 0
    doc = nodes(status(tmp_path, "boss"))
    assert doc["cmd_2"]["outputs"]["FINAL"] == "hi boss"
    child = json.loads(stdout_of(doc["dag_1"]))
    assert doc["dag_1"]["children"] == [{"dagRunId": child["dagRunId"], "params": "WHO=boss"}]


def test_history_lists_runs_newest_first(tmp_path):
    path = write(tmp_path, "hist", "steps:\n  - command: 'true'\n")
    for rid in ("h1", "h2"):
        assert start(tmp_path, path, "--run-id", rid).returncode == 0
    result = run_dagu("history", "hist", "-f", "json", home=tmp_path / "home")
    assert result.returncode == 0, result.stderr
    assert [r["dagRunId"] for r in json.loads(result.stdout)] == ["h2", "h1"]


def test_cleanup_removes_finished_runs(tmp_path):
    path = write(tmp_path, "clean", "steps:\n  - command: 'true'\n")
    assert start(tmp_path, path).returncode == 0
    result = run_dagu("cleanup", "-y", "clean", home=tmp_path / "home")
    assert result.returncode == 0 and "Successfully removed 1 run(s)" in result.stdout
    assert run_dagu("status", "clean", home=tmp_path / "home").returncode == 1


def test_exec_runs_a_one_off_command(tmp_path):
    result = run_dagu("exec", "--", "echo", "hello exec", home=tmp_path / "home", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "hello exec" in result.stdout
    assert status(tmp_path, "exec-echo")["statusLabel"] == "succeeded"


def test_dry_shows_the_plan_and_writes_no_history(tmp_path):
    path = write(tmp_path, "plan", """
        type: graph
        params: "WHO=you"
        steps:
          - name: b
            depends: a
            command: echo "bye ${WHO}"
          - name: a
            command: echo "hi ${WHO}"
    """)
    result = run_dagu("dry", str(path), "--", "WHO=me", home=tmp_path / "home")
    assert result.returncode == 0, result.stderr
    assert result.stdout.index("$ echo \"hi me\"") < result.stdout.index("$ echo \"bye me\"")
    assert not (tmp_path / "home" / "data" / "dag-runs").exists()


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split()[2] != "Z"
    except FileNotFoundError:
        return False
