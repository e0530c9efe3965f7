"""Supervision of actors: child specs, restart types and strategies, intensity and backoff.

Owns the SupervisorActor and its data (ChildSpec, Restart, Strategy, Intensity),
and RestartBook, the pure restart counter that the OS-process supervisor and the
DagRunActor reuse. The child's side, reporting its own exit, is
`actors/supervised.py` (pykka has no links); OS processes are `actors/processes.py`;
a step's `retry_policy` is mapped in `actors/retry.py`.
"""

from __future__ import annotations

import itertools
import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from enum import Enum
from types import TracebackType
from typing import Any

import pykka

from actors.messages import ChildExited, GetSnapshot, RestartChild
from actors.supervised import SupervisedActor, describe_exception, offer_supervision, tell_if_alive

__all__ = [
    "START_TIMEOUT_S",
    "ChildSnapshot",
    "ChildSpec",
    "Clock",
    "Intensity",
    "Restart",
    "RestartBook",
    "Strategy",
    "SupervisedActor",
    "SupervisorActor",
    "SupervisorSnapshot",
    "call_later",
    "check_specs",
    "is_restarted",
]

logger = logging.getLogger(__name__)

START_TIMEOUT_S = 10.0
"""How long a supervisor waits for a child's `on_start` before counting it as failed."""

Clock = Callable[[], float]
Cancel = Callable[[], None]
Timer = Callable[[float, Callable[[], None]], Cancel]


class Restart(Enum):
    """When a child that exited is started again."""

    PERMANENT = "permanent"  # always restart
    TRANSIENT = "transient"  # restart only after an abnormal exit
    TEMPORARY = "temporary"  # never restart


class Strategy(Enum):
    """Which children a supervisor restarts when one of them must be restarted."""

    ONE_FOR_ONE = "one_for_one"  # only the one that exited
    ONE_FOR_ALL = "one_for_all"  # all of them
    REST_FOR_ONE = "rest_for_one"  # the one that exited and those started after it


@dataclass(frozen=True, slots=True)
class ChildSpec:
    """How a supervisor starts, restarts and stops one child."""

    id: str
    start: Callable[[], pykka.ActorRef[Any]]  # starts a SupervisedActor, returns its ref
    restart: Restart = Restart.PERMANENT
    shutdown_s: float | None = 5.0  # None: stop at once, no grace

    def __post_init__(self) -> None:
        if not isinstance(self.id, str) or not self.id:
            raise ValueError(f"ChildSpec.id: expected a non-empty string, got {self.id!r}")
        if not callable(self.start):
            raise TypeError(f"ChildSpec({self.id!r}).start: expected a callable, got {self.start!r}")
        if not isinstance(self.restart, Restart):
            raise TypeError(f"ChildSpec({self.id!r}).restart: expected a Restart, got {self.restart!r}")
        if self.shutdown_s is not None and self.shutdown_s < 0:
            raise ValueError(f"ChildSpec({self.id!r}).shutdown_s: expected None or >= 0, got {self.shutdown_s!r}")


@dataclass(frozen=True, slots=True)
class Intensity:
    """How many restarts a supervisor allows within a window, and how long each waits.

    The delay before restart k (0-based, counted in the window) is
    `first * multiplier**k`, capped at `cap`, with `backoff_s = (first, cap)`.
    """

    max_restarts: int = 3
    within_s: float = 30.0  # math.inf: count every restart ever made
    backoff_s: tuple[float, float] = (1.0, 30.0)  # first delay, cap
    multiplier: float = 2.0

    def __post_init__(self) -> None:
        if isinstance(self.max_restarts, bool) or not isinstance(self.max_restarts, int) or self.max_restarts < 0:
            raise ValueError(f"Intensity.max_restarts: expected a whole number >= 0, got {self.max_restarts!r}")
        if not self.within_s > 0:
            raise ValueError(f"Intensity.within_s: expected a number > 0, got {self.within_s!r}")
        if len(self.backoff_s) != 2 or min(self.backoff_s) < 0:
            raise ValueError(f"Intensity.backoff_s: expected (first, cap), both >= 0, got {self.backoff_s!r}")
        if not self.multiplier > 0:
            raise ValueError(f"Intensity.multiplier: expected a number > 0, got {self.multiplier!r}")

    def delay_s(self, restart: int) -> float:
        """The backoff before restart number `restart` (0 for the first one in the window)."""
        first, cap = self.backoff_s
        try:
            delay = first * self.multiplier**restart
        except OverflowError:  # a huge restart count: the cap applies anyway
            return cap
        return min(delay, cap)


