"""WorkerProxyActor: one remote worker seen as a local runner, and the recorder of its runs.

The coordinator starts one per connected worker. What the worker reports (the
same StepChanged / RunChanged a local run announces, with the run's status
record, and its log bytes) is written here into the coordinator's own run
history, so `dagu status` and the API show a remote run like a local one: a new
attempt beside the queued record, `status.jsonl` with one change line per change,
step logs under the usual log folder, `outputs.json`, and a heartbeat file while
the run is alive (so queue limits and zombie checks count it). The submitter
learns `RunStarted` / `RunEnded` through the transport's mailboxes. It does not
decide which worker gets a run (the CoordinatorActor does).

When the worker is lost, its started runs are marked failed with the reason, or
re-queued if the DAG has a DAG-level `retry_policy` with `limit` > 0 (at most
that many times); runs handed over but never started go back to the queue.
"""

from __future__ import annotations

import contextlib
import logging
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson
import pykka

from actors.messages import (
    CancelRun,
    GetSnapshot,
    LogChunk,
    RemoteRunEnded,
    RemoteTask,
    RunAssigned,
    RunEnded,
    RunStarted,
    StatusReported,
    WorkerBeat,
    WorkerLost,
)
from actors.supervised import tell_if_alive
from dagu.config import Settings
from dagu.errors import DaguError, NotFound
from dagu.events import events_dir, publish_once, run_event, step_event
from dagu.status import NodeStatus, RunStatus
from dagu.store import HANDLER_KEYS, Heartbeat, RunRecord, RunStore, StatusWriter, read_status, rewrite_status, utc_now

__all__ = ["WorkerProxyActor", "note_waiting", "CLAIM_TIMEOUT_S"]

logger = logging.getLogger(__name__)

CLAIM_TIMEOUT_S = 30.0  # a handed-over run that neither reports nor shows in a heartbeat by then was lost on the way
_RUN_LOG_STREAM = 3
RunKey = tuple[str, str]


