"""Every kind of broken workflow file is rejected with a precise, located, helpful message.

Each file in tests/spec_errors/ holds exactly one kind of error; the table below says
where it must be reported and what the message must say.
"""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from dagu.errors import SpecError
from dagu.spec import load_dag, load_dag_text

ERRORS_DIR = Path(__file__).resolve().parent.parent / "spec_errors"

# file stem -> (line, field, substring of the message)
EXPECTED: dict[str, tuple[int, str, str]] = {
    "yaml_syntax": (4, "", "invalid YAML: did not find expected ',' or ']'"),
    "yaml_tab_indent": (2, "", "invalid YAML: found character that cannot start any token"),
    "yaml_undefined_alias": (2, "", "found undefined alias"),
    "recursive_alias": (1, "", "an alias refers to a node that contains it"),
    "merge_key_not_mapping": (2, "", "merge key `<<` needs a mapping"),
    "not_a_mapping": (1, "", "must be a mapping of keys such as `steps`, got a list"),
    "unknown_root_key": (2, "tyep", 'unknown key "tyep"'),
    "unknown_step_key": (3, "steps[0].comand", 'unknown key "comand" in step'),
    "both_spellings_root": (3, "handler_on", '"handler_on" and "handlerOn" set the same key'),
    "both_spellings_step": (5, "steps[0].continue_on", '"continueOn" and "continue_on" set the same key'),
    "duplicate_key": (4, "steps[0].command", 'key "command" is set twice'),
    "non_string_key": (4, "steps[0]", "keys must be non-empty plain strings, got a list"),
    "bad_dag_type": (1, "type", 'invalid type "agent" (must be one of: graph, chain)'),
    "bad_dag_name": (1, "name", "must only contain letters, digits, dashes, dots and underscores"),
    "dag_name_too_long": (1, "name", "DAG name must be at most 40 characters, got 41"),
    "step_name_too_long": (2, "steps[0].name", "step name must be at most 40 characters, got 41"),
    "duplicate_step": (5, "steps[1].name", 'step name "a" must be unique'),
    "bad_step_id": (3, "steps[0].id", "invalid step id '1st'"),
    "reserved_step_id": (3, "steps[0].id", "step id 'env' is a reserved word"),
    "duplicate_step_id": (6, "steps[1].id", 'duplicate step id "x"'),
    "id_name_clash": (5, "steps[1].id", 'step id "a" conflicts with the name of another step'),
    "unknown_dependency": (6, "steps[1].depends", 'step "load" depends on non-existent step "extrct"'),
    "depends_mapping": (5, "steps[0].depends", "expected a step name or a list of step names, got a mapping"),
    "cycle": (3, "steps[0].depends", "dependency cycle: a -> c -> b -> a"),
    "self_dependency": (3, "steps[0].depends", "dependency cycle: a -> a"),
    "steps_not_list": (1, "steps", 'expected a list of steps, got "echo hello"'),
    "empty_step_item": (3, "steps[1]", "step is empty"),
    "bad_cron": (1, "schedule", "expected exactly 5 fields (minute hour day month weekday), found 6"),
    "invalid_cron_value": (3, "schedule[1]", "'61 * * * *': not a valid cron expression"),
    "bad_timezone": (1, "schedule", "unknown time zone 'Mars/Olympus'"),
    "unknown_schedule_key": (2, "schedule.begin", 'unknown key "begin" in schedule'),
    "env_item_without_equals": (3, "env[1]", 'expected KEY=value or a mapping, got "BAR"'),
    "env_nested_value": (2, "env.A", "expected a string value, got a list"),
    "env_scalar": (1, "env", 'expected a mapping or a list of KEY=value strings, got "FOO"'),
    "bad_params_value": (2, "params.A", "expected a string value, got a mapping"),
    "empty_command": (3, "steps[0].command", "step command is empty"),
    "command_mapping": (3, "steps[0].command", "expected a command string or a list of commands, got a mapping"),
    "executor_no_command": (4, "steps[0].command", 'executor type "mail" does not support command field'),
    "executor_single_command": (4, "steps[0].command", 'executor type "http" only supports a single command'),
    "executor_no_script": (5, "steps[0].script", 'executor type "archive" does not support script field'),
    "executor_no_shell": (5, "steps[0].shell", 'executor type "jq" does not support shell configuration'),
    "unknown_type_with_command": (3, "steps[0].type", 'executor type "telepathy" is not registered'),
    "executor_with_type": (4, "steps[0].executor", "`executor` cannot be combined with `type` or `config`"),
    "call_with_other_type": (4, "steps[0].call", 'a step of type "http" cannot also `call` a sub-DAG'),
    "call_and_run": (4, "steps[0].run", "`run` and `call` both name a sub-DAG"),
    "config_unknown_key": (6, "steps[0].config.headrs", 'unknown key "headrs" in http config'),
    "config_bad_type": (6, "steps[0].config.timeout", 'expected a whole number, got "soon"'),
    "config_bad_choice": (7, "steps[0].config.output_format", 'expected one of jsonl, json, csv, got "xml"'),
    "config_missing_required": (6, "steps[0].config", "sqlite steps need `dsn` in config"),
    "docker_without_image": (2, "steps[0].config", "docker steps need `image` or `container_name`"),
    "ssh_without_host": (5, "steps[0].config", "ssh steps need `host` in config"),
    "container_exec_and_image": (2, "container", "container sets both `exec` and `image`"),
    "container_exec_extra_keys": (2, "container", "exec mode only accepts user, working_dir and env"),
    "retry_limit_not_int": (5, "steps[0].retry_policy.limit", 'expected a whole number >= 0, got "three"'),
    "retry_missing_interval": (5, "steps[0].retry_policy.interval_sec", "interval_sec is required in retry_policy"),
    "retry_bad_backoff": (7, "steps[0].retry_policy.backoff", "backoff must be greater than 1, got 0.5"),
    "retry_not_mapping": (4, "steps[0].retry_policy", "expected a mapping of retry_policy keys, got 3"),
    "repeat_while_without_condition": (5, "steps[0].repeat_policy.repeat", "repeat mode 'while' needs a `condition`"),
    "repeat_bad_mode": (5, "steps[0].repeat_policy.repeat", 'expected "while", "until" or true, got "sometimes"'),
    "repeat_expected_without_condition": (5, "steps[0].repeat_policy.expected", "`expected` needs a `condition`"),
    "bad_signal": (4, "steps[0].signal_on_stop", 'unknown signal "INT"'),
    "negative_timeout": (4, "steps[0].timeout_sec", "expected a whole number >= 0, got -5"),
    "bad_bool": (4, "steps[0].mail_on_error", 'expected true or false, got "perhaps"'),
    "stdout_equals_stderr": (5, "steps[0].stderr", "stdout and stderr point to the same file"),
    "bad_log_output": (1, "log_output", 'expected one of separate, merged, got "both"'),
    "parallel_without_call": (4, "steps[0].parallel", "parallel execution is only supported for sub-DAG steps"),
    "parallel_max_concurrent_zero": (6, "steps[0].parallel.max_concurrent", "max_concurrent must be greater than 0"),
    "parallel_without_items": (5, "steps[0].parallel", "parallel needs `items`"),
    "handler_abort_and_cancel": (3, "handler_on.abort", '"abort" and "cancel" set the same key "abort"'),
    "unknown_handler": (2, "handler_on.finally", 'unknown key "finally" in handler_on'),
    "precondition_missing_condition": (5, "steps[0].preconditions[0]", "precondition needs a `condition`"),
    "precondition_unknown_key": (3, "preconditions[0].expect", 'unknown key "expect" in precondition'),
    "continue_on_bad_string": (4, "steps[0].continue_on", 'expected "skipped", "failed" or a mapping, got "always"'),
    "continue_on_bad_exit_code": (5, "steps[0].continue_on.exit_code[1]", 'expected a whole number, got "one"'),
    "output_without_name": (5, "steps[0].output", "output needs a `name`"),
    "bad_max_active_runs": (1, "max_active_runs", "expected a whole number >= -1, got -2"),
    "duplicate_secret": (3, "secrets[1].name", 'duplicate secret name "TOKEN"'),
    "bad_catchup_window": (1, "catchup_window", 'expected a duration such as 6h or 2d12h, got "a while"'),
    "bad_overlap_policy": (1, "overlap_policy", 'expected one of skip, all, latest, got "never"'),
    "llm_temperature_range": (4, "steps[0].llm.temperature", "temperature must be between 0 and 2, got 3"),
    "chat_without_messages": (2, "steps[0]", "chat steps need `messages`"),
    "bad_message_role": (6, "steps[0].messages[0].role", 'expected one of system, user, assistant, got "robot"'),
    "local_dag_without_name": (3, "name", "DAG at index 1 must have a name in a multi-DAG file"),
    "duplicate_local_dag": (6, "name", 'duplicate DAG name "child" found'),
}


