"""SchedulerActor with an injected clock and a manual timer: firing, suspend, DAG-folder watching, catch-up, zombies."""

from __future__ import annotations

import os
import struct
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson
import pytest

from actors.messages import GetSnapshot, Tick
from actors.scheduler import FireRequest, SchedulerActor, SchedulerSnapshot
from dagu.config import Settings
from dagu.schedule import catchup_run_id
from dagu.status import RunStatus
from dagu.store import RunRecord, RunStore, read_status, rewrite_status

ASK_S = 5.0
WATCH_DEADLINE_S = 5.0
START = datetime(2025, 1, 1, 10, 2, 30, tzinfo=UTC)


# --- time and probes -------------------------------------------------------------------------


class FakeClock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


class ManualTimer:
    """The actor's `timer`: remembers callbacks with their due time on the fake clock; `advance` runs them."""

    def __init__(self, clock: FakeClock) -> None:
        self.clock = clock
        self._lock = threading.Lock()
        self._pending: list[list] = []  # [due_at, callback, cancelled]

    def __call__(self, delay_s: float, callback: Callable[[], None]) -> Callable[[], None]:
        item = [self.clock.now + timedelta(seconds=delay_s), callback, False]
        with self._lock:
            self._pending.append(item)

        def cancel() -> None:
            item[2] = True

        return cancel

    def due_times(self) -> list[datetime]:
        with self._lock:
            return sorted(i[0] for i in self._pending if not i[2])

    def advance_to(self, moment: datetime) -> None:
        self.clock.now = moment
        with self._lock:
            due = [i for i in self._pending if i[0] <= moment and not i[2]]
            self._pending = [i for i in self._pending if i not in due and not i[2]]
        for _, callback, _ in sorted(due, key=lambda i: i[0]):
            callback()


class Harness:
    def __init__(self, tmp_path: Path, **overrides) -> None:
        self.settings = make_settings(tmp_path, **overrides)
        self.clock = FakeClock(START)
        self.timer = ManualTimer(self.clock)
        self.fired: list[FireRequest] = []
        self.on_fire: Callable[[FireRequest], None] | None = None
        self.refs = []

    def start(self, **kwargs):
        ref = SchedulerActor.start(self.settings, self._fire, clock=self.clock, timer=self.timer, **kwargs)
        self.refs.append(ref)
        self.snapshot(ref)
        return ref

    def _fire(self, request: FireRequest) -> None:
        self.fired.append(request)
        if self.on_fire is not None:
            self.on_fire(request)

    def snapshot(self, ref=None) -> SchedulerSnapshot:
        """Also a barrier: every message told before it has been handled."""
        return (ref or self.refs[0]).ask(GetSnapshot(), timeout=ASK_S)

    def advance_to(self, moment: datetime) -> SchedulerSnapshot:
        self.timer.advance_to(moment)
        return self.snapshot()

    def write_dag(self, name: str, body: str) -> Path:
        path = self.settings.dags_dir / f"{name}.yaml"
        path.write_text(body + "steps:\n  - command: echo hi\n")
        return path

    def stop(self) -> None:
        for ref in reversed(self.refs):
            ref.stop(block=True, timeout=ASK_S)


def make_settings(tmp_path: Path, **overrides) -> Settings:
    values = dict(
        home=tmp_path,
        config_file=tmp_path / "config.yaml",
        dags_dir=tmp_path / "dags",
        data_dir=tmp_path / "data",
        log_dir=tmp_path / "logs",
        admin_log_dir=tmp_path / "logs" / "admin",
        suspend_dir=tmp_path / "suspend",
        base_config=tmp_path / "base.yaml",
        tz="UTC",
        zombie_detection_interval_s=0.0,  # most tests watch only the cron timer
    )
    values.update(overrides)
    settings = Settings(**values)
    settings.dags_dir.mkdir(parents=True, exist_ok=True)
    return settings


@pytest.fixture
def h(tmp_path):
    harness = Harness(tmp_path)
    yield harness
    harness.stop()


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


