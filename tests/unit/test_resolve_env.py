"""Env evaluation, dotenv files, the host allow-list, run-context variables (dag-spec 2.4, 5.3)."""

from __future__ import annotations

import json

import pytest

from dagu.resolve import ResolveError, evaluate_env, host_env, parse_dotenv, read_dotenv, run_context_env
from dagu.spec.model import Param

PROCESS_ENV = {"HOME": "/home/u", "PATH": "/usr/bin:/bin", "HOSTVAR": "host"}


@pytest.mark.parametrize(
    "pairs, base, expected",
    [
        ([("A", "1"), ("B", "${A}2"), ("C", "$B-$A")], {}, {"A": "1", "B": "12", "C": "12-1"}),
        ([("P", "$PARAM/x")], {"PARAM": "p"}, {"P": "p/x"}),
        ([("F", "${HOSTVAR}"), ("H", "$HOME/data")], {}, {"F": "host", "H": "/home/u/data"}),
        ([("D", "${MISSING:-dflt}")], {}, {"D": "dflt"}),
        # The 1.30 binary turns unset names in env values into "" (checked in test_compare_dagu).
        ([("U", "$MISSING")], {}, {"U": ""}),
        ([("A", "first"), ("A", "$A second")], {}, {"A": "first second"}),
        ([("NOW", "`echo now`")], {}, {"NOW": "now"}),
        ([("X", "v"), ("Y", "`printf %s $X`")], {}, {"X": "v", "Y": "v"}),
        ([("J", '{"a": [1, 2]}'), ("K", "${J.a[1]}")], {}, {"J": '{"a": [1, 2]}', "K": "2"}),
        ([("E", "")], {}, {"E": ""}),
    ],
)
def test_evaluate_env_sees_earlier_entries_base_and_process_env(pairs, base, expected):
    assert evaluate_env(pairs, base, process_env=PROCESS_ENV) == expected


def test_evaluate_env_returns_only_its_own_entries():
    assert evaluate_env([("A", "$B")], {"B": "b"}, process_env=PROCESS_ENV) == {"A": "b"}


def test_evaluate_env_without_backticks_keeps_them_literal():
    assert evaluate_env([("T", "`exit 1`")], {}, process_env=PROCESS_ENV, backticks=False) == {"T": "`exit 1`"}


def test_evaluate_env_failing_backtick_names_the_entry():
    with pytest.raises(ResolveError, match=r"env BROKEN: command substitution `false`"):
        evaluate_env([("OK", "1"), ("BROKEN", "`false`")], {}, process_env=PROCESS_ENV)


DOTENV = """\
# a comment
PLAIN=value
export EXPORTED=yes
SPACED = around
INLINE=val # comment
HASH=a#b
SINGLE='lit $X \\n # not comment'
DOUBLE="line1\\nline2 \\"q\\" # kept"
MULTI="first
second"
EMPTY=
not a pair
1BAD=x
"""


@pytest.mark.parametrize(
    "key, expected",
    [
        ("PLAIN", "value"),
        ("EXPORTED", "yes"),
        ("SPACED", "around"),
        ("INLINE", "val"),
        ("HASH", "a#b"),
        ("SINGLE", "lit $X \\n # not comment"),
        ("DOUBLE", 'line1\nline2 "q" # kept'),
        ("MULTI", "first\nsecond"),
        ("EMPTY", ""),
    ],
)
def test_parse_dotenv_values(key, expected):
    assert parse_dotenv(DOTENV)[key] == expected


def test_parse_dotenv_skips_lines_that_are_not_pairs():
    parsed = parse_dotenv(DOTENV)
    assert "1BAD" not in parsed
    assert not any(k.startswith("not") for k in parsed)


def test_read_dotenv_later_files_win_and_missing_are_ignored(tmp_path):
    work = tmp_path / "work"
    dag = tmp_path / "dag"
    work.mkdir()
    dag.mkdir()
    (work / ".env").write_text("A=work\nB=work\n")
    (dag / ".env").write_text("A=dag-dir-shadowed\n")
    (dag / "extra.env").write_text("B=extra\nC=extra\n")
    absolute = tmp_path / "abs.env"
    absolute.write_text("C=abs\n")
    paths = [".env", "missing.env", "extra.env", str(absolute), str(tmp_path / "gone.env")]
    assert read_dotenv(paths, str(work), str(dag)) == {"A": "work", "B": "extra", "C": "abs"}


def test_read_dotenv_with_no_dirs_reads_only_absolute_paths(tmp_path):
    f = tmp_path / "x.env"
    f.write_text("X=1\n")
    assert read_dotenv([".env", str(f)], None, None) == {"X": "1"}


def test_host_env_keeps_only_the_allow_list():
    env = {
        "PATH": "/bin",
        "HOME": "/h",
        "XDG_STATE_HOME": "/s",
        "LC_NUMERIC": "C",
        "DAGU_HOME": "/d",
        "DAG_X": "x",
        "SECRET_TOKEN": "nope",
        "AWS_KEY": "nope",
        "DAGUX": "nope",
    }
    assert host_env(env) == {
        "PATH": "/bin",
        "HOME": "/h",
        "XDG_STATE_HOME": "/s",
        "LC_NUMERIC": "C",
        "DAGU_HOME": "/d",
        "DAG_X": "x",
    }


def test_host_env_extra_names_and_prefixes_pass_through():
    env = {"PATH": "/bin", "AWS_KEY": "k", "AWS_REGION": "r", "FOO": "f", "BAR": "b"}
    assert host_env(env, extra_names=["FOO"], extra_prefixes=["AWS_"]) == {
        "PATH": "/bin",
        "AWS_KEY": "k",
        "AWS_REGION": "r",
        "FOO": "f",
    }


def test_run_context_env_for_a_step():
    params = [Param("1", "a", True), Param("N", "v")]
    env = run_context_env(
        dag_name="etl",
        run_id="r1",
        log_file="/l/run.log",
        params=params,
        step_name="load",
        stdout_file="/l/load.out",
        stderr_file="/l/load.err",
    )
    assert env == {
        "DAG_NAME": "etl",
        "DAG_RUN_ID": "r1",
        "DAG_RUN_LOG_FILE": "/l/run.log",
        "DAG_RUN_STEP_NAME": "load",
        "DAG_RUN_STEP_STDOUT_FILE": "/l/load.out",
        "DAG_RUN_STEP_STDERR_FILE": "/l/load.err",
        "DAGU_PARAMS_JSON": env["DAG_PARAMS_JSON"],
        "DAG_PARAMS_JSON": env["DAGU_PARAMS_JSON"],
    }
    assert json.loads(env["DAGU_PARAMS_JSON"]) == {"1": "a", "N": "v"}


def test_run_context_env_for_handlers_adds_status_and_waiting_steps():
    env = run_context_env(dag_name="d", run_id="r", status="failed", waiting_steps=["a", "b"])
    assert env["DAG_RUN_STATUS"] == "failed"
    assert env["DAG_WAITING_STEPS"] == "a,b"
    assert "DAG_RUN_STEP_NAME" not in env
    assert json.loads(env["DAG_PARAMS_JSON"]) == {}
