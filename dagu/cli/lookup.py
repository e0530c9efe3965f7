"""Finding the run a command talks about, and noticing runs whose process is gone (zombies)."""

from __future__ import annotations

import logging
from pathlib import Path

from dagu.config import Settings
from dagu.status import NodeStatus, RunStatus

__all__ = ["dag_name_of", "find_run", "mark_if_zombie"]

logger = logging.getLogger(__name__)


def dag_name_of(arg: str, settings: Settings) -> str:
    """A DAG-name argument: a workflow file (loaded for its name) or the name itself."""
    from dagu.errors import NotFound

    p = Path(arg).expanduser()
    candidates = [p] if p.suffix in (".yaml", ".yml") or p.is_file() else [settings.dags_dir / f"{arg}.yaml"]
    for c in candidates:
        if c.is_file():
            from dagu.spec import load_dag

            return load_dag(c).name
    if p.suffix in (".yaml", ".yml"):
        raise NotFound(f"workflow file {arg} not found")
    return arg


def find_run(settings: Settings, dag_name: str, run_id: str | None = None):
    """(run handle, attempt handle, record) of the latest run or of `run_id`, zombies marked.

    Raises:
        NotFound: the DAG has no such run.
    """
    from dagu.errors import NotFound
    from dagu.store import RunStore

    store = RunStore(settings.data_dir, settings.log_dir)
    try:
        run = store.find_run(dag_name, run_id) if run_id else store.latest_run(dag_name)
        attempt = store.latest_attempt(run)
    except NotFound as exc:
        raise NotFound(f"no run found for DAG {dag_name}" + (f" with run ID {run_id}" if run_id else "") + f" ({exc})") from None
    from dagu.store import read_status

    record = read_status(attempt.status_path)
    return run, attempt, mark_if_zombie(settings, attempt, record)


def mark_if_zombie(settings: Settings, attempt, record):
    """A run that says `running` but whose heartbeat is missing or stale is dead: record it as failed."""
    if record.status != RunStatus.RUNNING:
        return record
    from dagu.store import find_heartbeat, is_alive, rewrite_status, utc_now

    beat = find_heartbeat(settings.proc_dir, record.name, record.run_id)
    if beat is not None and is_alive(beat, stale_after_s=settings.zombie_detection_interval_s):
        return record
    why = "heartbeat stale" if beat is not None else "no heartbeat"
    logger.warning("run %s/%s is a zombie (%s); marking it failed", record.name, record.run_id, why)
    now = utc_now()
    for node in record.nodes:
        if node.status == NodeStatus.RUNNING:
            node.status = NodeStatus.FAILED
            node.error = f"the run process died ({why})"
            node.finished_at = now
    record.status = RunStatus.FAILED
    record.error = f"zombie run: its process is gone ({why} for over {settings.zombie_detection_interval_s:g}s)"
    record.finished_at = now
    rewrite_status(attempt.status_path, record)
    if beat is not None:
        beat.unlink(missing_ok=True)
    return record
