"""Run operations shared by the `/dags` and `/dag-runs` routes: finding runs (zombies
marked), checks before a new run, starting, enqueueing, stopping and dequeueing.

The CLI commands do the same things for one user at a terminal; here they are
plain functions over the `Api` context that raise `ApiError`/`DaguError`.
"""

from __future__ import annotations

import contextlib
import os
import shutil
from pathlib import Path
from typing import Any

from dagu.errors import NotFound
from dagu.events import events_dir, publish_once, run_event
from dagu.status import RunStatus
from dagu.store import AttemptHandle, RunHandle, RunRecord, read_status, rewrite_status, utc_now
from dagu.store import zombie
from dagu.store.naming import safe_name
from dagu.store.proc import list_alive
from web.api.common import Api
from web.api.launcher import spawn_dagu, wait_started
from web.catalog import FILE_NAME_RE
from web.errors import ApiError

__all__ = [
    "find",
    "latest_record",
    "blank_run",
    "sub_status",
    "alive_runs",
    "check_new_run",
    "start_process",
    "enqueue",
    "request_stop",
    "dequeue",
    "LATEST",
]

LATEST = "latest"


def find(api: Api, dag_name: str, run_id: str) -> tuple[RunHandle, AttemptHandle, RunRecord]:
    """(run, latest attempt, record) of `run_id` (or `latest`), a dead `running` run marked failed.

    Raises:
        NotFound: no such run (404).
        InvalidRequest: a malformed run ID (400).
    """
    store = api.runs
    if not FILE_NAME_RE.match(dag_name):
        raise ApiError.bad_request(f"invalid DAG name {dag_name!r}: use 1-40 letters, digits, '-', '_' or '.'")
    run = store.latest_run(dag_name) if run_id == LATEST else store.find_run(dag_name, run_id)
    attempt = store.latest_attempt(run)
    return run, attempt, _unzombie(api, attempt, read_status(attempt.status_path))


def latest_record(api: Api, dag_name: str, *, zombies: bool = True) -> RunRecord | None:
    """The latest run's record, or None when the DAG has none."""
    try:
        run = api.runs.latest_run(dag_name)
        attempt = api.runs.latest_attempt(run)
        record = read_status(attempt.status_path)
    except NotFound:
        return None
    return _unzombie(api, attempt, record) if zombies else record


def blank_run(dag_name: str) -> dict[str, Any]:
    """A `DAGRunSummary` for a DAG that never ran (all times "")."""
    return {
        "rootDAGRunName": dag_name, "rootDAGRunId": "", "dagRunId": "", "name": dag_name,
        "status": 0, "statusLabel": RunStatus.NOT_STARTED.label, "queuedAt": "", "startedAt": "",
        "finishedAt": "", "log": "", "params": "", "workerId": "",
    }


def sub_status(api: Api, record: RunRecord, run: RunHandle | None = None):
    """The callback `run_details` uses to fill `subRuns[].status` from the sub-runs' records.

    Args:
        run: the run folder of `record`; looked up from the record when None (root runs only).
    """
    if not any(n.children for n in record.nodes):
        return None
    if run is None and record.parent is None:
        with contextlib.suppress(NotFound, ApiError):
            run = api.runs.find_run(record.name, record.run_id)

    def lookup(child_dag: str, run_id: str) -> tuple[int, str]:
        if run is not None:
            with contextlib.suppress(NotFound, ApiError, OSError):
                rec = api.runs.read_latest(api.runs.find_sub_run(run, run_id))
                return int(rec.status), rec.status.label
        return 0, RunStatus.NOT_STARTED.label

    return lookup


def find_sub(api: Api, top: RunHandle, run_id: str) -> RunHandle:
    """The sub-run `run_id` anywhere under the run `top`.

    Raises:
        NotFound: no sub-run has that ID.
    """
    found = _search(api, top, run_id)
    if found is None:
        raise NotFound(f"sub dag-run {run_id} of {top.dag_name}/{top.run_id} not found")
    return found


def alive_runs(api: Api, dag_name: str) -> list[str]:
    """IDs of this DAG's runs whose heartbeat is fresh, oldest first."""
    safe = safe_name(dag_name)
    stale = zombie.stale_after_s(api.settings.zombie_detection_interval_s)
    return [e.run_id for e in list_alive(api.settings.proc_dir, stale_after_s=stale) if e.dag_name == safe]


def check_new_run(api: Api, dag_name: str, run_id: str) -> None:
    """409 when `dag_name` already has a run `run_id`."""
    with contextlib.suppress(NotFound):
        api.runs.find_run(dag_name, run_id)
        raise ApiError.conflict(f"dag-run ID {run_id} already exists for DAG {dag_name}")


