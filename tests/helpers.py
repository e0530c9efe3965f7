"""Helpers shared by the tests: run the real `dagu` CLI in a subprocess, find the reference binary."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"


def run_dagu(*args: str, home: Path, cwd: Path | None = None, env: dict | None = None, timeout: float = 60,
             input: str | None = None) -> subprocess.CompletedProcess:
    """Run `python -m dagu <args>` with DAGU_HOME=home and return the completed process."""
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("DAGU_")}
    # Run the tree under test, whatever an editable install elsewhere points at.
    full_env.update({"DAGU_HOME": str(home), "DISABLE_PROGRESS": "1", "PYTHONPATH": str(ROOT)})
    if env:
        full_env.update(env)
    return subprocess.run(
        [sys.executable, "-m", "dagu", *args],
        cwd=cwd or ROOT, env=full_env, capture_output=True, text=True, timeout=timeout, input=input,
    )


def reference_dagu() -> str | None:
    """Path of the real Dagu binary (1.30.x) if one is installed, else None."""
    candidates = [
        os.environ.get("DAGU_REF_BIN"),
        str(ROOT / ".cache/dagu-ref/node_modules/@dagu-org/dagu-linux-x64/bin/dagu"),
        "/tmp/dagubin/node_modules/@dagu-org/dagu-linux-x64/bin/dagu",
    ]
    for c in candidates:
        if c and Path(c).is_file() and os.access(c, os.X_OK):
            return c
    return shutil.which("dagu-ref")


def wait_for(predicate, what: str, timeout: float = 20.0):
    """Return the first truthy value of `predicate()`, checking with a short backoff until `timeout`.

    Raises:
        AssertionError: naming `what` never happened.
    """
    deadline = time.monotonic() + timeout
    delay = 0.02
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(delay)
        delay = min(delay * 2, 0.2)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


def child_pids(*, zombies: bool = True) -> list[int]:
    """PIDs of this process's children, read from /proc (zombies included unless told)."""
    me = str(os.getpid())
    children = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
            except OSError:
                continue  # exited while we looked
            state, ppid = stat.rpartition(")")[2].split()[:2]
            if ppid == me and (zombies or state != "Z"):
                children.append(int(entry))
    return children


def compile_bytecode() -> None:
    """Write .pyc files before a benchmark: an installed package has them (pip compiles on
    install), while a checkout run with PYTHONDONTWRITEBYTECODE=1 would recompile every
    module on every start."""
    import compileall

    for pkg in ("dagu", "actors", "transports", "web"):
        if (ROOT / pkg).is_dir():
            compileall.compile_dir(str(ROOT / pkg), quiet=1)
