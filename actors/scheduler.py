"""SchedulerActor: cron schedules of the DAGs folder -> fire requests; and the `dagu scheduler` process.

Owns when things fire: the loaded DAGs' schedules, one timer set to the earliest
fire time, catch-up of missed slots, watermarks, the HA lock and the slow zombie
sweep. It never runs a DAG: every start, stop or restart goes out through the
injected `fire` callback, which the composition root wires to the queue. The
cron maths and skip rules are `dagu.schedule`; the lock is `dagu.store.scheduler_lock`.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, tzinfo
from pathlib import Path
from typing import Any, Literal

import pykka

from actors.dag_watcher import DagFolderWatcher, is_dag_file
from actors.messages import DagFileChanged, GetSnapshot, LockLost, SweepZombies, Tick, TryLock
from actors.supervised import SupervisedActor, tell_if_alive
from actors.supervisor import call_later
from dagu.config import Settings

__all__ = [
    "Clock",
    "Fire",
    "FireRequest",
    "ScheduledFire",
    "SchedulerActor",
    "SchedulerSnapshot",
    "SubprocessFire",
    "Timer",
    "run_scheduler",
]

logger = logging.getLogger(__name__)

Kind = Literal["start", "stop", "restart"]
Clock = Callable[[], datetime]
Cancel = Callable[[], None]
Timer = Callable[[float, Callable[[], None]], Cancel]

KINDS: tuple[Kind, ...] = ("start", "stop", "restart")
MAX_LATENESS = timedelta(seconds=60)  # a slot found due later than this was missed (machine asleep)
# The longest single sleep. threading.Timer waits on the monotonic clock, which stops
# while the host is suspended and ignores wall-clock steps; waking at least once a
# minute (as Dagu's tick loop does) bounds how late either makes a fire.
MAX_SLEEP_S = 60.0
STOP_TIMEOUT_S = 2.0


@dataclass(frozen=True, slots=True)
class FireRequest:
    """What the scheduler asks of the composition root for one due slot."""

    dag_path: str
    dag_name: str
    kind: Kind
    slot: datetime  # the cron slot, UTC
    run_id: str | None = None  # set for catch-up slots (deterministic); None: the queue picks one
    trigger: Literal["scheduler", "catchup"] = "scheduler"


Fire = Callable[[FireRequest], None]


@dataclass(frozen=True, slots=True)
class ScheduledFire:
    """One schedule entry and when it fires next."""

    dag_name: str
    kind: Kind
    expression: str
    next_at: datetime


@dataclass(frozen=True, slots=True)
class SchedulerSnapshot:
    """What the scheduler is doing, for the API, `ps` and tests."""

    is_active: bool  # holds the HA lock, so it fires
    dags: tuple[str, ...]  # names of the loaded DAGs with a schedule
    next_fires: tuple[ScheduledFire, ...]  # soonest first
    pending_catchup: tuple[tuple[str, datetime], ...]  # (dag name, slot), oldest first per DAG


@dataclass(slots=True)
class _Entry:
    path: str
    kind: Kind
    cron: Any  # CronEntry
    next_at: datetime


def _utc_now() -> datetime:
    return datetime.now(UTC)


class SchedulerActor(SupervisedActor):
    """Fires cron slots of every DAG in `settings.dags_dir` through `fire`, while it holds the HA lock.

    Args:
        settings: folders, time zone and the scheduler's intervals.
        fire: called in the actor's thread for each slot to act on; must not block long.
        clock: aware UTC now; cron slots are computed against it (tests drive time).
        timer: `timer(delay_s, callback)` -> cancel; runs `callback` later in another thread.
        catchup_retry_s: how soon a catch-up slot that waits on a running run is looked at again.
    """

    def __init__(
        self,
        settings: Settings,
        fire: Fire,
        *,
        clock: Clock = _utc_now,
        timer: Timer = call_later,
        catchup_retry_s: float = 5.0,
        supervisor: pykka.ActorRef[Any] | None = None,
        child_id: str | None = None,
    ) -> None:
        super().__init__(supervisor=supervisor, child_id=child_id or "scheduler")
        from dagu.schedule import resolve_zone
        from dagu.store.scheduler_lock import SchedulerLock, scheduler_lock_dir
        from dagu.store.scheduler_state import state_path

        self.settings = settings
        self._fire = fire
        self._clock = clock
        self._timer = timer
        self._catchup_retry_s = catchup_retry_s
        self._tz: tzinfo = resolve_zone(settings.tz)  # a bad `tz` fails here, at startup
        self._state_path = state_path(settings.data_dir)
        self._lock = SchedulerLock(
            scheduler_lock_dir(settings.data_dir),
            stale_after_s=settings.lock_stale_threshold_s,
            on_lost=lambda: tell_if_alive(self.actor_ref, LockLost()),
        )
        self._watcher: DagFolderWatcher | None = None
        self._dags: dict[str, Any] = {}  # file path -> Dag (only DAGs with a schedule)
        self._entries: list[_Entry] = []
        self._marks: dict[str, dict[str, datetime]] = {}  # watermarks: dag name -> kind -> last slot
        self._pending: dict[str, list[datetime]] = {}  # file path -> catch-up slots, oldest first
        self._catchup_due_at: datetime | None = None
        self._is_active = False
        self._is_standby_logged = False
        self._cancel_tick: Cancel | None = None
        self._cancel_sweep: Cancel | None = None
        self._cancel_retry: Cancel | None = None

    # -- lifecycle ---------------------------------------------------------------------

    def on_start(self) -> None:
        self.settings.dags_dir.mkdir(parents=True, exist_ok=True)
        # Watch before listing: a file written in between is then seen twice, never missed.
        self._watcher = DagFolderWatcher(self.settings.dags_dir, self._tell_changed).start()
        for path in sorted(self.settings.dags_dir.iterdir()):
            if is_dag_file(path) and path.is_file():
                self._load(str(path))
        self._try_lock()
        if self.settings.zombie_detection_interval_s > 0:
            self._arm_sweep()
        self._arm()
        logger.info("SchedulerActor: %d scheduled DAG(s) in %s, zone %s", len(self._dags), self.settings.dags_dir, self._tz)

    def on_stop(self) -> None:
        self._shutdown()

    def on_failure(self, exception_type, exception_value, traceback) -> None:
        logger.error("SchedulerActor crashed: %s", exception_value)
        self._shutdown()

    def on_receive(self, message: Any) -> Any:
        match message:
            case Tick():
                self._on_tick()
            case DagFileChanged(path=path):
                self._on_file_changed(path)
            case SweepZombies():
                self._on_sweep()
            case TryLock():
                self._cancel_retry = None
                self._try_lock()
                self._arm()
            case LockLost():
                self._on_lock_lost()
            case GetSnapshot():
                return self.snapshot()
            case _:
                return super().on_receive(message)

    def snapshot(self) -> SchedulerSnapshot:
        """The loaded schedules, their next fire times and pending catch-up slots."""
        fires = sorted(self._entries, key=lambda e: e.next_at)
        return SchedulerSnapshot(
            is_active=self._is_active,
            dags=tuple(sorted(d.name for d in self._dags.values())),
            next_fires=tuple(ScheduledFire(self._dags[e.path].name, e.kind, e.cron.expression, e.next_at) for e in fires),
            pending_catchup=tuple((self._dags[p].name, s) for p, slots in self._pending.items() for s in slots),
        )

    # -- firing ------------------------------------------------------------------------

    def _on_tick(self) -> None:
        self._cancel_tick = None
        now = self._clock()
        if self._is_active and not self._lock.is_held():
            self._on_lock_lost()
        for entry in sorted(self._entries, key=lambda e: e.next_at):
            if entry.next_at <= now:
                self._handle_due(entry, now)
        if self._is_active and self._pending and (self._catchup_due_at is None or self._catchup_due_at <= now):
            self._drain_catchup(now)
        self._arm()

    def _handle_due(self, entry: _Entry, now: datetime) -> None:
        """Act on the newest due slot of `entry` (older ones were missed) and move it on."""
        from dagu.schedule import next_fire_time

        slot = entry.next_at
        try:
            following = next_fire_time(entry.cron, slot, self._tz)
            for _ in range(1000):  # bounded: skip slots missed while the machine slept
                if following > now:
                    break
                slot, following = following, next_fire_time(entry.cron, following, self._tz)
            entry.next_at = following
        except ValueError as exc:
            logger.warning("schedule %r of %s fires no more (%s); dropping it", entry.cron.text, entry.path, exc)
            self._entries.remove(entry)
        if not self._is_active:
            return  # standby: time moves on, nothing fires
        dag = self._dags[entry.path]
        if now - slot > MAX_LATENESS:
            logger.warning("%s: %s slot %s missed (found due %s late)", dag.name, entry.kind, slot, now - slot)
            return
        self._fire_live(entry, dag, slot)

    def _fire_live(self, entry: _Entry, dag: Any, slot: datetime) -> None:
        """Fire one live slot unless the watermark, the suspend flag or the skip rules hold it back."""
        from dagu.schedule import previous_fire_time, should_start

        mark = self._marks.get(dag.name, {}).get(entry.kind)
        if mark is not None and slot <= mark:
            return  # handled already: by another entry of this DAG, or before a restart
        if self._is_suspended(entry.path):
            logger.info("%s: suspended; %s slot %s not fired", dag.name, entry.kind, slot)
            return
        if entry.kind == "start":
            if entry.path in self._pending:
                pending = self._pending[entry.path]
                if slot > pending[-1]:
                    pending.append(slot)  # catch-up goes first; this slot joins its end
                return
            prev = previous_fire_time(entry.cron, slot, self._tz)
            decision = should_start(
                self._latest_record(dag.name),
                slot,
                prev,
                skip_if_successful=dag.skip_if_successful,
                overlap_policy=dag.overlap_policy,
                is_catchup=False,
            )
            if not decision.is_start:
                logger.info("%s: slot %s skipped: %s", dag.name, slot, decision.reason)
                self._set_mark(dag.name, "start", slot)
                return
        self._set_mark(dag.name, entry.kind, slot)
        self._call_fire(FireRequest(entry.path, dag.name, entry.kind, slot))

    def _drain_catchup(self, now: datetime) -> None:
        """Replay pending catch-up slots: at most one start per DAG per round (the next needs its record)."""
        from dagu.schedule import catchup_run_id, should_start

        for path in list(self._pending):
            slots, dag = self._pending[path], self._dags[path]
            if self._is_suspended(path):
                logger.info("%s: suspended; dropping %d catch-up slot(s)", dag.name, len(slots))
                slots.clear()
            while slots:
                slot = slots[0]
                decision = should_start(
                    self._latest_record(dag.name),
                    slot,
                    None,
                    skip_if_successful=dag.skip_if_successful,
                    overlap_policy=dag.overlap_policy,
                    is_catchup=True,
                )
                if decision.action == "wait":
                    if dag.overlap_policy == "latest":
                        del slots[:-1]
                    break
                slots.pop(0)
                self._set_mark(dag.name, "start", slot)
                if decision.is_start:
                    run_id = catchup_run_id(dag.name, slot)
                    self._call_fire(FireRequest(path, dag.name, "start", slot, run_id, "catchup"))
                    break
                logger.info("%s: catch-up slot %s dropped: %s", dag.name, slot, decision.reason)
            if not slots:
                del self._pending[path]
        self._catchup_due_at = now + timedelta(seconds=self._catchup_retry_s) if self._pending else None

    def _call_fire(self, request: FireRequest) -> None:
        logger.info("%s: firing %s for slot %s%s", request.dag_name, request.kind, request.slot,
                    f" as {request.run_id}" if request.run_id else "")
        try:
            self._fire(request)
        except Exception:
            # One broken DAG or queue hiccup must not stop every other schedule.
            logger.exception("%s: firing %s for slot %s failed", request.dag_name, request.kind, request.slot)

    def _arm(self) -> None:
        """Set the one tick timer to the earliest fire time (or catch-up retry)."""
        if self._cancel_tick is not None:
            self._cancel_tick()
            self._cancel_tick = None
        times = [e.next_at for e in self._entries]
        if self._is_active and self._pending:
            times.append(self._catchup_due_at or self._clock())
        if not times:
            return
        delay = min(MAX_SLEEP_S, max(0.0, (min(times) - self._clock()).total_seconds()))
        self._cancel_tick = self._timer(delay, lambda: tell_if_alive(self.actor_ref, Tick()))

    # -- DAG files ---------------------------------------------------------------------

    def _tell_changed(self, path: str) -> None:
        tell_if_alive(self.actor_ref, DagFileChanged(path))

    def _on_file_changed(self, path: str) -> None:
        self._drop(path)
        if Path(path).is_file():
            self._load(path)
        self._arm()

    def _load(self, path: str) -> None:
        from dagu.errors import DaguError
        from dagu.spec import load_dag

        try:
            dag = load_dag(path, base_config=self.settings.base_config)
        except DaguError as exc:
            logger.error("%s: not scheduled: %s", path, exc)
            return
        if not dag.schedule:
            logger.debug("%s: no schedule", path)
            return
        self._dags[path] = dag
        after = self._floor_minute(self._clock()) - timedelta(seconds=1)
        for kind in KINDS:
            for cron in getattr(dag.schedule, kind):
                self._add_entry(path, kind, cron, after)
        logger.info("%s: loaded %s (%d schedule(s))", path, dag.name, sum(1 for e in self._entries if e.path == path))

    def _add_entry(self, path: str, kind: Kind, cron: Any, after: datetime) -> None:
        from dagu.schedule import next_fire_time

        mark = self._marks.get(self._dags[path].name, {}).get(kind)
        try:
            next_at = next_fire_time(cron, max(after, mark) if mark else after, self._tz)
        except ValueError as exc:
            logger.warning("%s: schedule %r never fires (%s); ignoring it", path, cron.text, exc)
            return
        self._entries.append(_Entry(path, kind, cron, next_at))

    def _drop(self, path: str) -> None:
        if self._dags.pop(path, None) is not None:
            logger.info("%s: unloaded", path)
        self._entries = [e for e in self._entries if e.path != path]
        self._pending.pop(path, None)

    def _restart_entries(self, after: datetime) -> None:
        """Recompute every entry's next time from `after` and the watermarks (after taking the lock)."""
        old, self._entries = self._entries, []
        for e in old:
            self._add_entry(e.path, e.kind, e.cron, after)

    def _is_suspended(self, path: str) -> bool:
        from dagu.store.suspend import is_suspended

        return is_suspended(self.settings.suspend_dir, Path(path).stem)

    @staticmethod
    def _floor_minute(moment: datetime) -> datetime:
        return moment.replace(second=0, microsecond=0)

    # -- HA lock, watermarks and catch-up ---------------------------------------------------

    def _try_lock(self) -> None:
        if self._lock.try_acquire():
            self._become_active()
            return
        if self._is_standby_logged:
            logger.debug("SchedulerActor: still standby; lock held by %s", self._lock.holder())
        else:
            self._is_standby_logged = True
            logger.info("SchedulerActor: standby; lock held by %s, retrying every %gs",
                        self._lock.holder(), self.settings.lock_retry_interval_s)
        self._cancel_retry = self._timer(self.settings.lock_retry_interval_s, lambda: tell_if_alive(self.actor_ref, TryLock()))

    def _become_active(self) -> None:
        from dagu.store.scheduler_state import load_watermarks

        self._is_active = True
        self._is_standby_logged = False
        # The previous holder's watermarks: what it fired is not fired again.
        self._marks = load_watermarks(self._state_path)
        now = self._clock()
        self._plan_catchup(now)
        self._restart_entries(self._floor_minute(now) - timedelta(seconds=1))
        logger.info("SchedulerActor: active (lock %s)", self._lock.path)

    def _on_lock_lost(self) -> None:
        if not self._is_active:
            return
        self._is_active = False
        self._pending.clear()
        if self._cancel_retry is None:
            self._try_lock()

    def _plan_catchup(self, now: datetime) -> None:
        """Queue the missed start slots of DAGs with a `catchup_window`, from max(now - window, watermark)."""
        from dagu.schedule import MAX_CATCHUP_SLOTS, due_slots

        self._pending.clear()
        for path, dag in self._dags.items():
            if not dag.catchup_window_s or not dag.schedule.start:
                continue
            since = now - timedelta(seconds=dag.catchup_window_s)
            mark = self._marks.get(dag.name, {}).get("start")
            if mark is not None and mark > since:
                since = mark
            slots = sorted({s for cron in dag.schedule.start for s in due_slots(cron, since, now, self._tz)})
            if slots:
                # Watermarks move as each slot is handled, so a crash mid-replay resumes where
                # it stopped; a slot fired twice is refused by its deterministic run ID.
                self._pending[path] = slots[:MAX_CATCHUP_SLOTS]
                logger.info("%s: catching up %d missed slot(s) since %s", dag.name, len(self._pending[path]), since)
        self._catchup_due_at = now if self._pending else None

    def _set_mark(self, dag_name: str, kind: str, slot: datetime) -> None:
        from dagu.store.scheduler_state import save_watermarks

        marks = self._marks.setdefault(dag_name, {})
        if kind in marks and marks[kind] >= slot:
            return
        marks[kind] = slot
        try:
            save_watermarks(self._state_path, self._marks)
        except OSError as exc:
            logger.warning("scheduler state %s not saved: %s", self._state_path, exc)

    # -- runs and zombies ----------------------------------------------------------------

    def _latest_record(self, dag_name: str) -> Any:
        """The DAG's latest run record (zombies marked failed), or None when it has none."""
        from dagu.errors import NotFound
        from dagu.status import RunStatus
        from dagu.store import RunRecord, RunStore, read_status
        from dagu.store import zombie

        store = RunStore(self.settings.data_dir, self.settings.log_dir)
        try:
            run = store.latest_run(dag_name)
        except NotFound:
            return None
        try:
            attempt = store.latest_attempt(run)
            record = read_status(attempt.status_path)
        except NotFound:
            # Created a moment ago and not yet written: count it as queued, so we don't start a twin.
            return RunRecord(dag_name, run.run_id, status=RunStatus.QUEUED, created_at=run.created_at)
        stale = zombie.stale_after_s(self.settings.zombie_detection_interval_s)
        return zombie.mark_if_zombie(self.settings.proc_dir, attempt, record, stale_after_s=stale)

    def _on_sweep(self) -> None:
        self._cancel_sweep = None
        if self._is_active:
            self._sweep_zombies()
        self._arm_sweep()

    def _sweep_zombies(self) -> None:
        """Mark runs recorded as running since yesterday whose heartbeat is gone as failed (service.md 5.5)."""
        from dagu.status import RunStatus
        from dagu.store import RunStore, utc_now, zombie

        store = RunStore(self.settings.data_dir, self.settings.log_dir)
        stale = zombie.stale_after_s(self.settings.zombie_detection_interval_s)
        # Disk times are real times, whatever clock drives cron.
        since = utc_now() - timedelta(days=1)
        for run, record in store.list_runs(since=since, statuses={RunStatus.RUNNING}, limit=None):
            try:
                attempt = store.latest_attempt(run)
                zombie.mark_if_zombie(self.settings.proc_dir, attempt, record, stale_after_s=stale)
            except Exception:
                logger.exception("zombie check of %s/%s failed", run.dag_name, run.run_id)

    def _arm_sweep(self) -> None:
        self._cancel_sweep = self._timer(
            self.settings.zombie_detection_interval_s, lambda: tell_if_alive(self.actor_ref, SweepZombies())
        )

    def _shutdown(self) -> None:
        for cancel in (self._cancel_tick, self._cancel_sweep, self._cancel_retry):
            if cancel is not None:
                cancel()
        self._cancel_tick = self._cancel_sweep = self._cancel_retry = None
        if self._watcher is not None:
            self._watcher.close()
            self._watcher = None
        self._lock.release()
        self._is_active = False


