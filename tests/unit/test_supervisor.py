"""SupervisorActor and RestartBook: restart types, strategies, ordering, backoff, intensity, escalation."""

from __future__ import annotations

import logging
import math
import queue
import threading
import time
from dataclasses import dataclass
from typing import Any

import pykka
import pytest

from actors.messages import ChildExited, GetSnapshot
from actors.supervised import SupervisedActor
from actors.supervisor import (
    ChildSpec,
    Intensity,
    Restart,
    RestartBook,
    Strategy,
    SupervisorActor,
    SupervisorSnapshot,
)

WAIT_S = 3.0
NO_BACKOFF = Intensity(max_restarts=3, within_s=30.0, backoff_s=(0.0, 0.0))


# --- probes -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Crash:
    """test -> ProbeChild: raise inside a tell."""


@dataclass(frozen=True, slots=True)
class Exit:
    """test -> ProbeChild: stop cleanly."""


@dataclass(frozen=True, slots=True)
class Event:
    kind: str  # "started", "stopped", "crashed"
    name: str
    ref: pykka.ActorRef[Any] | None = None
    thread: threading.Thread | None = None


class ProbeChild(SupervisedActor):
    """A child that records its life in a queue and crashes or exits on request."""

    def __init__(self, name: str, events: queue.Queue[Event], *, fail_start: bool = False) -> None:
        super().__init__()
        self._name = name
        self._events = events
        self._fail_start = fail_start

    def on_start(self) -> None:
        if self._fail_start:
            raise RuntimeError(f"{self._name} cannot start")
        self._events.put(Event("started", self._name, self.actor_ref, threading.current_thread()))

    def on_stop(self) -> None:
        self._events.put(Event("stopped", self._name))

    def on_failure(self, exception_type, exception_value, traceback) -> None:
        self._events.put(Event("crashed", self._name))

    def on_receive(self, message: Any) -> Any:
        match message:
            case Crash():
                raise RuntimeError(f"{self._name} crashed on purpose")
            case Exit():
                self.stop()
            case _:
                return super().on_receive(message)
        return None


class ParentProbe(pykka.ThreadingActor):
    """Stands in for a supervisor's parent: records every ChildExited it is told."""

    def __init__(self, exits: queue.Queue[ChildExited]) -> None:
        super().__init__()
        self._exits = exits

    def on_receive(self, message: Any) -> Any:
        match message:
            case ChildExited():
                self._exits.put(message)
            case _:
                return super().on_receive(message)
        return None


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def probe_specs(events: queue.Queue[Event], *names: str, restart: Restart = Restart.PERMANENT) -> list[ChildSpec]:
    return [ChildSpec(n, lambda n=n: ProbeChild.start(n, events), restart=restart, shutdown_s=WAIT_S) for n in names]


def expect(events: queue.Queue[Event], *expected: tuple[str, str]) -> list[Event]:
    """Take len(expected) events and check their (kind, name) in order."""
    got: list[Event] = []
    for _ in expected:
        try:
            got.append(events.get(timeout=WAIT_S))
        except queue.Empty:
            pytest.fail(f"expected {list(expected)}, but only got {[(e.kind, e.name) for e in got]} within {WAIT_S}s")
    assert [(e.kind, e.name) for e in got] == list(expected)
    return got


def end(started: Event, message: Crash | Exit) -> None:
    """Make a child crash or exit, and wait until its thread, and so its exit report, is done."""
    assert started.ref is not None and started.thread is not None
    started.ref.tell(message)
    started.thread.join(WAIT_S)
    assert not started.thread.is_alive(), f"{started.name} did not end within {WAIT_S}s"


def snapshot(supervisor: pykka.ActorRef[Any]) -> SupervisorSnapshot:
    # NOTE: asked after the child's thread ended, so the supervisor has already
    # handled the child's ChildExited: its inbox is first in, first out.
    return supervisor.ask(GetSnapshot(), timeout=WAIT_S)


def stop(ref: pykka.ActorRef[Any]) -> None:
    ref.stop(block=True, timeout=WAIT_S)


# --- restart types ----------------------------------------------------------------------


@pytest.mark.parametrize("how", [Crash(), Exit()], ids=["crash", "clean exit"])
def test_permanent_child_is_restarted_after_crash_and_after_clean_exit(how):
    events: queue.Queue[Event] = queue.Queue()
    sup = SupervisorActor.start(probe_specs(events, "a"), intensity=NO_BACKOFF)
    (first,) = expect(events, ("started", "a"))
    end(first, how)
    kind = "crashed" if isinstance(how, Crash) else "stopped"
    _, again = expect(events, (kind, "a"), ("started", "a"))
    assert again.ref is not None and again.ref.actor_urn != first.ref.actor_urn
    stop(sup)