def wait_for(condition: Callable[[], bool], what: str, deadline_s: float = WATCH_DEADLINE_S) -> None:
    deadline = time.monotonic() + deadline_s
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"within {deadline_s:g}s, never: {what}")
        time.sleep(0.02)


def add_run(settings: Settings, run_id: str, status: RunStatus, **fields) -> None:
    store = RunStore(settings.data_dir, settings.log_dir)
    attempt = store.new_attempt(store.create_run("etl", run_id))
    rewrite_status(attempt.status_path, RunRecord("etl", run_id, status=status, **fields))


def set_status(settings: Settings, run_id: str, status: RunStatus) -> None:
    store = RunStore(settings.data_dir, settings.log_dir)
    attempt = store.latest_attempt(store.find_run("etl", run_id))
    record = read_status(attempt.status_path)
    record.status = status
    rewrite_status(attempt.status_path, record)


# --- firing ----------------------------------------------------------------------------------


def test_fires_each_slot_exactly_once_at_its_time(h):
    h.clock.now = utc(2025, 1, 1, 10, 4, 30)
    h.write_dag("etl", 'schedule: "*/5 * * * *"\n')
    h.start()
    assert h.snapshot().next_fires[0].next_at == utc(2025, 1, 1, 10, 5)
    # The single timer is set for the slot itself: no lateness is built in.
    assert h.timer.due_times() == [utc(2025, 1, 1, 10, 5)]
    h.advance_to(utc(2025, 1, 1, 10, 4, 59))
    assert h.fired == []
    snap = h.advance_to(utc(2025, 1, 1, 10, 5))
    assert [(f.dag_name, f.kind, f.slot, f.run_id, f.trigger) for f in h.fired] == [
        ("etl", "start", utc(2025, 1, 1, 10, 5), None, "scheduler")
    ]
    assert h.fired[0].dag_path == str(h.settings.dags_dir / "etl.yaml")
    # A stray extra tick for the same moment must not fire the slot again.
    h.refs[0].tell(Tick())
    assert h.snapshot().next_fires[0].next_at == utc(2025, 1, 1, 10, 10)
    assert len(h.fired) == 1
    assert snap.is_active


def test_startup_fires_the_current_minute_slot_at_once(h):
    h.clock.now = utc(2025, 1, 1, 10, 5, 40)
    h.write_dag("etl", 'schedule: "*/5 * * * *"\n')
    h.start()
    assert h.timer.due_times() == [h.clock.now]  # the 10:05 slot is already due: delay 0
    h.advance_to(h.clock.now)
    assert [f.slot for f in h.fired] == [utc(2025, 1, 1, 10, 5)]


def test_restart_does_not_fire_a_slot_again(h):
    h.clock.now = utc(2025, 1, 1, 10, 5, 10)
    h.write_dag("etl", 'schedule: "*/5 * * * *"\n')
    first = h.start()
    h.advance_to(h.clock.now)
    first.stop(block=True, timeout=ASK_S)
    h.refs.clear()
    h.clock.now = utc(2025, 1, 1, 10, 5, 50)
    h.start()
    h.advance_to(h.clock.now)
    assert [f.slot for f in h.fired] == [utc(2025, 1, 1, 10, 5)]  # the watermark held it back


def test_two_expressions_matching_one_slot_fire_once(h):
    h.write_dag("etl", 'schedule: ["*/5 * * * *", "0,5 * * * *"]\n')
    h.start()
    h.advance_to(utc(2025, 1, 1, 10, 5))
    assert [f.slot for f in h.fired] == [utc(2025, 1, 1, 10, 5)]


def test_after_a_long_stall_only_the_newest_due_slot_fires(h):
    h.write_dag("etl", 'schedule: "*/5 * * * *"\n')
    h.start()
    snap = h.advance_to(utc(2025, 1, 1, 10, 20, 30))  # the timer fired 15 minutes late
    assert [f.slot for f in h.fired] == [utc(2025, 1, 1, 10, 20)]
    assert snap.next_fires[0].next_at == utc(2025, 1, 1, 10, 25)