class WorkerProxyActor(pykka.ThreadingActor):
    """Stands for worker `worker_id` inside the coordinator and records its runs.

    Args:
        settings: the coordinator's data and log folders (shared with the scheduler).
        coordinator: told `RemoteRunEnded` when a run of this worker ends.
        mailboxes: delivers RunStarted / RunEnded to the run's submitter.
    """

    def __init__(self, worker_id: str, settings: Settings, coordinator: pykka.ActorRef[Any], mailboxes: Any,
                 *, clock: Callable[[], float] = time.time):
        super().__init__()
        self._worker_id = worker_id
        self._settings = settings
        self._coordinator = coordinator
        self._mailboxes = mailboxes
        self._clock = clock
        self._store = RunStore(settings.data_dir, settings.log_dir)
        self._assigned: dict[RunKey, tuple[RemoteTask, float]] = {}
        self._runs: dict[RunKey, _RemoteRun] = {}
        self._announced: dict[RunKey, dict[str, int]] = {}  # last published status per node ("" = the run)
        self._cancel: set[RunKey] = set()
        self._label = f"WorkerProxyActor({worker_id})"

    def on_stop(self) -> None:
        for run in self._runs.values():
            run.detach()  # the coordinator stops: the run goes on; a successor re-adopts it

    def on_receive(self, message: Any) -> Any:
        match message:
            case RunAssigned(task=task):
                self._assigned[(task.dag_name, task.run_id)] = (task, self._clock())
            case StatusReported():
                return self._on_status(message)
            case LogChunk():
                return self._on_log(message)
            case WorkerBeat(running=running):
                return self._on_beat(running)
            case CancelRun(dag_name=dag, run_id=run_id):
                self._cancel.add((dag, run_id))
            case WorkerLost(reason=reason):
                self._on_lost(reason)
                self.stop()
            case GetSnapshot():
                return tuple(sorted(self._runs)), tuple(sorted(self._assigned))
            case _:
                return super().on_receive(message)
        return None

    # -- reports --------------------------------------------------------------------------

    def _on_status(self, msg: StatusReported) -> tuple[bool, str, bool]:
        """Record one report; returns (accepted, error, stop the run)."""
        key = (msg.dag_name, msg.run_id)
        run = self._runs.get(key)
        try:
            if run is None:
                run = self._start_recording(key)
                if run is None:
                    return False, f"run {msg.dag_name}/{msg.run_id} is not running here any more", True
            doc = orjson.loads(msg.record)
            run.apply(doc, final=msg.event is None)
            self._announce(msg, doc)
            if msg.event is None:
                run.finish(orjson.loads(msg.outputs) if msg.outputs else {}, msg.exit_code)
                self._ended(key, run.queue, msg.exit_code)
        except (DaguError, OSError, ValueError) as exc:
            logger.warning("%s: report of %s/%s not recorded: %s", self._label, *key, exc)
            return False, str(exc), False
        return True, "", key in self._cancel

    def _announce(self, msg: StatusReported, doc: Any) -> None:
        """Publish on this host's event bus what changed since the run's last report, as a local run would.

        Workers coalesce bursts of changes into one report, so the changes are read off
        the record (every node's status, then the run's) rather than off `msg.event`.
        """
        if not isinstance(doc, dict):
            return
        key = (msg.dag_name, msg.run_id)
        root = (doc.get("rootDAGRunName") or msg.dag_name, doc.get("rootDAGRunId") or msg.run_id)
        seen = self._announced.setdefault(key, {})
        directory = events_dir(self._settings.data_dir)
        nodes = list(doc.get("nodes") or []) + [doc[k] for k in HANDLER_KEYS if isinstance(doc.get(k), dict)]
        for node in nodes:
            name, status = (node.get("step") or {}).get("name"), node.get("status")
            if name and isinstance(status, int) and seen.get(name) != status:
                seen[name] = status
                publish_once(directory, step_event(msg.dag_name, msg.run_id, name, NodeStatus(status), root=root))
        status = doc.get("status")
        if isinstance(status, int) and seen.get("") != status:
            seen[""] = status
            publish_once(directory, run_event(msg.dag_name, msg.run_id, RunStatus(status), root=root))
        if msg.event is None:
            self._announced.pop(key, None)

    def _start_recording(self, key: RunKey) -> _RemoteRun | None:
        """The first report of a run: a new attempt (or the one a previous coordinator made)."""
        task, _ = self._assigned.pop(key, (None, 0.0))
        run = _RemoteRun.adopt(self._store, self._settings, self._worker_id, *key)
        if run is None and task is None:
            rec = self._latest(key)
            if rec is not None and not rec.status.is_active and rec.status != RunStatus.QUEUED:
                return None  # we gave up on it (worker lost); the worker must stop it
        if run is None:
            run = _RemoteRun.create(self._store, self._settings, self._worker_id, *key,
                                    requeue_limit=task.requeue_limit if task else 0)
            self._mailboxes.emit(key, RunStarted(key[1], run.queue))
            logger.info("%s: %s/%s started", self._label, *key)
        self._runs[key] = run
        return run

    def _on_log(self, msg: LogChunk) -> str:
        run = self._runs.get((msg.dag_name, msg.run_id))
        if run is None:
            return f"run {msg.dag_name}/{msg.run_id} is not recorded here"
        try:
            run.write_log(msg)
        except (OSError, ValueError) as exc:
            return str(exc)
        return ""

    def _on_beat(self, running: tuple[RunKey, ...]) -> tuple[RunKey, ...]:
        """Adopt runs we do not know (after a restart); return the runs to cancel."""
        now = self._clock()
        for key in running:
            if key not in self._runs:
                run = _RemoteRun.adopt(self._store, self._settings, self._worker_id, *key)
                if run is not None:
                    self._runs[key] = run
                    self._assigned.pop(key, None)
                    logger.info("%s: re-adopted running %s/%s", self._label, *key)
        for key, (task, at) in list(self._assigned.items()):
            if key not in running and now - at > CLAIM_TIMEOUT_S:
                del self._assigned[key]
                logger.warning("%s: %s/%s was handed over but never started; back to the queue", self._label, *key)
                self._ended(key, task.queue, None)
        cancel = {key for key, run in self._runs.items() if run.is_cancel_requested()}
        cancel |= self._cancel & set(running)
        return tuple(sorted(cancel))

    def _on_lost(self, reason: str) -> None:
        for key, (task, _) in self._assigned.items():
            self._ended(key, task.queue, None)  # never started: the queue will launch it again
        self._assigned.clear()
        for key, run in list(self._runs.items()):
            try:
                run.give_up(reason)
                publish_once(events_dir(self._settings.data_dir), run_event(*key, RunStatus.FAILED))
            except (DaguError, OSError, ValueError) as exc:
                logger.error("%s: could not mark %s/%s failed: %s", self._label, *key, exc)
            self._announced.pop(key, None)
            self._ended(key, run.queue, None)
        self._runs.clear()

    def _ended(self, key: RunKey, queue: str, exit_code: int | None) -> None:
        self._runs.pop(key, None)
        self._cancel.discard(key)
        self._mailboxes.emit(key, RunEnded(key[1], queue, exit_code))
        tell_if_alive(self._coordinator, RemoteRunEnded(self._worker_id, *key))

    def _latest(self, key: RunKey) -> RunRecord | None:
        try:
            return self._store.read_latest(self._store.find_run(*key))
        except (NotFound, DaguError):
            return None