def test_transient_child_is_restarted_after_crash():
    events: queue.Queue[Event] = queue.Queue()
    sup = SupervisorActor.start(probe_specs(events, "a", restart=Restart.TRANSIENT), intensity=NO_BACKOFF)
    (first,) = expect(events, ("started", "a"))
    end(first, Crash())
    expect(events, ("crashed", "a"), ("started", "a"))
    stop(sup)


def test_transient_child_is_not_restarted_after_clean_exit():
    events: queue.Queue[Event] = queue.Queue()
    sup = SupervisorActor.start(probe_specs(events, "a", restart=Restart.TRANSIENT), intensity=NO_BACKOFF)
    (first,) = expect(events, ("started", "a"))
    end(first, Exit())
    assert snapshot(sup).child("a").state == "exited"
    stop(sup)
    expect(events, ("stopped", "a"))
    assert events.empty()


@pytest.mark.parametrize("how", [Crash(), Exit()], ids=["crash", "clean exit"])
def test_temporary_child_is_never_restarted(how):
    events: queue.Queue[Event] = queue.Queue()
    sup = SupervisorActor.start(probe_specs(events, "a", restart=Restart.TEMPORARY), intensity=NO_BACKOFF)
    (first,) = expect(events, ("started", "a"))
    end(first, how)
    snap = snapshot(sup)
    assert snap.child("a").state == "exited"
    assert snap.restarts_in_window == 0
    stop(sup)


# --- strategies ---------------------------------------------------------------------------


def test_one_for_one_restarts_only_the_child_that_died():
    events: queue.Queue[Event] = queue.Queue()
    sup = SupervisorActor.start(probe_specs(events, "a", "b", "c"), strategy=Strategy.ONE_FOR_ONE, intensity=NO_BACKOFF)
    a, b, c = expect(events, ("started", "a"), ("started", "b"), ("started", "c"))
    end(b, Crash())
    expect(events, ("crashed", "b"), ("started", "b"))
    snap = snapshot(sup)
    assert snap.child("a").actor_urn == a.ref.actor_urn
    assert snap.child("c").actor_urn == c.ref.actor_urn
    stop(sup)


def test_one_for_all_stops_the_others_in_reverse_and_restarts_all_in_order():
    events: queue.Queue[Event] = queue.Queue()
    sup = SupervisorActor.start(probe_specs(events, "a", "b", "c"), strategy=Strategy.ONE_FOR_ALL, intensity=NO_BACKOFF)
    _, b, _ = expect(events, ("started", "a"), ("started", "b"), ("started", "c"))
    end(b, Crash())
    expect(
        events,
        ("crashed", "b"), ("stopped", "c"), ("stopped", "a"),
        ("started", "a"), ("started", "b"), ("started", "c"),
    )
    assert snapshot(sup).restarts_in_window == 1  # one exit, one restart, however many children
    stop(sup)


def test_rest_for_one_restarts_the_dead_child_and_those_started_after_it_in_order():
    events: queue.Queue[Event] = queue.Queue()
    sup = SupervisorActor.start(probe_specs(events, "a", "b", "c", "d"), strategy=Strategy.REST_FOR_ONE, intensity=NO_BACKOFF)
    a, b, _, _ = expect(events, ("started", "a"), ("started", "b"), ("started", "c"), ("started", "d"))
    end(b, Crash())
    expect(
        events,
        ("crashed", "b"), ("stopped", "d"), ("stopped", "c"),
        ("started", "b"), ("started", "c"), ("started", "d"),
    )
    assert snapshot(sup).child("a").actor_urn == a.ref.actor_urn
    stop(sup)


def test_one_for_all_does_not_restart_a_temporary_sibling():
    events: queue.Queue[Event] = queue.Queue()
    specs = [*probe_specs(events, "a"), *probe_specs(events, "t", restart=Restart.TEMPORARY)]
    sup = SupervisorActor.start(specs, strategy=Strategy.ONE_FOR_ALL, intensity=NO_BACKOFF)
    a, _ = expect(events, ("started", "a"), ("started", "t"))
    end(a, Crash())
    expect(events, ("crashed", "a"), ("stopped", "t"), ("started", "a"))
    assert snapshot(sup).child("t").state == "exited"
    stop(sup)