def start_process(
    api: Api, dag_file: Path, dag_name: str, run_id: str, *, params: str | None = None,
    name: str | None = None, param_args: tuple[str, ...] = (), working_dir: str | None = None,
) -> RunRecord | None:
    """Spawn `dagu start` for a new run and wait (bounded) until it left not_started."""
    args = ["start", "-q", "-r", run_id]
    if name:
        args += ["-N", name]
    if params:
        args += ["-p", params]
    if working_dir:
        args += ["--default-working-dir", working_dir]
    args.append(str(dag_file))
    if param_args:
        args += ["--", *param_args]
    api.settings.ensure_dirs()
    proc = spawn_dagu(api.settings, args, f"{safe_name(dag_name)}.{run_id}")
    return wait_started(proc, api.runs, dag_name, run_id)


def enqueue(
    api: Api, dag_file: Path, run_id: str, *, params: str | None, name: str | None, queue: str | None,
    singleton: bool = False, working_dir: str | None = None,
) -> RunRecord:
    """Create a queued run and its queue item in this process (as `dagu enqueue` does)."""
    from actors.launch import RunRequest, enqueue_run
    from dagu.spec import load_dag
    from dagu.store.queue import validate_queue_name

    settings = api.settings
    if queue:
        validate_queue_name(queue)
    base = settings.base_config if settings.base_config.is_file() else None
    dag = load_dag(dag_file, name=name, base_config=base)
    check_new_run(api, dag.name, run_id)
    if singleton:
        group = queue or dag.queue or dag.name
        queued = [i for i in api.queues.items(group) if i.dag_name == dag.name] if _queue_exists(api, group) else []
        if alive_runs(api, dag.name) or queued:
            raise ApiError.conflict(f"DAG {dag.name} is already running or queued (singleton mode)")
    settings.ensure_dirs()
    request = RunRequest(run_id=run_id, params_text=params, queue=queue, default_working_dir=working_dir)
    return enqueue_run(dag, settings, request)


def request_stop(api: Api, attempt: AttemptHandle, record: RunRecord) -> None:
    """Ask a running run to stop (cancel flag + SIGTERM to its process); does not wait."""
    from dagu.cli.cmd_stop import stop_run

    stop_run(api.settings, attempt, record, wait=False)


def dequeue(api: Api, run: RunHandle, attempt: AttemptHandle, record: RunRecord) -> None:
    """Take a queued run off its queue: record it aborted, drop the item, hide the attempt.

    A run with no visible attempt left is removed, so it is then 404 by ID (as in Dagu).
    """
    if record.status != RunStatus.QUEUED:
        raise ApiError.bad_request(f"dag-run {record.run_id} is not queued (it is {record.status.label})")
    # Record first, then drop the item: a queue reader that still sees the item finds the run not queued.
    record.status = RunStatus.ABORTED
    record.finished_at = utc_now()
    record.error = "dequeued"
    rewrite_status(attempt.status_path, record)
    for queue in _queues_of(api, attempt):
        item = api.queues.find(queue, record.run_id, record.name)
        if item is not None:
            api.queues.remove(item)
    api.runs.hide_attempt(attempt)
    publish_once(events_dir(api.settings.data_dir), run_event(record.name, record.run_id, record.status))
    if not api.runs.list_attempts(run):
        shutil.rmtree(run.path, ignore_errors=True)
        shutil.rmtree(run.log_dir, ignore_errors=True)


def _queues_of(api: Api, attempt: AttemptHandle) -> list[str]:
    with contextlib.suppress(NotFound, ValueError, OSError):
        queue = api.runs.read_dag_json(attempt).get("queue")
        if isinstance(queue, str) and queue:
            return [queue]
    return api.queues.queue_names()


def _queue_exists(api: Api, queue: str) -> bool:
    return (api.queues.queue_dir / queue).is_dir()


def _unzombie(api: Api, attempt: AttemptHandle, record: RunRecord) -> RunRecord:
    if record.status != RunStatus.RUNNING:
        return record
    stale = zombie.stale_after_s(api.settings.zombie_detection_interval_s)
    return zombie.mark_if_zombie(api.settings.proc_dir, attempt, record, stale_after_s=stale)


def _search(api: Api, run: RunHandle, run_id: str) -> RunHandle | None:
    children = run.path / "children"
    if not children.is_dir():
        return None
    with contextlib.suppress(NotFound):
        return api.runs.find_sub_run(run, run_id)
    for entry in sorted(os.listdir(children)):
        if entry.startswith("child_"):
            with contextlib.suppress(NotFound, ApiError):
                hit = _search(api, api.runs.find_sub_run(run, entry[len("child_"):]), run_id)
                if hit is not None:
                    return hit
    return None