class RestartBook:
    """Counts restarts in a sliding window and prices the next one. Pure: no threads, no actors.

    One book per restart budget: a SupervisorActor keeps one for all its children;
    a DagRunActor keeps one per step (see `actors.retry.StepRestartPolicy.new_book`).
    """

    def __init__(self, intensity: Intensity, clock: Clock = time.monotonic) -> None:
        self.intensity = intensity
        self._clock = clock
        self._times: deque[float] = deque()

    def restarts_in_window(self) -> int:
        """How many restarts were recorded within the last `within_s` seconds."""
        self._forget_old(self._clock())
        return len(self._times)

    def record_restart(self) -> float | None:
        """Record a restart now and return its delay in seconds.

        Returns:
            The backoff to wait before restarting, or None when the restart would
            exceed the intensity; then nothing is recorded and the caller gives up.
        """
        now = self._clock()
        self._forget_old(now)
        if len(self._times) >= self.intensity.max_restarts:
            return None
        delay = self.intensity.delay_s(len(self._times))
        self._times.append(now)
        return delay

    def reset(self) -> None:
        """Forget every recorded restart."""
        self._times.clear()

    def _forget_old(self, now: float) -> None:
        while self._times and now - self._times[0] >= self.intensity.within_s:
            self._times.popleft()


@dataclass(frozen=True, slots=True)
class ChildSnapshot:
    """One child as its supervisor sees it."""

    id: str
    state: str  # "running", "restarting", "exited" (not to be restarted) or "stopped"
    actor_urn: str | None  # the running incarnation


@dataclass(frozen=True, slots=True)
class SupervisorSnapshot:
    """A SupervisorActor's state, for the API, `ps` and tests."""

    name: str
    strategy: Strategy
    children: tuple[ChildSnapshot, ...]
    restarts_in_window: int

    def child(self, child_id: str) -> ChildSnapshot:
        """The snapshot of the child named `child_id`."""
        return next(c for c in self.children if c.id == child_id)


def call_later(delay_s: float, callback: Callable[[], None]) -> Cancel:
    """Run `callback` in a daemon timer thread after `delay_s`; return a function that cancels it."""
    timer = threading.Timer(delay_s, callback)
    timer.daemon = True
    timer.start()
    return timer.cancel


