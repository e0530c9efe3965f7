"""The template step type: the Go text/template subset, output to stdout or a file, errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from dagu.spec.model import Dag, Location, Step
from dagu.steps.base import Attempt
from dagu.steps.template import TemplateError, TemplateExecutor, render
from helpers import EXAMPLES, run_dagu


def _attempt(tmp_path: Path, template: str, data: dict | None = None, **config) -> Attempt:
    loc = Location(str(tmp_path / "dag.yaml"))
    cfg = {"template": template, "data": data or {}, **config}
    step = Step(name="t", location=loc, type="template", config=cfg)
    return Attempt(
        dag=Dag(name="t", location=loc), step=step, commands=(), script=None, shell=("sh",), env={},
        cwd=str(tmp_path), stdout_path=str(tmp_path / "out.log"), stderr_path=str(tmp_path / "err.log"),
        config=cfg, capture_output=True,
    )  # fmt: skip


@pytest.mark.parametrize(
    ("text", "data", "expected"),
    [
        ("{{ .a.b }}-{{ .missing }}", {"a": {"b": "x"}}, "x-<no value>"),
        ("{{ range .xs }}[{{ . }}]{{ end }}", {"xs": [1, 2]}, "[1][2]"),
        ("{{ range $k, $v := .m }}{{ $k }}={{ $v }};{{ end }}", {"m": {"b": 2, "a": 1}}, "a=1;b=2;"),
        ("{{ range .xs }}x{{ else }}empty{{ end }}", {"xs": []}, "empty"),
        ("{{ if .a }}A{{ else if .b }}B{{ else }}C{{ end }}", {"a": 0, "b": "y"}, "B"),
        ("{{ if not .a }}no{{ end }}{{ if eq .s \"v\" }}eq{{ end }}", {"s": "v"}, "noeq"),
        ("{{ with .o }}{{ .k }}{{ end }}|{{ $.top }}", {"o": {"k": "in"}, "top": "t"}, "in|t"),
        ("a  {{- .x -}}  b", {"x": "X"}, "aXb"),
        ("{{/* note */}}{{ .m }} {{ .l }}", {"m": {"k": 1}, "l": [1, "a"]}, "map[k:1] [1 a]"),
    ],
)
def test_go_template_subset_renders_like_go(text, data, expected):
    assert render(text, data) == expected


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("{{ if .a }}x", "missing {{ end }}"),
        ("x {{ end }}", "line 1: unexpected {{ end }}"),
        ("{{ .a | upper }}", "pipelines"),
        ("{{ .a", "unclosed action"),
        ("line\n{{ frob .a }}", "line 2: function 'frob' not defined"),
    ],
)
def test_malformed_templates_are_reported_with_the_line(text, message):
    with pytest.raises(TemplateError, match=message.replace("{", r"\{").replace("}", r"\}").replace("|", r"\|")):
        render(text, {})


def test_step_renders_to_stdout_and_output(tmp_path):
    result = TemplateExecutor(_attempt(tmp_path, "hello {{ .who }}\n", {"who": "world"})).run()
    assert result.exit_code == 0 and result.output == "hello world"
    assert (tmp_path / "out.log").read_text() == "hello world\n"


def test_step_writes_the_output_file_relative_to_the_working_dir(tmp_path):
    result = TemplateExecutor(_attempt(tmp_path, "{{ .n }}", {"n": 3}, output="sub/out.txt")).run()
    assert result.exit_code == 0
    assert (tmp_path / "sub" / "out.txt").read_text() == "3"
    assert (tmp_path / "out.log").read_text() == ""


def test_step_fails_on_a_bad_template(tmp_path):
    result = TemplateExecutor(_attempt(tmp_path, "{{ if .x }}")).run()
    assert result.exit_code == 1 and result.error.startswith("template: ")


def test_example_runs_through_the_cli(tmp_path):
    path = EXAMPLES / "steps" / "template.yaml"
    result = run_dagu("start", str(path), home=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    status = json.loads(run_dagu("status", "--json", str(path), home=tmp_path).stdout)
    config = next(n for n in status["nodes"] if n["step"]["name"] == "render")["outputs"]["CONFIG"]
    assert config == "# generated for staging by ops\nreplicas=2\nlog_level=info"
