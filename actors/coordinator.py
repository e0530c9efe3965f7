"""CoordinatorActor: the coordinator's routing table: connected workers, their idle pollers,
and the tasks waiting for an eligible worker.

It decides which worker gets which run (a DAG's `worker_selector` against the
worker's labels; among eligible workers the least loaded), keeps tasks that no
worker can take yet (telling the submitter why), and marks a worker lost when its
heartbeats stop. It owns one WorkerProxyActor per worker and does no file I/O on
the hot path; what a worker reports goes to its proxy, which records it. The gRPC
side reaches it through `transports.grpc.server`, and hands tasks over and
delivers events through the `Mailboxes` given to it.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

import pykka

from actors.messages import (
    CancelRun,
    GetSnapshot,
    GetWorkerProxy,
    PollerGone,
    PollerParked,
    RemoteRunEnded,
    RemoteTask,
    RunAssigned,
    RunEnded,
    RunWaiting,
    SubmitTask,
    SweepWorkers,
    WorkerLost,
    WorkerSeen,
)
from actors.supervised import SupervisedActor, tell_if_alive
from actors.worker_proxy import WorkerProxyActor, note_waiting
from dagu.config import Settings

__all__ = ["CoordinatorActor", "Mailboxes", "WorkerSnapshot", "CoordinatorSnapshot", "matches"]

logger = logging.getLogger(__name__)

RunKey = tuple[str, str]  # (dag name, run ID)


class Mailboxes(Protocol):
    """The transport's side: parked long polls and submitters' event streams (thread-safe)."""

    def hand_over(self, poller_id: str, task: RemoteTask, worker_id: str) -> bool:
        """Answer the parked poll `poller_id` with `task`; False if that poll is gone."""

    def release(self, poller_id: str) -> None:
        """End the parked poll `poller_id` without a task."""

    def emit(self, key: RunKey, event: Any) -> None:
        """Deliver RunWaiting / RunStarted / RunEnded to whoever follows run `key` (if anyone)."""


@dataclass(frozen=True, slots=True)
class WorkerSnapshot:
    worker_id: str
    labels: tuple[tuple[str, str], ...]
    connected_at: float
    last_seen: float
    total: int
    busy: int
    running: tuple[RunKey, ...]
    idle_pollers: int


@dataclass(frozen=True, slots=True)
class CoordinatorSnapshot:
    """`CoordinatorActor.snapshot()`: workers and the tasks waiting for one."""

    workers: tuple[WorkerSnapshot, ...]
    pending: tuple[RunKey, ...]


@dataclass(slots=True)
class _Worker:
    proxy: pykka.ActorRef[Any]
    labels: tuple[tuple[str, str], ...]
    connected_at: float
    last_seen: float
    parked: list[str] = field(default_factory=list)
    running: set[RunKey] = field(default_factory=set)
    total: int = 0
    busy: int = 0
    last_assigned: int = 0


class CoordinatorActor(SupervisedActor):
    """Routes remote tasks to workers and tracks their liveness.

    Args:
        settings: passed to each WorkerProxyActor (data and log folders).
        mailboxes: the transport's parked polls and event streams.
        worker_lost_after_s: a worker silent this long is lost; its runs fail (or re-queue).
        sweep_interval_s: how often to look for lost workers.
        clock: unix seconds now; injected by tests.
    """

    def __init__(
        self,
        settings: Settings,
        mailboxes: Mailboxes,
        *,
        worker_lost_after_s: float = 15.0,
        sweep_interval_s: float | None = None,
        clock: Callable[[], float] = time.time,
        supervisor: pykka.ActorRef[Any] | None = None,
    ):
        super().__init__(supervisor=supervisor, child_id="coordinator")
        self._settings = settings
        self._mailboxes = mailboxes
        self._lost_after_s = worker_lost_after_s
        self._sweep_s = sweep_interval_s or max(0.2, min(1.0, worker_lost_after_s / 4))
        self._clock = clock
        self._workers: dict[str, _Worker] = {}
        self._pending: list[RemoteTask] = []
        self._assignments = 0
        self._stop_event = threading.Event()
        self._thread: threading.Thread | None = None

    def on_start(self) -> None:
        ref = self.actor_ref
        self._thread = threading.Thread(target=self._sweeper, args=(ref,), name="coordinator-sweep", daemon=True)
        self._thread.start()

    def on_stop(self) -> None:
        self._stop_event.set()
        for worker in self._workers.values():
            worker.proxy.stop(block=False)
        if self._thread is not None:
            self._thread.join(5.0)

    def on_receive(self, message: Any) -> Any:
        match message:
            case SubmitTask(task=task, wait=wait):
                return self._submit(task, wait)
            case PollerParked():
                self._on_parked(message)
            case PollerGone(worker_id=worker_id, poller_id=poller_id):
                worker = self._workers.get(worker_id)
                if worker is not None and poller_id in worker.parked:
                    worker.parked.remove(poller_id)
            case WorkerSeen():
                return self._on_seen(message)
            case GetWorkerProxy(worker_id=worker_id):
                return self._ensure(worker_id, None)[0].proxy
            case RemoteRunEnded(worker_id=worker_id, dag_name=dag, run_id=run_id):
                worker = self._workers.get(worker_id)
                if worker is not None:
                    worker.running.discard((dag, run_id))
                    self._drain_pending(worker_id)
            case CancelRun(dag_name=dag, run_id=run_id):
                return self._cancel((dag, run_id))
            case SweepWorkers():
                self._sweep()
            case GetSnapshot():
                return self.snapshot()
            case _:
                return super().on_receive(message)
        return None

    def snapshot(self) -> CoordinatorSnapshot:
        workers = tuple(
            WorkerSnapshot(wid, w.labels, w.connected_at, w.last_seen, w.total, w.busy, tuple(sorted(w.running)), len(w.parked))
            for wid, w in sorted(self._workers.items())
        )
        return CoordinatorSnapshot(workers, tuple((t.dag_name, t.run_id) for t in self._pending))

    # -- routing --------------------------------------------------------------------------

    def _submit(self, task: RemoteTask, wait: bool) -> str | None:
        """Route `task`; returns None when it was taken (or queued here), else why not."""
        key = (task.dag_name, task.run_id)
        self._pending = [t for t in self._pending if (t.dag_name, t.run_id) != key]  # a re-submission replaces
        if self._assign(task):
            return None
        reason = self._why_waiting(task)
        if not wait:
            return reason
        self._pending.append(task)
        logger.info("coordinator: %s/%s waits: %s", task.dag_name, task.run_id, reason)
        self._mailboxes.emit(key, RunWaiting(task.run_id, reason))
        note_waiting(self._settings, task.dag_name, task.run_id, reason)
        return None

    def _assign(self, task: RemoteTask, only: str | None = None) -> bool:
        """Hand `task` to the least loaded eligible worker with an idle poller."""
        while True:
            candidates = [
                (wid, w) for wid, w in self._workers.items()
                if w.parked and (only is None or wid == only) and matches(task.selector, w.labels)
            ]
            if not candidates:
                return False
            wid, worker = min(candidates, key=lambda c: (len(c[1].running) / max(1, c[1].total or 1), c[1].last_assigned))
            poller = worker.parked.pop(0)
            if not self._mailboxes.hand_over(poller, task, wid):
                continue  # that poll ended meanwhile; try the next one
            self._assignments += 1
            worker.last_assigned = self._assignments
            worker.running.add((task.dag_name, task.run_id))
            worker.proxy.tell(RunAssigned(task))
            logger.info("coordinator: %s/%s -> worker %s", task.dag_name, task.run_id, wid)
            return True

    def _drain_pending(self, worker_id: str) -> None:
        for task in list(self._pending):
            worker = self._workers.get(worker_id)
            if worker is None or not worker.parked:
                return
            if matches(task.selector, worker.labels) and self._assign(task, only=worker_id):
                self._pending.remove(task)

    def _why_waiting(self, task: RemoteTask) -> str:
        wanted = ", ".join(f"{k}={v}" for k, v in task.selector) or "any worker"
        eligible = [w for w in self._workers.values() if matches(task.selector, w.labels)]
        if not self._workers:
            return f"waiting for a worker: no worker is connected (worker_selector: {wanted})"
        if not eligible:
            return f"waiting for a worker: no connected worker matches worker_selector {wanted}"
        return f"waiting for a worker: all {len(eligible)} worker(s) matching {wanted} are busy"

    def _cancel(self, key: RunKey) -> bool:
        for task in self._pending:
            if (task.dag_name, task.run_id) == key:
                self._pending.remove(task)
                self._mailboxes.emit(key, RunEnded(task.run_id, task.queue, None))
                return True
        for worker in self._workers.values():
            if key in worker.running:
                worker.proxy.tell(CancelRun(*key))
                return True
        return False

    # -- workers --------------------------------------------------------------------------

    def _ensure(self, worker_id: str, labels: tuple[tuple[str, str], ...] | None) -> tuple[_Worker, bool]:
        """The worker's entry (registering it, with a new proxy, if unknown) and whether it is new."""
        worker = self._workers.get(worker_id)
        now = self._clock()
        is_new = worker is None or not worker.proxy.is_alive()
        if is_new:
            proxy = WorkerProxyActor.start(worker_id, self._settings, self.actor_ref, self._mailboxes, clock=self._clock)
            worker = _Worker(proxy, labels or (), now, now)
            self._workers[worker_id] = worker
            logger.info("coordinator: worker %s registered, labels %s", worker_id, dict(worker.labels) or "none")
        if labels is not None and labels != worker.labels:
            worker.labels = labels
        worker.last_seen = now
        return worker, is_new

    def _on_parked(self, msg: PollerParked) -> None:
        worker, _ = self._ensure(msg.worker_id, msg.labels)
        worker.parked.append(msg.poller_id)
        self._drain_pending(msg.worker_id)

    def _on_seen(self, msg: WorkerSeen) -> pykka.ActorRef[Any]:
        worker, is_new = self._ensure(msg.worker_id, msg.labels)
        worker.total, worker.busy = msg.total, msg.busy
        if is_new:
            # A worker re-registering after our restart (or after it was lost): count its
            # runs. Later beats are not merged: one taken before a run's final report
            # would put the ended run back.
            worker.running |= set(msg.running)
        return worker.proxy

    def _sweep(self) -> None:
        now = self._clock()
        for wid, worker in list(self._workers.items()):
            silent = now - worker.last_seen
            if silent <= self._lost_after_s:
                continue
            reason = f"worker {wid} was lost: no heartbeat for {silent:.1f}s (limit {self._lost_after_s:g}s)"
            logger.warning("coordinator: %s; %d run(s) on it", reason, len(worker.running))
            for poller in worker.parked:
                self._mailboxes.release(poller)
            del self._workers[wid]
            tell_if_alive(worker.proxy, WorkerLost(reason))

    def _sweeper(self, ref: pykka.ActorRef[Any]) -> None:
        while not self._stop_event.wait(self._sweep_s):
            tell_if_alive(ref, SweepWorkers())


def matches(selector: tuple[tuple[str, str], ...], labels: tuple[tuple[str, str], ...]) -> bool:
    """Whether a worker with `labels` may run a DAG with `selector` (every key equal; empty matches all)."""
    have = dict(labels)
    return all(have.get(k) == v for k, v in selector)
