"""The zombie rule: a run recorded as `running` whose heartbeat is missing or stale is dead (service.md 5.5).

Owns deciding that one run is a zombie and recording it as failed. It does not
decide when to look (the CLI looks before showing or stopping a run; the
scheduler sweeps every `zombie_detection_interval`).
"""

from __future__ import annotations

import logging
import os
import time

from dagu.status import NodeStatus, RunStatus
from dagu.store.proc import DEFAULT_STALE_AFTER_S, find_heartbeat, is_alive
from dagu.store.records import RunRecord, utc_now
from dagu.store.status_log import rewrite_status

__all__ = ["mark_if_zombie", "stale_after_s"]

logger = logging.getLogger(__name__)


def stale_after_s(zombie_detection_interval_s: float) -> float:
    """How old a heartbeat may be before its run counts as dead.

    The detection interval doubles as the threshold (as before); 0 only disables
    the scheduler's sweep, so it falls back to the heartbeat default instead of
    declaring every run dead.
    """
    return zombie_detection_interval_s if zombie_detection_interval_s > 0 else DEFAULT_STALE_AFTER_S


def _written_within(path: str | os.PathLike[str], seconds: float) -> bool:
    try:
        return time.time() - os.stat(path).st_mtime < seconds
    except OSError:
        return False


def mark_if_zombie(
    proc_dir: str | os.PathLike[str], attempt, record: RunRecord, *, stale_after_s: float
) -> RunRecord:
    """Record a `running` run whose heartbeat is missing or stale as failed; return the record.

    Args:
        proc_dir: `<data>/proc`.
        attempt: the run's latest `AttemptHandle`; its status file is rewritten.
        record: that attempt's status, changed in place when the run is a zombie.
        stale_after_s: see `stale_after_s()`.
    """
    if record.status != RunStatus.RUNNING:
        return record
    beat = find_heartbeat(proc_dir, record.name, record.run_id)
    if beat is not None and is_alive(beat, stale_after_s=stale_after_s):
        return record
    if beat is None and _written_within(attempt.status_path, stale_after_s):
        # Its process wrote the status only just now: a sign of life as good as a beat.
        # Declaring it dead here would also cut off its later writes (the rewrite below
        # replaces the file the process appends to).
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
    record.error = f"zombie run: its process is gone ({why} for over {stale_after_s:g}s)"
    record.finished_at = now
    rewrite_status(attempt.status_path, record)
    if beat is not None:
        beat.unlink(missing_ok=True)
    return record
