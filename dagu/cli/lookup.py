"""Finding the run a command talks about, and noticing runs whose process is gone (zombies)."""

from __future__ import annotations

import logging
from pathlib import Path

from dagu.config import Settings

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
    from dagu.store import zombie

    stale = zombie.stale_after_s(settings.zombie_detection_interval_s)
    return zombie.mark_if_zombie(settings.proc_dir, attempt, record, stale_after_s=stale)