def test_configured_zone_and_cron_tz_decide_the_slot(tmp_path):
    harness = Harness(tmp_path, tz="America/New_York")
    try:
        harness.clock.now = utc(2025, 1, 6, 0, 30)
        harness.write_dag("ny", 'schedule: "0 9 * * *"\n')
        harness.write_dag("tokyo", 'schedule: "CRON_TZ=Asia/Tokyo 0 9 * * *"\n')
        harness.start()
        fires = {f.dag_name: f.next_at for f in harness.snapshot().next_fires}
        assert fires == {"tokyo": utc(2025, 1, 7, 0, 0), "ny": utc(2025, 1, 6, 14, 0)}
    finally:
        harness.stop()


def test_stop_and_restart_schedules_fire_their_kind(h):
    h.write_dag("etl", 'schedule:\n  start: "0 11 * * *"\n  stop: "10 10 * * *"\n  restart: ["5 10 * * *"]\n')
    h.start()
    h.advance_to(utc(2025, 1, 1, 10, 5))
    h.advance_to(utc(2025, 1, 1, 10, 10))
    assert [(f.kind, f.slot) for f in h.fired] == [
        ("restart", utc(2025, 1, 1, 10, 5)),
        ("stop", utc(2025, 1, 1, 10, 10)),
    ]


def test_overlapping_run_skips_the_live_slot(h):
    h.write_dag("etl", 'schedule: "*/5 * * * *"\n')
    add_run(h.settings, "queued-one", RunStatus.QUEUED, queued_at=utc(2025, 1, 1, 9, 0))
    h.start()
    h.advance_to(utc(2025, 1, 1, 10, 5))
    assert h.fired == []
    set_status(h.settings, "queued-one", RunStatus.SUCCEEDED)
    h.advance_to(utc(2025, 1, 1, 10, 10))
    assert [f.slot for f in h.fired] == [utc(2025, 1, 1, 10, 10)]


def test_suspended_dag_does_not_fire_until_resumed(h):
    h.write_dag("etl", 'schedule: "*/5 * * * *"\n')
    flag = h.settings.suspend_dir / "etl.suspend"
    flag.parent.mkdir(parents=True)
    flag.touch()
    h.start()
    snap = h.advance_to(utc(2025, 1, 1, 10, 5))
    assert h.fired == []
    assert snap.next_fires[0].next_at == utc(2025, 1, 1, 10, 10)  # time moves on regardless
    flag.unlink()
    h.advance_to(utc(2025, 1, 1, 10, 10))
    assert [f.slot for f in h.fired] == [utc(2025, 1, 1, 10, 10)]


def test_file_with_errors_is_skipped_and_others_still_fire(h):
    h.write_dag("broken", 'schedule: "61 * * * *"\n')
    h.write_dag("etl", 'schedule: "*/5 * * * *"\n')
    h.start()
    assert h.snapshot().dags == ("etl",)


# --- the DAGs folder --------------------------------------------------------------------------


def test_added_changed_and_removed_files_reload_and_drop(h):
    h.start()
    assert h.snapshot().dags == ()
    path = h.write_dag("etl", 'schedule: "*/5 * * * *"\n')
    wait_for(lambda: h.snapshot().dags == ("etl",), "the added DAG was loaded")
    assert h.snapshot().next_fires[0].next_at == utc(2025, 1, 1, 10, 5)
    assert h.timer.due_times() == [START + timedelta(seconds=60)]  # a long sleep is cut to a minute

    h.write_dag("etl", 'schedule: "0 12 * * *"\n')
    wait_for(lambda: [f.expression for f in h.snapshot().next_fires] == ["0 12 * * *"], "the changed schedule was used")
    assert h.snapshot().next_fires[0].next_at == utc(2025, 1, 1, 12, 0)

    path.unlink()
    wait_for(lambda: h.snapshot().dags == (), "the removed DAG was dropped")
    h.advance_to(utc(2025, 1, 1, 12, 0))
    assert h.fired == []


