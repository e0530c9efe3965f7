"""The jq step type with libjq: output formatted as the 1.30 binary prints it, inputs, errors."""

from __future__ import annotations

import json
from pathlib import Path

from dagu.spec.model import Dag, Location, Step
from dagu.steps.jq import JqExecutor
from helpers import EXAMPLES, run_dagu

_INPUT = '{"z":[1,{"b":2,"a":"<&>"}],"x":"str","n":null}'


def _attempt(tmp_path: Path, command: str | None, script: str | None = None, config: dict | None = None):
    from dagu.steps.base import Attempt

    loc = Location(str(tmp_path / "dag.yaml"))
    step = Step(name="q", location=loc, type="jq", commands=(command,) if command else ())
    return Attempt(
        dag=Dag(name="t", location=loc), step=step, commands=step.commands, script=script, shell=("sh",),
        env={}, cwd=str(tmp_path), stdout_path=str(tmp_path / "out.log"), stderr_path=str(tmp_path / "err.log"),
        config=config or {}, capture_output=True,
    )  # fmt: skip


def test_results_are_printed_like_dagu_1_30(tmp_path):
    # Expected text captured from the 1.30.2 binary with the same filter and input.
    result = JqExecutor(_attempt(tmp_path, ".[] , .x", _INPUT)).run()
    assert result.exit_code == 0, result.error
    expected = 'null\n"str"\n[\n    1,\n    {\n        "a": "\\u003c\\u0026\\u003e",\n        "b": 2\n    }\n]\n"str"\n'
    assert (tmp_path / "out.log").read_text() == expected


def test_raw_prints_strings_unquoted_and_null_as_an_empty_line(tmp_path):
    result = JqExecutor(_attempt(tmp_path, ".x, .n, .z", _INPUT, {"raw": True})).run()
    assert result.exit_code == 0
    assert (tmp_path / "out.log").read_text() == 'str\n\n[1,{"a":"\\u003c\\u0026\\u003e","b":2}]\n'


def test_2_15_filter_and_data_config_work_without_command(tmp_path):
    result = JqExecutor(_attempt(tmp_path, None, config={"filter": ".a + 1", "data": {"a": 41}})).run()
    assert result.exit_code == 0 and result.output == "42"


def test_input_file_is_read(tmp_path):
    (tmp_path / "in.json").write_text(json.dumps({"k": "v"}))
    result = JqExecutor(_attempt(tmp_path, ".k", config={"input": str(tmp_path / "in.json"), "raw": True})).run()
    assert result.output == "v"


def test_invalid_filter_names_the_filter(tmp_path):
    result = JqExecutor(_attempt(tmp_path, ".[", "{}")).run()
    assert result.exit_code == 1 and result.error.startswith("jq: cannot compile filter '.['")


def test_invalid_json_input_is_reported(tmp_path):
    result = JqExecutor(_attempt(tmp_path, ".", "{not json")).run()
    assert result.exit_code == 1 and "script is not valid JSON" in result.error


def test_runtime_error_fails_the_step(tmp_path):
    result = JqExecutor(_attempt(tmp_path, ".a", "[1]")).run()
    assert result.exit_code == 1 and "Cannot index array" in result.error


def test_example_runs_through_the_cli(tmp_path):
    result = run_dagu("start", str(EXAMPLES / "steps" / "jq.yaml"), home=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    status = json.loads(run_dagu("status", "--json", str(EXAMPLES / "steps" / "jq.yaml"), home=tmp_path).stdout)
    outputs = {k: v for n in status["nodes"] for k, v in (n.get("outputs") or {}).items()}
    assert outputs["COUNT"] == "2"
