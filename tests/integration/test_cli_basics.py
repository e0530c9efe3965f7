"""The CLI as a user meets it: help, version, validate on examples and broken files, lazy imports."""

from __future__ import annotations

import subprocess
import sys

import pytest

from helpers import EXAMPLES, ROOT, run_dagu

EXAMPLE_FILES = sorted(EXAMPLES.rglob("*.yaml"))  # step-type examples live in examples/steps/
BROKEN_FILES = sorted((ROOT / "tests/spec_errors").glob("*.yaml"))


def test_there_are_a_dozen_examples():
    assert len(EXAMPLE_FILES) >= 12


@pytest.mark.parametrize("path", EXAMPLE_FILES, ids=lambda p: str(p.relative_to(EXAMPLES)))
def test_validate_accepts_every_example(path, tmp_path):
    result = run_dagu("validate", str(path), home=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "valid" in result.stderr


@pytest.mark.parametrize("path", BROKEN_FILES, ids=lambda p: p.name)
def test_validate_rejects_each_broken_file_with_file_line_and_field(path, tmp_path):
    result = run_dagu("validate", str(path), home=tmp_path)
    assert result.returncode == 1, result.stderr
    # Every problem line starts with the file path and a line number.
    lines = [ln for ln in result.stderr.splitlines() if ln.startswith(str(path))]
    assert lines, result.stderr
    assert all(ln[len(str(path)) :].split(":")[1].isdigit() for ln in lines), lines


def test_there_are_at_least_forty_broken_files():
    assert len(BROKEN_FILES) >= 40


def test_validate_finds_a_workflow_by_name_in_the_dags_folder(tmp_path):
    (tmp_path / "dags").mkdir()
    (tmp_path / "dags" / "nightly.yaml").write_text("steps:\n  - command: echo hi\n")
    assert run_dagu("validate", "nightly", home=tmp_path).returncode == 0


def test_validate_of_a_missing_file_says_where_it_looked(tmp_path):
    result = run_dagu("validate", "no-such-flow", home=tmp_path)
    assert result.returncode == 1
    assert "no-such-flow" in result.stderr and str(tmp_path / "dags") in result.stderr


def test_version_prints_the_package_version(tmp_path):
    from dagu import __version__

    result = run_dagu("version", home=tmp_path)
    assert result.returncode == 0 and result.stdout.strip() == __version__


@pytest.mark.parametrize("command", ["start", "dry", "validate", "status", "stop", "retry", "history", "cleanup", "version"])
def test_every_command_has_help(command, tmp_path):
    result = run_dagu(command, "--help", home=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("usage: dagu " + command)


def test_top_level_help_lists_the_commands(tmp_path):
    result = run_dagu("--help", home=tmp_path)
    assert result.returncode == 0
    for name in ("start", "validate", "dry", "status"):
        assert name in result.stdout


def test_unknown_command_is_a_usage_error(tmp_path):
    result = run_dagu("frobnicate", home=tmp_path)
    assert result.returncode == 2
    assert "invalid choice" in result.stderr


def test_validate_imports_no_server_or_distributed_libraries():
    code = (
        "import sys\n"
        "from dagu.cli.main import main\n"
        f"rc = main(['-q', 'validate', {str(EXAMPLES / 'hello.yaml')!r}])\n"
        "heavy = [m for m in ('grpc', 'uvicorn', 'starlette', 'docker', 'prometheus_client', 'croniter', 'pykka') if m in sys.modules]\n"
        "print(rc, heavy)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert out == "0 []"


def test_croniter_is_imported_only_for_a_file_with_a_schedule():
    code = (
        "import sys\n"
        "from dagu.cli.main import main\n"
        f"rc = main(['-q', 'validate', {str(EXAMPLES / 'schedule.yaml')!r}])\n"
        "print(rc, 'croniter' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert out == "0 True"
