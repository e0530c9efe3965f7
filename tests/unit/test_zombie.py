"""The zombie rule: a `running` run is dead only after no sign of life (heartbeat or status write) for the threshold."""

from __future__ import annotations

import os
import time

from dagu.status import RunStatus
from dagu.store import RunRecord, RunStore, read_status, rewrite_status
from dagu.store.zombie import mark_if_zombie


def _running(tmp_path):
    store = RunStore(tmp_path / "data", tmp_path / "logs")
    attempt = store.new_attempt(store.create_run("etl", "r1"))
    rewrite_status(attempt.status_path, RunRecord("etl", "r1", status=RunStatus.RUNNING))
    return attempt


def test_a_run_without_heartbeat_whose_status_was_just_written_is_not_yet_a_zombie(tmp_path):
    attempt = _running(tmp_path)
    record = mark_if_zombie(tmp_path / "data" / "proc", attempt, read_status(attempt.status_path), stale_after_s=30)
    assert record.status == RunStatus.RUNNING
    assert read_status(attempt.status_path).status == RunStatus.RUNNING


def test_a_run_without_heartbeat_and_no_recent_write_is_marked_failed(tmp_path):
    attempt = _running(tmp_path)
    old = time.time() - 60
    os.utime(attempt.status_path, (old, old))
    record = mark_if_zombie(tmp_path / "data" / "proc", attempt, read_status(attempt.status_path), stale_after_s=30)
    assert record.status == RunStatus.FAILED and "no heartbeat" in record.error
    assert read_status(attempt.status_path).status == RunStatus.FAILED
