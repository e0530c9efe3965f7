"""QueueActor: starts queued runs, per queue, as far as the queue's concurrency allows.

The queue items on disk (`dagu.store.queue`) and the runs' status files are the
truth; this actor only holds a cache of the runs it launched. It looks at the
queues when told (`Enqueued`, `RunEnded`), when the queue folder changes or a
heartbeat file disappears (a watcher thread), and on a slow safety-net timer.
It never polls. An item is removed only once its run is confirmed started, and a
run is launched only while its status is still `queued`, so a crash of this
actor at any point starts each run once (service.md 5.4). Launching a run is a
runner's job (`actors.local_runner.LocalRunner` here, re-exported for callers),
and running the DAG is the `dagu start --queued` process's.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, Protocol

import pykka

from actors.local_runner import LocalRunner
from actors.messages import Drain, Enqueued, GetSnapshot, RunEnded, RunStarted
from actors.supervised import SupervisedActor, tell_if_alive
from dagu.config import Settings
from dagu.errors import DaguError, NotFound
from dagu.status import RunStatus
from dagu.store.proc import find_heartbeat, is_alive, list_alive
from dagu.store.queue import QueueItem, QueueStore
from dagu.store.runs import RunStore

__all__ = ["QueueActor", "QueueState", "QueueSnapshot", "Runner", "LocalRunner"]

logger = logging.getLogger(__name__)

SAFETY_INTERVAL_S = 30.0
RETRY_BACKOFF_S = (1.0, 60.0)  # first delay after a failed launch, cap; doubles
_CHANGE_DELETED = 3  # watchfiles' Change.deleted


class Runner(Protocol):
    """Starts a queued run somewhere and reports `RunStarted` / `RunEnded` to `notify`."""

    def start(self, run_id: str, dag_name: str, dag_file: str, queue: str, notify: pykka.ActorRef[Any]) -> None:
        """Launch the run; raise (OSError, DaguError) if it could not even be launched."""


@dataclass(frozen=True, slots=True)
class QueueState:
    """One queue as the QueueActor sees it."""

    name: str
    items: tuple[QueueItem, ...]  # waiting, in dispatch order
    running: tuple[str, ...]  # run IDs: launched here and not ended, or with a live heartbeat
    limit: int
    is_global: bool  # from `queues.config`; else a DAG-based queue


@dataclass(frozen=True, slots=True)
class QueueSnapshot:
    """`QueueActor.snapshot()`: every queue with items or running runs."""

    queues: tuple[QueueState, ...]
    launching: tuple[str, ...]  # run IDs launched but not yet confirmed started
    failed_launches: tuple[tuple[str, int], ...]  # (run ID, failures so far) of items waiting to retry
    passes: int  # dispatch passes so far: tells a watcher when the actor last looked


class QueueActor(SupervisedActor):
    """Starts queued runs, per queue, no more at once than the queue's limit.

    Args:
        settings: `queue_dir`, `proc_dir`, `data_dir`, `log_dir` and `queues` are used.
        runner: launches a run and reports back (`LocalRunner`, or a worker proxy).
        clock: unix seconds now (heartbeat freshness, launch backoff); injected by tests.
        safety_interval_s: the slow sweep that catches anything the watcher missed.
    """

    def __init__(
        self,
        settings: Settings,
        runner: Runner,
        *,
        clock: Callable[[], float] = time.time,
        safety_interval_s: float = SAFETY_INTERVAL_S,
        supervisor: pykka.ActorRef[Any] | None = None,
        child_id: str | None = None,
    ):
        super().__init__(supervisor=supervisor, child_id=child_id or "queue")
        self._settings = settings
        self._runner = runner
        self._clock = clock
        self._safety_interval_s = safety_interval_s
        self._queues = QueueStore(settings.queue_dir)
        self._runs = RunStore(settings.data_dir, settings.log_dir)
        self._global_limits = {q.name: max(1, q.max_concurrency) for q in settings.queues}
        self._label = f"QueueActor({self.child_id})"
        self._mine: dict[str, str] = {}  # run ID -> queue: launched here, not ended
        self._launching: dict[str, QueueItem] = {}  # launched, start not yet confirmed
        self._failures: dict[str, tuple[int, float]] = {}  # run ID -> (failed launches, retry not before)
        self._limits: dict[str, int] = {}  # last limit seen per queue, for snapshots
        self._passes = 0
        self._stop_event = threading.Event()
        self._threads: list[threading.Thread] = []
        self._timers: dict[str, threading.Timer] = {}
        self._bus: Any = None  # our event-bus subscription, woken at shutdown

    # -- lifecycle ----------------------------------------------------------------------

    def on_start(self) -> None:
        self._settings.queue_dir.mkdir(parents=True, exist_ok=True)
        self._settings.proc_dir.mkdir(parents=True, exist_ok=True)
        ref = self.actor_ref
        ready = threading.Event()
        self._spawn_thread(f"{self._label}-watch", lambda: self._watch_dirs(ref, ready))
        bus = self._bus = self._subscribe()
        if bus is not None:
            self._spawn_thread(f"{self._label}-events", lambda: self._listen(ref, bus))
        # Wait until the watcher is armed, so that an item pushed right after start()
        # returns is seen; the first pass below covers those pushed before.
        ready.wait(10.0)
        logger.debug("%s started; global queues %s", self._label, self._global_limits or "none")
        self._drop_stale_items()
        self._dispatch(None)

    def on_stop(self) -> None:
        self._shutdown()

    def on_failure(self, *exc_info: Any) -> None:
        self._shutdown()

    # -- messages -----------------------------------------------------------------------

    def on_receive(self, message: Any) -> Any:
        match message:
            case Enqueued(queue=queue):
                self._dispatch(queue)
            case Drain(reason=reason):
                logger.debug("%s: drain (%s)", self._label, reason)
                self._dispatch(None)
            case RunStarted():
                self._on_run_started(message)
            case RunEnded():
                self._on_run_ended(message)
            case GetSnapshot():
                return self.snapshot()
            case _:
                return super().on_receive(message)
        return None

    def snapshot(self) -> QueueSnapshot:
        """Every queue that has items or running runs, with its limit."""
        names = set(self._queues.queue_names()) | set(self._mine.values())
        states = []
        for name in sorted(names):
            items = self._queues.items(name)
            running = self._running(name)
            if not items and not running:
                continue
            limit = self._limit(name, items[0] if items else None)
            states.append(QueueState(name, tuple(items), tuple(sorted(running)), limit, name in self._global_limits))
        failed = tuple(sorted((run_id, count) for run_id, (count, _) in self._failures.items()))
        return QueueSnapshot(tuple(states), tuple(sorted(self._launching)), failed, self._passes)

    # -- dispatch -----------------------------------------------------------------------

    def _drop_stale_items(self) -> None:
        """Drop every item whose run already started: what a crashed incarnation left behind.

        Passes look only as deep into a queue as there are free slots (bounded work per
        message), so without this sweep such items would linger while the queue is full.
        """
        for name in self._queues.queue_names():
            self._guarded(name, lambda q: [self._is_startable(item) for item in self._queues.items(q)])

    def _dispatch(self, only: str | None) -> None:
        self._passes += 1
        for name in [only] if only is not None else self._queues.queue_names():
            self._guarded(name, self._dispatch_queue)

    def _guarded(self, queue: str, work: Callable[[str], object]) -> None:
        """Run `work(queue)`; one bad queue or record must not stop the others, nor this actor."""
        try:
            work(queue)
        except (DaguError, OSError, ValueError) as exc:
            logger.warning("%s: queue %s: %s", self._label, queue, exc)

    def _dispatch_queue(self, queue: str) -> None:
        items = self._queues.items(queue)
        if not items:
            return
        free = self._limit(queue, items[0]) - len(self._running(queue))
        for item in items:
            if free <= 0:
                return
            if item.run_id in self._launching:
                continue  # counted in `running` already
            if not self._is_startable(item):
                continue
            if self._in_backoff(item):
                continue
            if self._launch(item):
                free -= 1

    def _is_startable(self, item: QueueItem) -> bool:
        """Whether `item`'s run still waits for a start; drops the item if not."""
        why = self._reason_to_drop(item)
        if why is None:
            return True
        logger.info("%s: dropping queue item of %s/%s: %s", self._label, item.dag_name, item.run_id, why)
        self._queues.remove(item)
        self._forget_failures(item.run_id)
        return False

    def _reason_to_drop(self, item: QueueItem) -> str | None:
        try:
            run = self._runs.find_run(item.dag_name, item.run_id)
            status = self._runs.read_latest(run).status
        except NotFound:
            return "the run record is missing or has no readable status"
        if status != RunStatus.QUEUED:
            # Started by a previous incarnation that died before removing the item.
            return f"the run is already {status.label}"
        heartbeat = find_heartbeat(self._settings.proc_dir, item.dag_name, item.run_id)
        if heartbeat is not None and is_alive(heartbeat, now=self._clock()):
            return "the run is already running"
        return None

    def _launch(self, item: QueueItem) -> bool:
        try:
            dag_file = self._dag_json(item).get("file")
            if not isinstance(dag_file, str) or not dag_file:
                raise NotFound(f"dag.json of {item.dag_name}/{item.run_id} names no DAG file")
            self._runner.start(item.run_id, item.dag_name, dag_file, item.queue, self.actor_ref)
        except (OSError, ValueError, DaguError) as exc:  # ValueError: a corrupt dag.json
            self._launch_failed(item, str(exc))
            return False
        logger.info("%s: launched %s/%s from queue %s", self._label, item.dag_name, item.run_id, item.queue)
        self._mine[item.run_id] = item.queue
        self._launching[item.run_id] = item
        return True

    def _on_run_started(self, msg: RunStarted) -> None:
        item = self._launching.pop(msg.run_id, None)
        self._forget_failures(msg.run_id)
        if item is not None:
            self._queues.remove(item)
            logger.debug("%s: %s started; item removed", self._label, msg.run_id)

    def _on_run_ended(self, msg: RunEnded) -> None:
        self._mine.pop(msg.run_id, None)
        item = self._launching.pop(msg.run_id, None)
        if item is not None:
            # It exited without ever showing it started: a failed launch. The item
            # stays; the status check of the next pass drops it if it did start.
            self._launch_failed(item, f"the process exited with {msg.exit_code} before the run started")
        else:
            logger.debug("%s: %s ended (exit %s)", self._label, msg.run_id, msg.exit_code)
        self._dispatch(msg.queue)

    def _launch_failed(self, item: QueueItem, why: str) -> None:
        count = self._failures.get(item.run_id, (0, 0.0))[0] + 1
        first, cap = RETRY_BACKOFF_S
        delay = min(cap, first * 2 ** (count - 1))
        self._failures[item.run_id] = (count, self._clock() + delay)
        logger.warning(
            "%s: launching %s/%s failed (%d time(s)): %s; retrying in %gs",
            self._label, item.dag_name, item.run_id, count, why, delay,
        )
        self._schedule_drain(item.run_id, delay)

    def _forget_failures(self, run_id: str) -> None:
        self._failures.pop(run_id, None)
        timer = self._timers.pop(run_id, None)
        if timer is not None:
            timer.cancel()

    def _in_backoff(self, item: QueueItem) -> bool:
        failure = self._failures.get(item.run_id)
        return failure is not None and self._clock() < failure[1]

    # -- counting -----------------------------------------------------------------------

    def _running(self, queue: str) -> set[str]:
        mine = {run_id for run_id, q in self._mine.items() if q == queue}
        alive = list_alive(self._settings.proc_dir, queue, now=self._clock())
        return mine | {entry.run_id for entry in alive}

    def _limit(self, queue: str, head: QueueItem | None) -> int:
        if queue in self._global_limits:
            return self._global_limits[queue]
        if head is not None:
            # A DAG-based queue: the limit is the head run's DAG's maxActiveRuns (min 1).
            try:
                value = self._dag_json(head).get("maxActiveRuns", 1)
            except (NotFound, OSError, ValueError):
                value = 1
            self._limits[queue] = max(1, value) if isinstance(value, int) else 1
        return self._limits.get(queue, 1)

    def _dag_json(self, item: QueueItem) -> dict[str, Any]:
        run = self._runs.find_run(item.dag_name, item.run_id)
        return self._runs.read_dag_json(self._runs.latest_attempt(run))

    # -- threads ------------------------------------------------------------------------

    def _watch_dirs(self, ref: pykka.ActorRef[Any], ready: threading.Event) -> None:
        """Tell `Drain` when an item appears or goes, a heartbeat file goes, or the safety net is due."""
        queue_dir, proc_dir = str(self._settings.queue_dir), str(self._settings.proc_dir)
        timeout_ms = int(self._safety_interval_s * 1000)
        try:
            for changes in _folder_changes((queue_dir, proc_dir), timeout_ms, self._stop_event, ready):
                if not changes:
                    tell_if_alive(ref, Drain("safety net"))
                elif reason := _relevant(changes, queue_dir, proc_dir):
                    tell_if_alive(ref, Drain(reason))
        except Exception:
            logger.exception("%s: the folder watcher failed; falling back to the safety-net timer", self._label)
            ready.set()
            self._sweep(ref)

    def _subscribe(self) -> Any:
        """A subscription to the event bus, where every enqueue (CLI, API, webhook) is announced."""
        from dagu.events import EventSubscriber, events_dir

        try:
            return EventSubscriber(events_dir(self._settings.data_dir))
        except OSError as exc:  # the folder watch still sees every new item, ~50 ms later
            logger.warning("%s: no event bus subscription (%s); relying on the folder watch", self._label, exc)
            return None

    def _listen(self, ref: pykka.ActorRef[Any], bus: Any) -> None:
        """Tell `Enqueued` the moment an enqueue is announced, ahead of the folder watch's batching."""
        import select

        with bus:
            while not self._stop_event.is_set():
                try:
                    if not select.select([bus], [], [], 0.5)[0]:
                        continue
                    events = bus.receive()
                except (OSError, ValueError):  # closed under us at shutdown
                    return
                for event in events:
                    if event.get("type") == "queue" and event.get("action") == "enqueued":
                        tell_if_alive(ref, Enqueued(event.get("queue")))

    def _sweep(self, ref: pykka.ActorRef[Any]) -> None:
        while not self._stop_event.wait(self._safety_interval_s):
            tell_if_alive(ref, Drain("safety net"))

    def _schedule_drain(self, key: str, delay_s: float) -> None:
        if self._stop_event.is_set():
            return
        old = self._timers.pop(key, None)
        if old is not None:
            old.cancel()
        timer = threading.Timer(delay_s, tell_if_alive, args=(self.actor_ref, Drain("retry")))
        timer.daemon = True
        timer.start()
        self._timers[key] = timer

    def _spawn_thread(self, name: str, target: Callable[[], None]) -> None:
        thread = threading.Thread(target=target, name=name, daemon=True)
        thread.start()
        self._threads.append(thread)

    def _shutdown(self) -> None:
        self._stop_event.set()
        if self._bus is not None:
            self._bus.wake()
        for timer in self._timers.values():
            timer.cancel()
        self._timers.clear()
        for thread in self._threads:
            thread.join(5.0)
        self._threads.clear()


