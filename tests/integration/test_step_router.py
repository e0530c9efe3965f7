"""The router step type: load-time wiring and errors, and real runs through the CLI."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest

from dagu.errors import SpecError
from dagu.spec.loader import load_dag_text
from helpers import EXAMPLES, run_dagu


def _statuses(home: Path, path: Path) -> dict[str, str]:
    doc = json.loads(run_dagu("status", "--json", str(path), home=home).stdout)
    return {n["step"]["name"]: n["statusLabel"] for n in doc["nodes"]}


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "routes.yaml"
    path.write_text(textwrap.dedent(text))
    return path


def test_targets_depend_on_the_router_and_carry_its_precondition():
    dag = load_dag_text(
        textwrap.dedent(
            """
            type: graph
            steps:
              - {name: r, type: router, config: {value: "${V}", routes: {"a": [x], "re:^b": y}}}
              - {name: x, command: echo x}
              - {name: y, command: echo y}
            """
        )
    )
    x, y = dag.step("x"), dag.step("y")
    assert x.depends == ("r",) and y.depends == ("r",)
    assert [(p.condition, p.expected) for p in x.preconditions] == [("${V}", "a")]
    assert [(p.condition, p.expected) for p in y.preconditions] == [("${V}", "re:^b")]


def test_step_level_value_and_routes_make_a_router():
    dag = load_dag_text("type: graph\nsteps:\n  - {name: r, value: go, routes: {go: [t]}}\n  - {name: t, command: echo}\n")
    assert dag.step("r").type == "router" and dag.step("t").depends == ("r",)


@pytest.mark.parametrize(
    ("body", "line", "message"),
    [
        ("steps:\n  - {name: r, type: router, config: {value: a, routes: {a: [t]}}}\n  - {name: t, command: echo}\n", 2, "router steps need a graph DAG"),
        ("type: graph\nsteps:\n  - name: r\n    type: router\n    config:\n      value: a\n      routes:\n        a: [t, ghost]\n  - {name: t, command: echo}\n", 8, 'routes to non-existent step "ghost"'),
        ("type: graph\nsteps:\n  - name: r\n    type: router\n    config:\n      value: a\n      routes:\n        a: [t]\n        b: t\n  - {name: t, command: echo}\n", 9, 'step "t" is already a target of router "r"'),
        ("type: graph\nsteps:\n  - name: r\n    type: router\n    config:\n      value: a\n      routes:\n        a: [r]\n", 8, "cannot route to itself"),
        ("type: graph\nsteps:\n  - name: r\n    type: router\n    config:\n      value: a\n      routes:\n        're:(': [t]\n  - {name: t, command: echo}\n", 8, "invalid regular expression"),
    ],
)
def test_bad_routes_are_load_errors_with_file_and_line(body, line, message):
    with pytest.raises(SpecError) as info:
        load_dag_text(body, "dags/routes.yaml")
    issues = info.value.issues
    assert any(i.file == "dags/routes.yaml" and i.line == line and message in i.message for i in issues), issues


def test_validate_reports_the_file_and_line(tmp_path):
    path = _write(tmp_path, "type: graph\nsteps:\n  - name: r\n    type: router\n    config:\n      value: a\n      routes:\n        a: [ghost]\n")
    result = run_dagu("validate", str(path), home=tmp_path)
    assert result.returncode != 0
    assert f"{path}:8:" in result.stdout + result.stderr


def test_example_runs_matched_targets_and_skips_the_rest(tmp_path):
    path = EXAMPLES / "steps" / "router.yaml"
    result = run_dagu("start", str(path), home=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert _statuses(tmp_path, path) == {
        "probe": "succeeded", "route": "succeeded", "ok": "skipped", "server_error": "succeeded",
        "page": "succeeded", "client_error": "skipped", "after_ok": "skipped",
    }  # fmt: skip


def test_a_different_value_takes_the_other_route(tmp_path):
    path = EXAMPLES / "steps" / "router.yaml"
    result = run_dagu("start", str(path), "--", "CODE=200", home=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    statuses = _statuses(tmp_path, path)
    assert statuses["ok"] == statuses["after_ok"] == "succeeded"
    assert statuses["server_error"] == statuses["page"] == statuses["client_error"] == "skipped"