# --- order, construction ----------------------------------------------------------------


def test_children_start_in_spec_order_and_stop_in_reverse_order():
    events: queue.Queue[Event] = queue.Queue()
    sup = SupervisorActor.start(probe_specs(events, "a", "b", "c"), intensity=NO_BACKOFF)
    expect(events, ("started", "a"), ("started", "b"), ("started", "c"))
    stop(sup)
    expect(events, ("stopped", "c"), ("stopped", "b"), ("stopped", "a"))


def test_duplicate_child_ids_fail_at_construction():
    events: queue.Queue[Event] = queue.Queue()
    with pytest.raises(ValueError, match="duplicate child id 'a'"):
        SupervisorActor.start(probe_specs(events, "a", "b", "a"))
    assert events.empty()  # nothing was started


def test_a_child_failing_at_boot_fails_the_supervisor_after_stopping_its_started_siblings():
    events: queue.Queue[Event] = queue.Queue()
    exits: queue.Queue[ChildExited] = queue.Queue()
    parent = ParentProbe.start(exits)
    specs = [
        *probe_specs(events, "a"),
        ChildSpec("b", lambda: ProbeChild.start("b", events, fail_start=True)),
        *probe_specs(events, "c"),
    ]
    sup = SupervisorActor.start(specs, parent=parent, child_id="sup")
    expect(events, ("started", "a"), ("stopped", "a"))
    exited = exits.get(timeout=WAIT_S)
    assert (exited.child_id, exited.abnormal, exited.reason) == ("sup", True, "failed to start")
    assert "child 'b' failed to start: RuntimeError: b cannot start" in exited.error
    assert not sup.is_alive()
    assert events.empty()  # c was never started
    stop(parent)


def test_a_child_that_does_not_report_its_exit_is_refused():
    exits: queue.Queue[ChildExited] = queue.Queue()
    parent = ParentProbe.start(exits)
    specs = [ChildSpec("plain", lambda: ParentProbe.start(queue.Queue()))]
    SupervisorActor.start(specs, parent=parent, child_id="sup")
    exited = exits.get(timeout=WAIT_S)
    assert exited.abnormal and "Derive the child from SupervisedActor" in exited.error
    stop(parent)  # the conftest checks that the refused child was stopped too


# --- backoff ----------------------------------------------------------------------------


def test_restart_delays_grow_by_the_multiplier_and_stop_at_the_cap():
    events: queue.Queue[Event] = queue.Queue()
    delays: list[float] = []

    def fire_now(delay_s, callback):  # records the delay instead of waiting it out
        delays.append(delay_s)
        callback()
        return lambda: None

    intensity = Intensity(max_restarts=10, within_s=60.0, backoff_s=(0.5, 2.0), multiplier=2.0)
    sup = SupervisorActor.start(probe_specs(events, "a"), intensity=intensity, clock=FakeClock(), timer=fire_now)
    (child,) = expect(events, ("started", "a"))
    for _ in range(4):
        end(child, Crash())
        _, child = expect(events, ("crashed", "a"), ("started", "a"))
    assert delays == [0.5, 1.0, 2.0, 2.0]
    stop(sup)


def test_a_delayed_restart_waits_for_the_backoff_on_a_real_timer():
    events: queue.Queue[Event] = queue.Queue()
    intensity = Intensity(max_restarts=3, within_s=30.0, backoff_s=(0.1, 0.1))
    sup = SupervisorActor.start(probe_specs(events, "a"), intensity=intensity)
    (child,) = expect(events, ("started", "a"))
    crashed_at = time.monotonic()
    end(child, Crash())
    expect(events, ("crashed", "a"))
    assert snapshot(sup).child("a").state == "restarting"
    expect(events, ("started", "a"))
    assert time.monotonic() - crashed_at >= 0.1
    stop(sup)


def test_stopping_a_supervisor_cancels_a_pending_restart():
    events: queue.Queue[Event] = queue.Queue()
    cancelled = threading.Event()

    def never_fire(delay_s, callback):
        return cancelled.set

    intensity = Intensity(max_restarts=3, within_s=30.0, backoff_s=(5.0, 5.0))
    sup = SupervisorActor.start(probe_specs(events, "a"), intensity=intensity, timer=never_fire)
    (child,) = expect(events, ("started", "a"))
    end(child, Crash())
    assert snapshot(sup).child("a").state == "restarting"
    stop(sup)
    assert cancelled.is_set()