def test_file_that_turns_invalid_is_dropped(h):
    h.write_dag("etl", 'schedule: "*/5 * * * *"\n')
    h.start()
    h.write_dag("etl", 'schedule: "not a cron"\n')
    wait_for(lambda: h.snapshot().dags == (), "the now-invalid DAG was dropped")


# --- catch-up --------------------------------------------------------------------------------


def write_watermark(settings: Settings, dag: str, at: str) -> None:
    state = settings.data_dir / "scheduler" / "state.json"
    state.parent.mkdir(parents=True, exist_ok=True)
    state.write_bytes(orjson.dumps({"version": 1, "dags": {dag: {"start": at}}}))


def read_watermark(settings: Settings, dag: str) -> str:
    return orjson.loads((settings.data_dir / "scheduler" / "state.json").read_bytes())["dags"][dag]["start"]


def queue_run_on_fire(h: Harness) -> None:
    """Make `fire` do what enqueue does: a queued run under the requested ID."""
    h.on_fire = lambda req: add_run(h.settings, req.run_id or f"live-{len(h.fired)}", RunStatus.QUEUED, queued_at=req.slot)


def test_catchup_replays_missed_slots_after_the_watermark_oldest_first(h):
    h.clock.now = utc(2025, 1, 1, 10, 25)
    h.write_dag("etl", 'schedule: "*/10 * * * *"\ncatchup_window: 1h\noverlap_policy: all\n')
    write_watermark(h.settings, "etl", "2025-01-01T09:40:00.000Z")
    queue_run_on_fire(h)
    h.start(catchup_retry_s=5)
    snap = h.advance_to(h.clock.now)
    assert [s for _, s in snap.pending_catchup] == [utc(2025, 1, 1, 10, 0), utc(2025, 1, 1, 10, 10), utc(2025, 1, 1, 10, 20)]
    first = h.fired[0]
    assert (first.slot, first.trigger, first.run_id) == (utc(2025, 1, 1, 9, 50), "catchup", catchup_run_id("etl", first.slot))
    # overlap_policy all: while that run is queued, the next slot waits.
    h.advance_to(h.clock.now + timedelta(seconds=5))
    assert len(h.fired) == 1
    set_status(h.settings, first.run_id, RunStatus.SUCCEEDED)
    h.advance_to(h.clock.now + timedelta(seconds=5))
    assert [f.slot for f in h.fired] == [utc(2025, 1, 1, 9, 50), utc(2025, 1, 1, 10, 0)]
    assert read_watermark(h.settings, "etl") == "2025-01-01T10:00:00.000Z"


def test_catchup_window_bounds_the_replay_without_a_watermark(h):
    h.clock.now = utc(2025, 1, 1, 10, 25)
    h.write_dag("etl", 'schedule: "*/10 * * * *"\ncatchup_window: 20m\n')
    h.start()
    h.advance_to(h.clock.now)
    h.advance_to(h.clock.now + timedelta(seconds=5))
    assert [f.slot for f in h.fired] == [utc(2025, 1, 1, 10, 10), utc(2025, 1, 1, 10, 20)]
    assert all(f.trigger == "catchup" for f in h.fired)


def test_catchup_latest_policy_keeps_only_the_newest_waiting_slot(h):
    h.clock.now = utc(2025, 1, 1, 10, 25)
    h.write_dag("etl", 'schedule: "*/10 * * * *"\ncatchup_window: 1h\noverlap_policy: latest\n')
    queue_run_on_fire(h)
    h.start()
    h.advance_to(h.clock.now)
    snap = h.advance_to(h.clock.now + timedelta(seconds=5))
    assert [s for _, s in snap.pending_catchup] == [utc(2025, 1, 1, 10, 20)]
    set_status(h.settings, h.fired[0].run_id, RunStatus.SUCCEEDED)
    h.advance_to(h.clock.now + timedelta(seconds=5))
    assert [f.slot for f in h.fired] == [utc(2025, 1, 1, 9, 30), utc(2025, 1, 1, 10, 20)]