def note_waiting(settings: Settings, dag_name: str, run_id: str, reason: str) -> None:
    """Write why a queued run waits into its queued record (`error`), so status views show it."""
    store = RunStore(settings.data_dir, settings.log_dir)
    try:
        attempt = store.latest_attempt(store.find_run(dag_name, run_id))
        record = read_status(attempt.status_path)
        if record.status == RunStatus.QUEUED and record.error != reason:
            record.error = reason
            rewrite_status(attempt.status_path, record)
    except (DaguError, OSError) as exc:
        logger.debug("coordinator: cannot note the wait of %s/%s: %s", dag_name, run_id, exc)


class _RemoteRun:
    """The coordinator's copy of one remote run attempt: translates and writes what the worker reports."""

    def __init__(self, store: RunStore, settings: Settings, worker_id: str, attempt: Any, queued: RunRecord | None,
                 queue: str, dag_json: dict[str, Any], record: RunRecord | None, requeue_limit: int):
        self._store = store
        self._settings = settings
        self._worker_id = worker_id
        self.attempt = attempt
        self._queued = queued
        self.queue = queue
        self._dag_json = dag_json
        self.record = record
        self._requeue_limit = requeue_limit
        self._writer = StatusWriter(attempt.status_path)
        if record is not None:
            self._writer.open(record)
        self._run_log_base = _size(attempt.run_log_path)
        self._fds: dict[Path, int] = {}
        self._heartbeat = Heartbeat(settings.proc_dir, queue, attempt.run.dag_name, attempt.run.run_id,
                                    interval_s=settings.heartbeat_interval_s)
        self._heartbeat.start()

    @classmethod
    def create(cls, store: RunStore, settings: Settings, worker_id: str, dag_name: str, run_id: str,
               *, requeue_limit: int) -> _RemoteRun:
        run = store.find_run(dag_name, run_id)
        queued_attempt = store.latest_attempt(run)
        queued = read_status(queued_attempt.status_path)
        dag_json = {**store.read_dag_json(queued_attempt), "requeueLimit": requeue_limit}
        attempt = store.new_attempt(run)
        store.write_dag_json(attempt, dag_json)
        queue = str(dag_json.get("queue") or dag_name)
        return cls(store, settings, worker_id, attempt, queued, queue, dag_json, None, requeue_limit)

    @classmethod
    def adopt(cls, store: RunStore, settings: Settings, worker_id: str, dag_name: str, run_id: str) -> _RemoteRun | None:
        """The run's latest attempt if it is an active record of this worker (a previous coordinator's)."""
        try:
            run = store.find_run(dag_name, run_id)
            attempt = store.latest_attempt(run)
            record = read_status(attempt.status_path)
            dag_json = store.read_dag_json(attempt)
        except (DaguError, OSError, ValueError):
            return None
        if record.worker_id != worker_id or not record.status.is_active or record.status == RunStatus.QUEUED:
            return None
        queue = str(dag_json.get("queue") or dag_name)
        limit = _requeue_limit_of(dag_json)
        return cls(store, settings, worker_id, attempt, None, queue, dag_json, record, limit)

    # -- status ---------------------------------------------------------------------------

    def apply(self, data: dict[str, Any], *, final: bool) -> None:
        """Write the worker's record `data`, translated to our paths, as the changes since the last one."""
        new = self._translate(RunRecord.from_json(data))
        if self.record is None:
            self._writer.open(new)
        elif not final:
            for change in _changes(self.record.to_json(), new.to_json()):
                self._writer.append_change(change)
        self.record = new

    def finish(self, outputs: dict[str, Any], exit_code: int | None) -> None:
        """The run process exited: final snapshot (compacted), outputs.json, heartbeat gone."""
        record = self.record
        assert record is not None
        if record.status.is_active:
            # The run process died without a final status (killed on the worker).
            why = f"the run process on worker {self._worker_id} exited with {exit_code} before the run finished"
            self._fail_open_nodes(record, why)
            record.status, record.error, record.finished_at = RunStatus.FAILED, why, utc_now()
        self._writer.close(record)
        if outputs:
            metadata = {
                "dagName": record.name, "dagRunId": record.run_id, "attemptId": record.attempt_id,
                "status": record.status.label,
                "completedAt": record.finished_at.isoformat().replace("+00:00", "Z") if record.finished_at else "",
                "params": orjson.dumps(record.params_list).decode(),
            }
            self._store.write_outputs(self.attempt, metadata, outputs)
        self._close()

    def give_up(self, reason: str) -> None:
        """The worker is lost: fail the attempt with `reason`, and re-queue it if the DAG asks for it."""
        record = self.record or self._translate(self._queued or RunRecord(self.attempt.run.dag_name, self.attempt.run.run_id))
        used = self._requeues_used()
        requeue = used < self._requeue_limit
        why = f"{reason}; re-queued ({used + 1} of {self._requeue_limit})" if requeue else f"{reason}; the run was marked failed"
        self._fail_open_nodes(record, why)
        record.status, record.error, record.finished_at = RunStatus.FAILED, why, utc_now()
        if not self._writer.is_open:
            self._writer.open(record)
        self._writer.close(record)
        self._close()
        if requeue:
            self._requeue(record)

    def detach(self) -> None:
        """Stop recording without touching the status (a coordinator shutdown)."""
        self._writer.release()
        self._close()

    def is_cancel_requested(self) -> bool:
        return self._store.is_cancel_requested(self.attempt)

    # -- logs -----------------------------------------------------------------------------

    def write_log(self, chunk: LogChunk) -> None:
        """Put `chunk.data` at its offset in our copy of the log file (a resend rewrites the same bytes)."""
        if chunk.stream == _RUN_LOG_STREAM:
            path, offset = self.attempt.run_log_path, self._run_log_base + chunk.offset
        else:
            name = chunk.file_name
            if not name or name in (".", "..") or os.path.basename(name) != name:
                raise ValueError(f"log file name {name!r} is not a plain file name")
            path, offset = self.attempt.log_dir / name, chunk.offset
        fd = self._fds.get(path)
        if fd is None:
            path.parent.mkdir(parents=True, exist_ok=True)
            fd = self._fds[path] = os.open(path, os.O_WRONLY | os.O_CREAT, 0o644)
        os.pwrite(fd, chunk.data, offset)

    # -- helpers --------------------------------------------------------------------------

    def _translate(self, rec: RunRecord) -> RunRecord:
        rec.attempt_id = self.attempt.attempt_id
        rec.log = str(self.attempt.run_log_path)
        rec.worker_id = self._worker_id
        rec.pid = 0  # not a process on this machine: nothing here may signal it
        if self._queued is not None:
            rec.queued_at = self._queued.queued_at
            rec.trigger_type = self._queued.trigger_type
        for node in [*rec.nodes, *(getattr(rec, a) for a in HANDLER_KEYS.values())]:
            if node is None:
                continue
            if node.stdout:
                node.stdout = str(self.attempt.log_dir / os.path.basename(node.stdout))
            if node.stderr:
                node.stderr = str(self.attempt.log_dir / os.path.basename(node.stderr))
        return rec

    def _fail_open_nodes(self, record: RunRecord, why: str) -> None:
        now = utc_now()
        for node in [*record.nodes, *(getattr(record, a) for a in HANDLER_KEYS.values())]:
            if node is not None and node.status == NodeStatus.RUNNING:
                node.status, node.error, node.finished_at = NodeStatus.FAILED, why, now

    def _requeues_used(self) -> int:
        used = 0
        for attempt in self._store.list_attempts(self.attempt.run):
            with contextlib.suppress(DaguError, OSError):
                if "; re-queued (" in read_status(attempt.status_path).error:
                    used += 1
        return used

    def _requeue(self, failed: RunRecord) -> None:
        from dagu.store.queue import QueueStore

        run = self.attempt.run
        attempt = self._store.new_attempt(run)
        self._store.write_dag_json(attempt, self._dag_json)
        base = self._queued or failed
        record = RunRecord.from_json(base.to_json())
        record.attempt_id, record.status, record.queued_at = attempt.attempt_id, RunStatus.QUEUED, utc_now()
        record.error, record.worker_id, record.pid, record.started_at, record.finished_at = "", "", 0, None, None
        for node in record.nodes:
            node.status, node.started_at, node.finished_at, node.error = NodeStatus.NOT_STARTED, None, None, ""
        writer = StatusWriter(attempt.status_path)
        writer.open(record)
        writer.release()
        QueueStore(self._settings.queue_dir).push(self.queue, run.dag_name, run.run_id, priority="high")

    def _close(self) -> None:
        self._heartbeat.close()
        for fd in self._fds.values():
            os.close(fd)
        self._fds.clear()


