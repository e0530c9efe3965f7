"""Starting run processes for the API: `dagu start` / `dagu retry` as detached OS processes,
and the bounded wait until the run shows it started.

A run is its own process in its own session, so it outlives the server; a daemon
thread reaps it so the server leaves no zombie processes behind. What to start
(checks, IDs, params) is decided by the route modules; this module only launches
and waits.
"""

from __future__ import annotations

import contextlib
import logging
import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from dagu.config import Settings
from dagu.errors import NotFound
from dagu.status import RunStatus
from dagu.store import RunRecord, RunStore
from web.errors import ApiError

__all__ = ["spawn_dagu", "wait_started", "START_WAIT_S", "inline_spec_path"]

logger = logging.getLogger(__name__)

START_WAIT_S = 5.0  # as Dagu: how long `start` waits for the run to leave not_started


def spawn_dagu(settings: Settings, args: Sequence[str], log_name: str) -> subprocess.Popen[bytes]:
    """Run `python -m dagu <args>` detached (own session), output to `<admin logs>/api/<log_name>.log`."""
    log_path = settings.admin_log_dir / "api" / f"{log_name}.log"
    log_path.parent.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, **settings.env_for_children()}
    # The server may run with flag overrides the child cannot read from config.
    env["DAGU_DAGS_DIR"] = str(settings.dags_dir)
    env["DAGU_DATA_DIR"] = str(settings.data_dir)
    env["DAGU_LOG_DIR"] = str(settings.log_dir)
    with open(log_path, "ab") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "dagu", *args], stdin=subprocess.DEVNULL, stdout=log, stderr=log,
            env=env, cwd=str(settings.dags_dir) if settings.dags_dir.is_dir() else None, start_new_session=True,
        )
    proc.log_path = log_path  # type: ignore[attr-defined]
    threading.Thread(target=proc.wait, name=f"reap-{proc.pid}", daemon=True).start()
    logger.info("api: started [%d] dagu %s", proc.pid, " ".join(args))
    return proc


def wait_started(
    proc: subprocess.Popen[bytes],
    store: RunStore,
    dag_name: str,
    run_id: str,
    *,
    is_new: Callable[[RunRecord], bool] = lambda rec: True,
    timeout_s: float = START_WAIT_S,
) -> RunRecord | None:
    """Wait until the run's latest attempt satisfies `is_new` and left `not_started`.

    Returns:
        The record, or None if the process is still busy when `timeout_s` passes.

    Raises:
        ApiError: the process exited without starting the run (400 with its last
            output, 409 when it reports the run ID taken).
    """
    deadline = time.monotonic() + timeout_s
    delay = 0.01
    while True:
        record = _read(store, dag_name, run_id)
        if record is not None and is_new(record) and record.status != RunStatus.NOT_STARTED:
            return record
        code = proc.poll()
        if code is not None:
            record = _read(store, dag_name, run_id)
            if record is not None and is_new(record):
                return record  # it ran and ended between two looks
            raise _launch_error(proc, code)
        if time.monotonic() >= deadline:
            return None
        # NOTE: the run is another process; its status file has no notification we can rely on.
        time.sleep(delay)
        delay = min(delay * 2, 0.1)


def inline_spec_path(settings: Settings, dag_name: str, run_id: str) -> Path:
    """Where a spec given in a request (not in the DAGs folder) is kept for its run: `<data>/api-specs/`."""
    # DAG names (`[a-zA-Z0-9_.-]`, checked before) are safe file names, and a spec without
    # `name:` takes its name from the file stem, so the run process loads it under that name.
    return settings.data_dir / "api-specs" / run_id / f"{dag_name}.yaml"


def _read(store: RunStore, dag_name: str, run_id: str) -> RunRecord | None:
    with contextlib.suppress(NotFound):
        return store.read_latest(store.find_run(dag_name, run_id))
    return None


def _launch_error(proc: subprocess.Popen[bytes], code: int) -> ApiError:
    text = ""
    with contextlib.suppress(OSError):
        text = Path(proc.log_path).read_text(errors="replace")[-2000:]  # type: ignore[attr-defined]
    lines = [ln.removeprefix("Error: ") for ln in text.strip().splitlines() if ln.strip()]
    message = "\n".join(lines[-5:]) or f"the run process exited with code {code} before the run started"
    if "already exists" in message:
        return ApiError.conflict(message)
    return ApiError.bad_request(message)