class SupervisorActor(SupervisedActor):
    """Starts children in spec order, restarts them by their restart type and the strategy.

    When restarts exceed the intensity it stops every child in reverse order, stops
    itself and reports `ChildExited(abnormal=True)` to its parent: escalation.
    """

    def __init__(
        self,
        specs: Sequence[ChildSpec],
        *,
        strategy: Strategy = Strategy.ONE_FOR_ONE,
        intensity: Intensity = Intensity(),
        name: str = "supervisor",
        parent: pykka.ActorRef[Any] | None = None,
        child_id: str | None = None,
        clock: Clock = time.monotonic,
        timer: Timer = call_later,
    ) -> None:
        specs = check_specs(specs, ChildSpec)  # before claiming: a bad spec list must not become someone's child
        super().__init__(supervisor=parent, child_id=child_id)
        if child_id is None and self._claim is None:
            self.child_id = name  # what a parent given by argument hears about
        self.name = name
        self._label = f"SupervisorActor({name})"
        self._specs = specs
        self._index = {spec.id: i for i, spec in enumerate(specs)}
        self._strategy = strategy
        self._book = RestartBook(intensity, clock)
        self._timer = timer
        self._running: dict[str, pykka.ActorRef[Any]] = {}
        self._pending: dict[str, int] = {}  # child id -> token of the restart that will start it
        self._exited: set[str] = set()  # exited and not to be restarted
        self._timers: dict[int, Cancel] = {}
        self._tokens = itertools.count(1)

    def snapshot(self) -> SupervisorSnapshot:
        """The children's states and the restart count, as a frozen value."""
        return SupervisorSnapshot(
            name=self.name,
            strategy=self._strategy,
            children=tuple(self._child_snapshot(spec.id) for spec in self._specs),
            restarts_in_window=self._book.restarts_in_window(),
        )

    def on_start(self) -> None:
        logger.debug("%s starting %d children", self._label, len(self._specs))
        try:
            for spec in self._specs:
                error = self._start_child(spec)
                if error is not None:
                    raise RuntimeError(f"{self._label}: child {spec.id!r} failed to start: {error}")
        except Exception:
            self._shut_down()
            raise

    def on_receive(self, message: Any) -> Any:
        match message:
            case ChildExited():
                self._on_child_exited(message)
            case RestartChild():
                self._on_restart_child(message)
            case GetSnapshot():
                return self.snapshot()
            case _:
                return super().on_receive(message)
        return None

    def on_stop(self) -> None:
        self._shut_down()

    def on_failure(
        self,
        exception_type: type[BaseException] | None,
        exception_value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self._shut_down()

    def _on_child_exited(self, message: ChildExited) -> None:
        ref = self._running.get(message.child_id)
        if ref is None or message.actor_urn not in (None, ref.actor_urn):
            # An incarnation we stopped ourselves, or one that never finished starting.
            logger.debug("%s: ignoring exit of a former %s", self._label, message.child_id)
            return
        del self._running[message.child_id]
        spec = self._specs[self._index[message.child_id]]
        why = _describe_exit(message)
        if not is_restarted(spec.restart, abnormal=message.abnormal):
            logger.info("%s: child %s %s; %s, not restarting", self._label, spec.id, why, spec.restart.value)
            self._exited.add(spec.id)
            return
        self._restart(spec, why)

    def _on_restart_child(self, message: RestartChild) -> None:
        self._timers.pop(message.token, None)
        for spec in self._specs:
            if self._pending.get(spec.id) != message.token:
                continue  # not part of this restart, or taken over by a later one
            del self._pending[spec.id]
            error = self._start_child(spec)
            if error is None:
                continue
            if spec.restart is Restart.TEMPORARY:
                logger.info("%s: temporary child %s failed to start: %s", self._label, spec.id, error)
                self._exited.add(spec.id)
            else:
                self._restart(spec, f"failed to start: {error}")

    def _restart(self, spec: ChildSpec, why: str) -> None:
        delay = self._book.record_restart()
        if delay is None:
            self._give_up(spec, why)
            return
        group = self._restart_group(spec.id)
        intensity = self._book.intensity
        logger.warning(
            "%s: child %s %s; restarting %s in %.2fs (restart %d of %d within %gs)",
            self._label, spec.id, why, ", ".join(group), delay,
            self._book.restarts_in_window(), intensity.max_restarts, intensity.within_s,
        )
        for child_id in reversed(group):
            if child_id in self._running:
                self._stop_child(child_id)
        token = next(self._tokens)
        for child_id in group:
            if child_id != spec.id and self._spec(child_id).restart is Restart.TEMPORARY:
                self._pending.pop(child_id, None)  # a temporary sibling is stopped, never restarted
                self._exited.add(child_id)
            else:
                self._pending[child_id] = token
        self._schedule(RestartChild(spec.id, token), delay)

    def _restart_group(self, child_id: str) -> list[str]:
        """The children to restart, in start order, when `child_id` must be restarted."""
        live = [spec.id for spec in self._specs if spec.id not in self._exited]
        match self._strategy:
            case Strategy.ONE_FOR_ONE:
                return [child_id]
            case Strategy.ONE_FOR_ALL:
                return live
            case Strategy.REST_FOR_ONE:
                return [c for c in live if self._index[c] >= self._index[child_id]]
        raise AssertionError(self._strategy)  # pragma: no cover

    def _schedule(self, message: RestartChild, delay_s: float) -> None:
        ref = self.actor_ref
        if delay_s <= 0:
            # Through the mailbox even without a delay: a child that keeps failing to
            # start must not recurse, and other messages keep their turn.
            ref.tell(message)
        else:
            self._timers[message.token] = self._timer(delay_s, lambda: tell_if_alive(ref, message))

    def _give_up(self, spec: ChildSpec, why: str) -> None:
        intensity = self._book.intensity
        logger.error(
            "%s: child %s %s; more than %d restarts within %gs, stopping all children and giving up",
            self._label, spec.id, why, intensity.max_restarts, intensity.within_s,
        )
        self._shut_down()
        self.stop_abnormally(f"restart intensity exceeded: child {spec.id} {why}")

    def _start_child(self, spec: ChildSpec) -> str | None:
        """Start one child and wait for its `on_start`. Returns why it failed, or None."""
        with offer_supervision(self.actor_ref, spec.id) as claim:
            try:
                ref = spec.start()
            except Exception as exc:
                logger.warning("%s: starting child %s raised", self._label, spec.id, exc_info=True)
                return describe_exception(exc)
        if claim.urn != ref.actor_urn:
            ref.stop(block=False)
            raise TypeError(
                f"{self._label}: ChildSpec({spec.id!r}).start returned {ref}, which is not the "
                "SupervisedActor it built; its exit would go unnoticed. Derive the child from SupervisedActor."
            )
        if not claim.started.wait(START_TIMEOUT_S):
            ref.stop(block=False)
            return f"on_start did not finish within {START_TIMEOUT_S:g}s"
        if claim.start_error is not None:
            return claim.start_error
        self._running[spec.id] = ref
        logger.debug("%s: started child %s", self._label, spec.id)
        return None

    def _stop_child(self, child_id: str) -> None:
        ref = self._running.pop(child_id)  # popped first: its exit report is now stale
        shutdown_s = self._spec(child_id).shutdown_s
        logger.debug("%s: stopping child %s", self._label, child_id)
        if shutdown_s is None:
            ref.stop(block=False)
            return
        try:
            ref.stop(block=True, timeout=shutdown_s)
        except pykka.Timeout:
            logger.warning("%s: child %s did not stop within %gs; leaving it to finish", self._label, child_id, shutdown_s)

    def _shut_down(self) -> None:
        """Cancel pending restarts and stop every running child, in reverse start order."""
        for cancel in self._timers.values():
            cancel()
        self._timers.clear()
        self._pending.clear()
        for spec in reversed(self._specs):
            if spec.id in self._running:
                self._stop_child(spec.id)

    def _spec(self, child_id: str) -> ChildSpec:
        return self._specs[self._index[child_id]]

    def _child_snapshot(self, child_id: str) -> ChildSnapshot:
        ref = self._running.get(child_id)
        if ref is not None:
            return ChildSnapshot(child_id, "running", ref.actor_urn)
        if child_id in self._pending:
            return ChildSnapshot(child_id, "restarting", None)
        return ChildSnapshot(child_id, "exited" if child_id in self._exited else "stopped", None)


def check_specs(specs: Sequence[Any], kind: type) -> tuple[Any, ...]:
    """The specs as a tuple, each of type `kind`, ids unique; wiring mistakes fail at build time.

    Shared by this supervisor and the OS-process one (`actors.processes`).
    """
    specs = tuple(specs)
    seen: set[str] = set()
    for spec in specs:
        if not isinstance(spec, kind):
            raise TypeError(f"expected {kind.__name__}, got {spec!r}")
        if spec.id in seen:
            raise ValueError(f"duplicate child id {spec.id!r}; child ids must be unique within a supervisor")
        seen.add(spec.id)
    return specs


def is_restarted(restart: Restart, *, abnormal: bool) -> bool:
    """Whether a child with this restart type comes back after a (normal or abnormal) exit."""
    return restart is Restart.PERMANENT or (restart is Restart.TRANSIENT and abnormal)


def _describe_exit(message: ChildExited) -> str:
    return f"{message.reason} ({message.error})" if message.error else message.reason