def test_catchup_skip_policy_drops_slots_while_a_run_is_queued(h):
    h.clock.now = utc(2025, 1, 1, 10, 25)
    h.write_dag("etl", 'schedule: "*/10 * * * *"\ncatchup_window: 1h\n')
    queue_run_on_fire(h)
    h.start()
    h.advance_to(h.clock.now)
    snap = h.advance_to(h.clock.now + timedelta(seconds=5))
    assert [f.slot for f in h.fired] == [utc(2025, 1, 1, 9, 30)]
    assert snap.pending_catchup == ()
    assert read_watermark(h.settings, "etl") == "2025-01-01T10:20:00.000Z"


def test_without_catchup_window_missed_slots_are_not_replayed(h):
    h.clock.now = utc(2025, 1, 1, 10, 25)
    h.write_dag("etl", 'schedule: "*/10 * * * *"\n')
    write_watermark(h.settings, "etl", "2025-01-01T09:40:00.000Z")
    snap = h.start() and h.advance_to(h.clock.now)
    assert h.fired == [] and snap.pending_catchup == ()
    assert snap.next_fires[0].next_at == utc(2025, 1, 1, 10, 30)


# --- zombies ---------------------------------------------------------------------------------


def write_heartbeat(settings: Settings, run_id: str, age_s: float) -> Path:
    folder = settings.proc_dir / "etl" / "etl"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"proc_20250101_000000Z_{run_id}.proc"
    beat = time.time() - age_s
    path.write_bytes(struct.pack(">Q", int(beat)))
    os.utime(path, (beat, beat))
    return path


def test_zombie_sweep_marks_a_running_run_with_a_stale_heartbeat_failed(tmp_path):
    harness = Harness(tmp_path, zombie_detection_interval_s=45.0)
    try:
        add_run(harness.settings, "dead", RunStatus.RUNNING, started_at=utc(2025, 1, 1))
        add_run(harness.settings, "alive", RunStatus.RUNNING, started_at=utc(2025, 1, 1))
        write_heartbeat(harness.settings, "dead", age_s=600)
        write_heartbeat(harness.settings, "alive", age_s=1)
        harness.start()
        assert harness.timer.due_times() == [START + timedelta(seconds=45)]  # the slow safety net
        harness.advance_to(START + timedelta(seconds=45))
        store = RunStore(harness.settings.data_dir, harness.settings.log_dir)
        dead = store.read_latest(store.find_run("etl", "dead"))
        assert dead.status == RunStatus.FAILED
        assert "zombie" in dead.error
        assert store.read_latest(store.find_run("etl", "alive")).status == RunStatus.RUNNING
        assert harness.timer.due_times() == [START + timedelta(seconds=90)]  # and again later
    finally:
        harness.stop()


def test_zero_interval_disables_the_zombie_sweep(tmp_path):
    harness = Harness(tmp_path, zombie_detection_interval_s=0.0)
    try:
        harness.start()
        assert harness.timer.due_times() == []
    finally:
        harness.stop()


# --- HA --------------------------------------------------------------------------------------


def test_standby_does_not_fire_and_takes_over_when_the_holder_stops(h):
    h.write_dag("etl", 'schedule: "*/5 * * * *"\n')
    holder = h.start()
    standby = h.start()
    assert h.snapshot(holder).is_active and not h.snapshot(standby).is_active
    h.advance_to(utc(2025, 1, 1, 10, 5))
    h.snapshot(standby)
    assert [f.slot for f in h.fired] == [utc(2025, 1, 1, 10, 5)]
    holder.stop(block=True, timeout=ASK_S)
    h.refs.remove(holder)
    # The standby retries every lock_retry_interval_s (5 s by default).
    h.timer.advance_to(h.clock.now + timedelta(seconds=5))
    assert h.snapshot(standby).is_active
    h.advance_to(utc(2025, 1, 1, 10, 10))
    assert [f.slot for f in h.fired] == [utc(2025, 1, 1, 10, 5), utc(2025, 1, 1, 10, 10)]
