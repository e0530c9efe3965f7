"""Helpers for the step-type tests: write a DAG, run it through the real CLI, read its status."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

from helpers import ROOT, run_dagu, wait_for

__all__ = ["write", "start", "status", "nodes", "statuses", "out", "err", "spawn_start", "wait_running", "stop"]


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / f"{name}.yaml"
    path.write_text(textwrap.dedent(text))
    return path


def start(tmp_path: Path, path: Path, env: dict | None = None, timeout: float = 90):
    return run_dagu("start", str(path), home=tmp_path / "home", env=env, timeout=timeout)


def status(tmp_path: Path, dag: str) -> dict:
    result = run_dagu("status", "--json", dag, home=tmp_path / "home")
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def nodes(doc: dict) -> dict[str, dict]:
    return {n["step"]["name"]: n for n in doc["nodes"]}


def statuses(doc: dict) -> dict[str, str]:
    return {name: n["statusLabel"] for name, n in nodes(doc).items()}


def out(node: dict) -> str:
    return Path(node["stdout"]).read_text() if node.get("stdout") else ""


def err(node: dict) -> str:
    return Path(node["stderr"]).read_text() if node.get("stderr") else ""


def spawn_start(tmp_path: Path, path: Path, env: dict | None = None) -> subprocess.Popen:
    full = {k: v for k, v in os.environ.items() if not k.startswith("DAGU_")}
    full.update({"DAGU_HOME": str(tmp_path / "home"), "DISABLE_PROGRESS": "1", "PYTHONPATH": str(ROOT)})
    full.update(env or {})
    return subprocess.Popen([sys.executable, "-m", "dagu", "start", str(path)], cwd=ROOT, env=full,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def wait_running(tmp_path: Path, dag: str, step: str) -> dict:
    def check():
        r = run_dagu("status", "--json", dag, home=tmp_path / "home")
        if r.returncode != 0:
            return None
        doc = json.loads(r.stdout)
        return doc if nodes(doc)[step]["statusLabel"] == "running" else None

    return wait_for(check, f"step {step} of {dag} to be running", timeout=60)


def stop(tmp_path: Path, dag: str, proc: subprocess.Popen) -> int:
    """`dagu stop` the run and return the start process's exit code."""
    result = run_dagu("stop", dag, home=tmp_path / "home", timeout=60)
    assert result.returncode == 0, result.stderr
    try:
        return proc.wait(timeout=60)
    finally:
        proc.kill()
        proc.communicate()