def _folder_changes(
    paths: tuple[str, ...], timeout_ms: int, stop: threading.Event, ready: threading.Event
) -> Iterator[set[tuple[int, str]]]:
    """Batches of (change, path) under `paths`; an empty batch each `timeout_ms` without changes.

    Sets `ready` once the watch is armed. watchfiles.watch() arms its RustNotify lazily
    inside the generator, which hides that moment, so RustNotify (the module
    watchfiles.watch itself is built on) is used directly.
    """
    from watchfiles._rust_notify import RustNotify  # lazy: `dagu validate` never pays for it

    with RustNotify(list(paths), False, False, 300, True, True) as notify:
        ready.set()
        while not stop.is_set():
            changes = notify.watch(50, 20, timeout_ms, stop)  # debounce, step (ms)
            if changes == "stop":
                return
            yield changes if isinstance(changes, set) else set()  # "timeout" (or "signal")


def _relevant(changes: set[tuple[int, str]], queue_dir: str, proc_dir: str) -> str | None:
    """Why a batch of folder changes calls for a pass, or None if it doesn't."""
    for change, path in changes:
        name = os.path.basename(path)
        if path.startswith(queue_dir + os.sep) and name.startswith("item_"):
            return "queue changed"
        if path.startswith(proc_dir + os.sep) and change == _CHANGE_DELETED and name.endswith(".proc"):
            return "a run ended elsewhere"
    return None