def _changes(old: dict[str, Any], new: dict[str, Any]) -> list[dict[str, Any]]:
    """Status-log change lines that turn record JSON `old` into `new`."""
    out: list[dict[str, Any]] = []
    old_nodes, new_nodes = old.get("nodes") or [], new.get("nodes") or []
    if len(old_nodes) != len(new_nodes):
        return [{"t": "run", "set": {"nodes": new_nodes}}]  # never seen: the plan is fixed per attempt
    for i, (a, b) in enumerate(zip(old_nodes, new_nodes)):
        if diff := _diff(a, b):
            out.append({"t": "node", "key": i, "set": diff})
    for key in HANDLER_KEYS:
        a, b = old.get(key) or {}, new.get(key)
        if b and (diff := _diff(a, b)):
            out.append({"t": "node", "key": key, "set": diff})
    skip = {"nodes", *HANDLER_KEYS}
    run_diff = {k: v for k, v in new.items() if k not in skip and old.get(k) != v}
    run_diff.update({k: None for k in old if k not in skip and k not in new})
    if run_diff:
        out.append({"t": "run", "set": run_diff})
    return out


def _diff(a: dict[str, Any], b: dict[str, Any]) -> dict[str, Any]:
    out = {k: v for k, v in b.items() if a.get(k) != v}
    out.update({k: None for k in a if k not in b})
    return out


def _requeue_limit_of(dag_json: dict[str, Any]) -> int:
    return int(dag_json.get("requeueLimit") or 0)


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except FileNotFoundError:
        return 0