def load_error(path: Path) -> SpecError:
    with pytest.raises(SpecError) as info:
        load_dag(path)
    return info.value


def test_every_error_file_has_an_expectation_and_there_are_enough_kinds():
    stems = {p.stem for p in ERRORS_DIR.glob("*.yaml")}
    assert stems == set(EXPECTED)
    assert len(stems) >= 45


@pytest.mark.parametrize("stem", sorted(EXPECTED))
def test_broken_file_reports_one_issue_at_the_right_place(stem):
    line, field, fragment = EXPECTED[stem]
    path = ERRORS_DIR / f"{stem}.yaml"
    error = load_error(path)
    assert len(error.issues) == 1, str(error)
    issue = error.issues[0]
    assert (issue.file, issue.line, issue.field) == (str(path), line, field)
    assert fragment in issue.message
    assert issue.column >= 1
    where = f"{path}:{line}:{issue.column}: "
    expected_start = where + (f"{field}: " if field else "") + issue.message
    assert str(error).startswith(expected_start)
    assert issue.format().startswith(expected_start)


def test_several_errors_are_all_reported_sorted_by_line(tmp_path):
    path = tmp_path / "three.yaml"
    path.write_text(
        textwrap.dedent(
            """\
            type: graph
            steps:
              - name: a
                command: echo
                timeout_sec: -1
              - name: b
                command: echo
                depends: nowhere
            schedule: "not a cron"
            """
        )
    )
    error = load_error(path)
    assert [(i.line, i.field) for i in error.issues] == [
        (5, "steps[0].timeout_sec"),
        (8, "steps[1].depends"),
        (9, "schedule"),
    ]
    lines = [line for line in str(error).splitlines() if not line.startswith("  hint:")]
    assert [line.split(":")[1] for line in lines] == ["5", "8", "9"]


def test_a_typo_gets_a_did_you_mean_hint():
    error = pytest.raises(SpecError, load_dag_text, "steps:\n  - command: echo\n    retyr_policy: {}\n", "t.yaml").value
    assert error.hint == 'did you mean "retry_policy"?'
    assert 'hint: did you mean "retry_policy"?' in str(error)
    error = pytest.raises(SpecError, load_dag_text, "handlerOnn: {}\n", "t.yaml").value
    assert error.hint == 'did you mean "handlerOn"?'


def test_value_errors_carry_an_example_hint():
    error = pytest.raises(SpecError, load_dag_text, "steps:\n  - command: x\n    retry_policy: {limit: three, interval_sec: 1}\n").value
    assert error.hint == "write `limit: 3`"
    assert error.issues[0].format().endswith("hint: write `limit: 3`")


def test_errors_in_later_documents_are_collected_with_the_first(tmp_path):
    path = tmp_path / "multi.yaml"
    path.write_text("steps: [{command: x, timeout_sec: -1}]\n---\nname: child\nbogus: 1\n")
    error = load_error(path)
    assert [(i.line, i.field) for i in error.issues] == [(1, "steps[0].timeout_sec"), (4, "bogus")]