# -- the `dagu scheduler` process --------------------------------------------------------


class SubprocessFire:
    """The interim `fire`: `dagu enqueue` / `dagu stop` subprocesses, each in a helper thread.

    To be replaced by an in-process QueueActor; until then a slot's run is created
    a moment after `fire` returns.
    """

    def __init__(self, settings: Settings) -> None:
        self._env = {**os.environ, **settings.env_for_children()}

    def __call__(self, request: FireRequest) -> None:
        threading.Thread(target=self._run, args=(request,), name=f"fire {request.dag_name}", daemon=True).start()

    def _run(self, request: FireRequest) -> None:
        dagu = [sys.executable, "-m", "dagu"]
        enqueue = [*dagu, "enqueue", "--trigger", request.trigger]
        if request.run_id:
            enqueue += ["-r", request.run_id]
        enqueue.append(request.dag_path)
        stop = [*dagu, "stop", request.dag_path]
        commands = {"start": [enqueue], "stop": [stop], "restart": [stop, enqueue]}[request.kind]
        for argv in commands:
            try:
                done = subprocess.run(argv, env=self._env, capture_output=True, text=True, timeout=300)
            except (OSError, subprocess.TimeoutExpired) as exc:
                logger.error("%s: `%s` failed: %s", request.dag_name, " ".join(argv[2:]), exc)
                return
            if done.returncode != 0:
                logger.error("%s: `%s` exited %d: %s", request.dag_name, " ".join(argv[2:]), done.returncode,
                             done.stderr.strip()[-500:])


