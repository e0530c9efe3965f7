"""Every example in examples/ runs to the status its test expects, through the real CLI."""

from __future__ import annotations

import json

import pytest

from helpers import EXAMPLES, run_dagu

EXPECTED = {
    "hello.yaml": "succeeded",
    "graph.yaml": "succeeded",
    "params.yaml": "succeeded",
    "outputs.yaml": "succeeded",
    "retry.yaml": "succeeded",
    "preconditions.yaml": "succeeded",
    "handlers.yaml": "succeeded",
    "subdag.yaml": "succeeded",
    "parallel.yaml": "succeeded",
    "schedule.yaml": "succeeded",
    "continue_on.yaml": "partially_succeeded",
    "env_and_script.yaml": "succeeded",
    "repeat.yaml": "succeeded",
    "legacy_camel_case.yaml": "succeeded",
}


def test_every_example_has_an_expectation():
    assert sorted(p.name for p in EXAMPLES.glob("*.yaml")) == sorted(EXPECTED)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_example_runs_to_its_expected_status(name, tmp_path):
    result = run_dagu("start", str(EXAMPLES / name), home=tmp_path, timeout=90)
    status = run_dagu("status", "--json", str(EXAMPLES / name), home=tmp_path)
    assert status.returncode == 0, status.stderr
    doc = json.loads(status.stdout)
    assert doc["statusLabel"] == EXPECTED[name], result.stdout + result.stderr
    assert result.returncode == (0 if EXPECTED[name] == "succeeded" else 1)


def _node(doc, name):
    return next(n for n in doc["nodes"] if n["step"]["name"] == name)


def _log(path):
    with open(path) as f:
        return f.read()


def test_outputs_example_passes_values_and_json_paths(tmp_path):
    assert run_dagu("start", str(EXAMPLES / "outputs.yaml"), home=tmp_path).returncode == 0
    doc = json.loads(run_dagu("status", "--json", "outputs", home=tmp_path).stdout)
    assert _node(doc, "use_them")["outputs"] == {"MESSAGE": "hello world, user 42 is admin"}


def test_subdag_example_reads_the_child_outputs(tmp_path):
    assert run_dagu("start", str(EXAMPLES / "subdag.yaml"), home=tmp_path).returncode == 0
    doc = json.loads(run_dagu("status", "--json", "subdag", home=tmp_path).stdout)
    assert _log(_node(doc, "report")["stdout"]).strip() == "child said processed batch-17"


def test_parallel_example_runs_every_item(tmp_path):
    assert run_dagu("start", str(EXAMPLES / "parallel.yaml"), home=tmp_path).returncode == 0
    doc = json.loads(run_dagu("status", "--json", "parallel", home=tmp_path).stdout)
    assert _log(_node(doc, "summary")["stdout"]).strip() == "4 of 4 regions done"


def test_retry_example_succeeds_on_the_third_attempt(tmp_path):
    assert run_dagu("start", str(EXAMPLES / "retry.yaml"), home=tmp_path).returncode == 0
    doc = json.loads(run_dagu("status", "--json", "retry", home=tmp_path).stdout)
    flaky = _node(doc, "flaky")
    assert flaky["retryCount"] == 2
    assert _log(flaky["stdout"]).split() == ["attempt", "1", "attempt", "2", "attempt", "3"]


def test_handlers_example_runs_success_and_exit_hooks(tmp_path):
    assert run_dagu("start", str(EXAMPLES / "handlers.yaml"), home=tmp_path).returncode == 0
    doc = json.loads(run_dagu("status", "--json", "handlers", home=tmp_path).stdout)
    assert doc["onSuccess"]["statusLabel"] == "succeeded"
    assert _log(doc["onExit"]["stdout"]).strip() == "cleanup at exit"
    assert "onFailure" not in doc