def test_restart_book_delays_grow_and_are_capped():
    book = RestartBook(Intensity(max_restarts=6, within_s=60.0, backoff_s=(1.0, 5.0), multiplier=2.0), FakeClock())
    assert [book.record_restart() for _ in range(6)] == [1.0, 2.0, 4.0, 5.0, 5.0, 5.0]


def test_restart_book_refuses_a_restart_beyond_the_intensity_until_the_window_slides():
    clock = FakeClock()
    book = RestartBook(Intensity(max_restarts=2, within_s=10.0, backoff_s=(1.0, 8.0)), clock)
    assert book.record_restart() == 1.0
    clock.now += 4
    assert book.record_restart() == 2.0
    clock.now += 5
    assert book.record_restart() is None  # 2 restarts within the last 10 s
    assert book.restarts_in_window() == 2
    clock.now += 1  # the first restart leaves the window
    assert book.restarts_in_window() == 1
    assert book.record_restart() == 2.0  # priced by the restarts still in the window


def test_restart_book_with_an_unbounded_window_never_forgets():
    clock = FakeClock()
    book = RestartBook(Intensity(max_restarts=1, within_s=math.inf, backoff_s=(0.0, 0.0)), clock)
    assert book.record_restart() == 0.0
    clock.now += 1e9
    assert book.record_restart() is None


def test_backoff_survives_a_huge_restart_count():
    assert Intensity(backoff_s=(1.0, 30.0)).delay_s(5000) == 30.0


# --- intensity and escalation -----------------------------------------------------------


def test_exceeding_the_intensity_stops_the_children_and_escalates_to_the_parent():
    events: queue.Queue[Event] = queue.Queue()
    exits: queue.Queue[ChildExited] = queue.Queue()
    parent = ParentProbe.start(exits)
    intensity = Intensity(max_restarts=1, within_s=30.0, backoff_s=(0.0, 0.0))
    sup = SupervisorActor.start(probe_specs(events, "a", "b"), intensity=intensity, parent=parent, child_id="sup")
    a, _ = expect(events, ("started", "a"), ("started", "b"))
    end(a, Crash())
    _, a = expect(events, ("crashed", "a"), ("started", "a"))
    end(a, Crash())
    expect(events, ("crashed", "a"), ("stopped", "b"))
    exited = exits.get(timeout=WAIT_S)
    assert (exited.child_id, exited.abnormal) == ("sup", True)
    assert exited.reason.startswith("restart intensity exceeded: child a crashed")
    assert exited.actor_urn == sup.actor_urn
    assert not sup.is_alive()
    assert events.empty()  # a was not started a third time
    stop(parent)


def test_a_supervisor_under_a_supervisor_escalates_and_its_subtree_is_restarted():
    events: queue.Queue[Event] = queue.Queue()
    gives_up_at_once = Intensity(max_restarts=0, within_s=30.0, backoff_s=(0.0, 0.0))

    def start_sub():
        return SupervisorActor.start(probe_specs(events, "a", "b"), intensity=gives_up_at_once, name="sub")

    top = SupervisorActor.start([ChildSpec("sub", start_sub)], intensity=NO_BACKOFF, name="top")
    a, _ = expect(events, ("started", "a"), ("started", "b"))
    old_sub = snapshot(top).child("sub").actor_urn
    end(a, Crash())
    expect(events, ("crashed", "a"), ("stopped", "b"), ("started", "a"), ("started", "b"))
    snap = snapshot(top)
    assert snap.child("sub").state == "running"
    assert snap.child("sub").actor_urn != old_sub
    assert snap.restarts_in_window == 1
    stop(top)
    expect(events, ("stopped", "b"), ("stopped", "a"))


def test_every_restart_is_logged_with_child_reason_and_count_in_window(caplog):
    caplog.set_level(logging.WARNING, logger="actors.supervisor")
    events: queue.Queue[Event] = queue.Queue()
    sup = SupervisorActor.start(probe_specs(events, "a"), intensity=NO_BACKOFF, name="logs")
    (child,) = expect(events, ("started", "a"))
    end(child, Crash())
    expect(events, ("crashed", "a"), ("started", "a"))
    restarts = [r.getMessage() for r in caplog.records if r.name == "actors.supervisor" and "restarting" in r.getMessage()]
    assert restarts == [
        "SupervisorActor(logs): child a crashed (RuntimeError: a crashed on purpose); "
        "restarting a in 0.00s (restart 1 of 3 within 30s)"
    ]
    stop(sup)