def run_scheduler(
    settings: Settings,
    *,
    fire: Fire | None = None,
    clock: Clock | None = None,
    timer: Timer | None = None,
) -> int:
    """Run the scheduler until SIGTERM or SIGINT; return the process exit code.

    `fire`, `clock` and `timer` default to the real ones; tests pass a recording
    `fire` and a fast clock with a matching timer.
    """
    settings.ensure_dirs()
    actor_options: dict[str, Any] = {k: v for k, v in (("clock", clock), ("timer", timer)) if v is not None}
    read_fd, write_fd = os.pipe()
    os.set_blocking(write_fd, False)
    previous = {sig: signal.signal(sig, _record_signal) for sig in (signal.SIGTERM, signal.SIGINT)}
    old_wakeup = signal.set_wakeup_fd(write_fd)
    waker: threading.Thread | None = None
    ref = None
    try:
        ref = SchedulerActor.start(settings, fire or SubprocessFire(settings), **actor_options)
        waker = threading.Thread(target=_wake_when_stopped, args=(ref, write_fd), name="scheduler-exit", daemon=True)
        waker.start()
        return _wait_for_signal(read_fd)
    finally:
        if ref is not None:
            try:
                ref.stop(block=True, timeout=STOP_TIMEOUT_S)
            except pykka.Timeout:
                logger.error("SchedulerActor did not stop within %gs", STOP_TIMEOUT_S)
        if waker is not None:
            waker.join(timeout=STOP_TIMEOUT_S)  # it writes to write_fd: join before closing it
        signal.set_wakeup_fd(old_wakeup)
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        os.close(read_fd)
        os.close(write_fd)


def _record_signal(signum: int, frame: Any) -> None:
    # Nothing to do here: the C-level handler already wrote the signal number to the wakeup fd.
    pass


def _wait_for_signal(read_fd: int) -> int:
    """Block until SIGTERM/SIGINT (0) or the actor's death (1, written as byte 0 by the exit thread)."""
    while True:
        data = os.read(read_fd, 1)
        if not data or data[0] == 0:
            logger.error("SchedulerActor stopped on its own; exiting")
            return 1
        if data[0] in (signal.SIGTERM, signal.SIGINT):
            logger.info("scheduler: got %s, stopping", signal.Signals(data[0]).name)
            return 0


def _wake_when_stopped(ref: pykka.ActorRef[Any], write_fd: int) -> None:
    ref.actor_stopped.wait()
    try:
        os.write(write_fd, b"\0")
    except OSError:
        pass  # the pipe is closed: run_scheduler is already done
