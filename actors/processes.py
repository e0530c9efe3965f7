"""Supervision of OS processes: the `dagu start-all` supervisor of server, scheduler and coordinator.

Owns ProcessSpec, ProcessSupervisor (start in order, restart with backoff, stop in
reverse order on SIGTERM/SIGINT), the spawned child's entry point `run_child`, and
`describe_exit`. It does not know what the children do: each is a "module:function"
string imported in the child. Actor supervision is `actors/supervisor.py`, whose
Restart, Intensity and RestartBook are reused here.
"""

from __future__ import annotations

import importlib
import logging
import multiprocessing
import os
import pickle
import re
import signal
import socket
import sys
import threading
import time
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from multiprocessing.connection import wait
from multiprocessing.process import BaseProcess
from typing import Any

from actors.supervisor import Clock, Intensity, Restart, RestartBook, check_specs, is_restarted

__all__ = [
    "CONFIG_ERROR_EXIT",
    "DEFAULT_INTENSITY",
    "LOG_LEVEL_ENV",
    "RESTARTS_EXCEEDED_EXIT",
    "ProcessSnapshot",
    "ProcessSpec",
    "ProcessSupervisor",
    "ProcessSupervisorSnapshot",
    "describe_exit",
    "run_child",
]

logger = logging.getLogger(__name__)

CONFIG_ERROR_EXIT = 78
"""A child exiting with this code (EX_CONFIG) is not restarted; the supervisor stops and returns it."""

RESTARTS_EXCEEDED_EXIT = 1
"""What `ProcessSupervisor.run` returns when restarts exceed its intensity."""

LOG_LEVEL_ENV = "DAGU_LOG_LEVEL"
"""The child's log level when the supervisor is given none."""

DEFAULT_INTENSITY = Intensity(max_restarts=5, within_s=60.0, backoff_s=(0.5, 10.0))

STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)

_TARGET = re.compile(r"^[A-Za-z_]\w*(\.[A-Za-z_]\w*)*:[A-Za-z_]\w*$")
_SIGNAL_HINTS = {signal.SIGKILL: "possibly out of memory"}
_LOG_FORMAT = "%(asctime)s %(levelname)s [%(process)d] %(name)s: %(message)s"


@dataclass(frozen=True, slots=True)
class ProcessSpec:
    """How the process supervisor starts, restarts and stops one child process."""

    id: str
    target: str  # "module:function", imported in the child; returns the exit code
    args: tuple[Any, ...] = ()  # picklable: they cross the spawn boundary
    restart: Restart = Restart.PERMANENT
    shutdown_s: float = 5.0  # grace between SIGTERM and SIGKILL
    title: str | None = None  # process title, e.g. "dagu: scheduler"

    def __post_init__(self) -> None:
        where = f"ProcessSpec({self.id!r})"
        if not isinstance(self.id, str) or not self.id:
            raise ValueError(f"ProcessSpec.id: expected a non-empty string, got {self.id!r}")
        if not isinstance(self.target, str) or not _TARGET.match(self.target):
            raise ValueError(f'{where}.target: expected "package.module:function", got {self.target!r}')
        if not isinstance(self.args, tuple):
            raise TypeError(f"{where}.args: expected a tuple, got {type(self.args).__name__}")
        try:
            pickle.dumps(self.args)
        except Exception as exc:  # caught at startup, not when a restart happens at 3 a.m.
            raise TypeError(f"{where}.args: must be picklable to reach a spawned child: {exc}") from exc
        if not isinstance(self.restart, Restart):
            raise TypeError(f"{where}.restart: expected a Restart, got {self.restart!r}")
        is_number = isinstance(self.shutdown_s, (int, float)) and not isinstance(self.shutdown_s, bool)
        if not is_number or not self.shutdown_s >= 0:
            raise ValueError(f"{where}.shutdown_s: expected a number >= 0, got {self.shutdown_s!r}")


@dataclass(frozen=True, slots=True)
class ProcessSnapshot:
    """One child process as its supervisor sees it."""

    id: str
    pid: int | None  # the running incarnation
    state: str  # "running", "restarting", "exited" (not to be restarted) or "stopped"
    restarts: int  # since the supervisor started


@dataclass(frozen=True, slots=True)
class ProcessSupervisorSnapshot:
    """A ProcessSupervisor's state, for `ps`, the API and tests."""

    name: str
    children: tuple[ProcessSnapshot, ...]
    restarts_in_window: int
    is_stopping: bool

    def child(self, child_id: str) -> ProcessSnapshot:
        """The snapshot of the child named `child_id`."""
        return next(c for c in self.children if c.id == child_id)


def describe_exit(exitcode: int | None) -> str:
    """Turn a multiprocessing exit code (negative: killed by that signal) into words."""
    if exitcode is None:
        return "still running"
    if exitcode >= 0:
        return f"exited {exitcode} (config error)" if exitcode == CONFIG_ERROR_EXIT else f"exited {exitcode}"
    try:
        sig = signal.Signals(-exitcode)
    except ValueError:
        return f"killed by signal {-exitcode}"
    hint = _SIGNAL_HINTS.get(sig)
    return f"killed by {sig.name} ({hint})" if hint else f"killed by {sig.name}"


def run_child(target: str, args: tuple[Any, ...], title: str | None, log_level: str | None) -> None:
    """The spawned child's entry: title, logging, default signals, then `target(*args)`.

    The target's return value is the exit code (None is 0). A target that cannot be
    imported is a wiring mistake that no restart fixes, so it exits CONFIG_ERROR_EXIT.
    """
    if title:
        _set_title(title)
    _configure_logging(log_level)
    # Whatever the parent ignored (nohup, a shell) survives exec; the target installs
    # its own handlers for a graceful stop, anything else gets the default action.
    for sig in STOP_SIGNALS:
        signal.signal(sig, signal.SIG_DFL)
    module_name, _, func_name = target.partition(":")
    try:
        func = getattr(importlib.import_module(module_name), func_name)
    except (ImportError, AttributeError) as exc:
        logger.error("cannot load child target %s: %s", target, exc)
        sys.exit(CONFIG_ERROR_EXIT)
    sys.exit(func(*args))


class ProcessSupervisor:
    """Starts child processes in spec order, restarts them with backoff, stops them in reverse.

    `run()` blocks the main thread: it waits on every child's sentinel and on a
    wake-up socket written by the signal machinery, never on a fixed tick.
    """

    def __init__(
        self,
        specs: Sequence[ProcessSpec],
        *,
        intensity: Intensity = DEFAULT_INTENSITY,
        name: str = "start-all",
        clock: Clock = time.monotonic,
        reraise: bool = True,
        log_level: str | None = None,
    ) -> None:
        """Check the specs and prepare; nothing starts before `run()`.

        Args:
            specs: the children, in start order; ids must be unique.
            intensity: the restart budget and backoff, shared by all children.
            clock: monotonic seconds; the waits are real time, so it must keep pace.
            reraise: after a signal-initiated shutdown, die by that signal (so the
                parent sees the true cause) instead of returning 128 + signal.
            log_level: the children's log level; None reads LOG_LEVEL_ENV in the child.
        """
        if log_level is not None and not isinstance(logging.getLevelName(log_level.upper()), int):
            raise ValueError(f"ProcessSupervisor.log_level: expected DEBUG, INFO, WARNING or ERROR, got {log_level!r}")
        self.name = name
        self._label = f"ProcessSupervisor({name})"
        self._specs = check_specs(specs, ProcessSpec)
        self._book = RestartBook(intensity, clock)
        self._book_lock = threading.Lock()  # never taken in the signal handler
        self._clock = clock
        self._reraise = reraise
        self._log_level = log_level
        self._context = multiprocessing.get_context("spawn")
        self._running: dict[str, BaseProcess] = {}
        self._due: dict[str, float] = {}  # child id -> clock time of its restart
        self._exited: set[str] = set()  # exited and not to be restarted
        self._restarts = dict.fromkeys((spec.id for spec in self._specs), 0)
        self._signals: deque[int] = deque()  # appended by the signal handler, nothing else
        self._stop_signal: int | None = None
        self._is_stopping = False
        self._hurry = False  # a second stop signal: SIGKILL without grace
        self._wake_r: socket.socket | None = None

    def snapshot(self) -> ProcessSupervisorSnapshot:
        """The children's states and restart counts, as a frozen value; callable from any thread."""
        with self._book_lock:
            in_window = self._book.restarts_in_window()
        return ProcessSupervisorSnapshot(
            name=self.name,
            children=tuple(self._child_snapshot(spec.id) for spec in self._specs),
            restarts_in_window=in_window,
            is_stopping=self._is_stopping or self._stop_signal is not None,
        )

    def run(self) -> int:
        """Supervise until a stop signal, a config error, or too many restarts; then stop all.

        Returns:
            0 when no child is left to supervise, CONFIG_ERROR_EXIT after a child's
            config error, RESTARTS_EXCEEDED_EXIT when restarts exceed the intensity,
            128 + signal after a signal (only if `reraise` is off: otherwise the
            process dies by that signal).

        Raises:
            RuntimeError: when not called from the main thread (signals need it).
        """
        if threading.current_thread() is not threading.main_thread():
            raise RuntimeError(f"{self._label}.run() must be called from the main thread, to handle signals")
        restore = self._capture_signals()
        try:
            code = self._supervise()
        finally:
            self._stop_all()
            restore()
        if self._stop_signal is not None and self._reraise:
            logger.info("%s: stopped by %s; raising it again", self._label, signal.Signals(self._stop_signal).name)
            signal.signal(self._stop_signal, signal.SIG_DFL)
            os.kill(os.getpid(), self._stop_signal)
        return code

    def _supervise(self) -> int:
        logger.info("%s: starting %d children", self._label, len(self._specs))
        for spec in self._specs:
            if self._signals:
                break  # a stop signal during startup: start nothing more
            self._start(spec)
        while True:
            sig = self._take_stop_signal()
            if sig is not None:
                return 128 + sig
            code = self._reap_exited()
            if code is not None:
                return code
            self._start_due()
            if not self._running and not self._due:
                logger.info("%s: no child left to supervise", self._label)
                return 0
            self._wait([proc.sentinel for proc in self._running.values()], self._next_timeout())

    def _take_stop_signal(self) -> int | None:
        """Consume recorded signals; return the stop signal once one has arrived."""
        while self._signals:
            sig = self._signals.popleft()
            if self._stop_signal is None and not self._is_stopping:
                self._stop_signal = sig
                logger.info("%s: got %s; stopping children in reverse order", self._label, signal.Signals(sig).name)
            elif not self._hurry:
                # A second signal, or one while stopping for a config error or too many
                # restarts: the operator wants it over. The exit code stays what it was.
                self._hurry = True
                logger.warning(
                    "%s: got %s while stopping; killing the rest without grace", self._label, signal.Signals(sig).name
                )
        return self._stop_signal

    def _reap_exited(self) -> int | None:
        """Handle every child that exited; return an exit code when the supervisor must stop."""
        for spec in self._specs:
            proc = self._running.get(spec.id)
            if proc is None or not _has_exited(proc):
                continue
            del self._running[spec.id]
            proc.join()
            exitcode, pid = proc.exitcode, proc.pid
            proc.close()
            code = self._on_exit(spec, pid, exitcode)
            if code is not None:
                return code
        return None

    def _on_exit(self, spec: ProcessSpec, pid: int | None, exitcode: int | None) -> int | None:
        why = describe_exit(exitcode)
        if exitcode == CONFIG_ERROR_EXIT:
            logger.error("%s: child %s [%s] %s; not restarting, stopping all children", self._label, spec.id, pid, why)
            return CONFIG_ERROR_EXIT
        if not is_restarted(spec.restart, abnormal=exitcode != 0):
            logger.info("%s: child %s [%s] %s; %s, not restarting", self._label, spec.id, pid, why, spec.restart.value)
            self._exited.add(spec.id)
            return None
        with self._book_lock:  # snapshot() may read the book from another thread
            delay = self._book.record_restart()
            in_window = self._book.restarts_in_window()
        intensity = self._book.intensity
        if delay is None:
            logger.error(
                "%s: child %s [%s] %s; more than %d restarts within %gs, stopping all children and giving up",
                self._label, spec.id, pid, why, intensity.max_restarts, intensity.within_s,
            )
            return RESTARTS_EXCEEDED_EXIT
        logger.warning(
            "%s: child %s [%s] %s; restarting in %.2fs (restart %d of %d within %gs)",
            self._label, spec.id, pid, why, delay,
            in_window, intensity.max_restarts, intensity.within_s,
        )
        self._due[spec.id] = self._clock() + delay
        return None

    def _start_due(self) -> None:
        now = self._clock()
        for spec in self._specs:
            due = self._due.get(spec.id)
            if due is not None and due <= now:
                del self._due[spec.id]
                self._restarts[spec.id] += 1
                self._start(spec)

    def _start(self, spec: ProcessSpec) -> None:
        proc = self._context.Process(
            target=run_child,
            args=(spec.target, spec.args, spec.title, self._log_level),
            name=f"{self.name}:{spec.id}",
        )
        # A failure to spawn (EAGAIN, ENOMEM) propagates: run() stops the others on the way out.
        proc.start()
        self._running[spec.id] = proc
        logger.info("%s: started child %s [%s] (%s)", self._label, spec.id, proc.pid, spec.title or spec.target)

    def _next_timeout(self) -> float | None:
        if not self._due:
            return None
        return max(0.0, min(self._due.values()) - self._clock())

    def _wait(self, sentinels: list[int], timeout: float | None) -> list[Any]:
        """Block until a sentinel is ready, a signal arrives or `timeout` passes."""
        assert self._wake_r is not None
        ready = wait([*sentinels, self._wake_r], timeout)
        if self._wake_r in ready:
            _drain(self._wake_r)
        return ready

    def _stop_all(self) -> None:
        """Cancel pending restarts and stop every running child, in reverse start order."""
        self._is_stopping = True
        self._due.clear()
        for spec in reversed(self._specs):
            proc = self._running.pop(spec.id, None)
            if proc is not None:
                self._stop_child(spec, proc)

    def _stop_child(self, spec: ProcessSpec, proc: BaseProcess) -> None:
        pid, grace_s = proc.pid, spec.shutdown_s
        if not self._hurry and not _has_exited(proc):
            logger.info("%s: stopping child %s [%s] with SIGTERM (grace %gs)", self._label, spec.id, pid, grace_s)
            proc.terminate()
            self._wait_exit(proc, grace_s)
        if not _has_exited(proc):
            if self._hurry:
                logger.info("%s: killing child %s [%s] with SIGKILL, no grace", self._label, spec.id, pid)
            else:
                logger.warning("%s: child %s [%s] did not stop within %gs; SIGKILL", self._label, spec.id, pid, grace_s)
            proc.kill()  # a no-op if it exited meanwhile: it is not reaped yet, so the pid is still ours
        proc.join()
        logger.info("%s: child %s [%s] %s", self._label, spec.id, pid, describe_exit(proc.exitcode))
        proc.close()

    def _wait_exit(self, proc: BaseProcess, grace_s: float) -> None:
        """Wait up to `grace_s` for `proc` to exit; a second stop signal cuts the wait short."""
        deadline = self._clock() + grace_s
        while not self._hurry:
            remaining = deadline - self._clock()
            if remaining <= 0 or proc.sentinel in self._wait([proc.sentinel], remaining):
                return
            self._take_stop_signal()

    def _capture_signals(self) -> Any:
        """Install the recording handlers and the wake-up socket; return a function that undoes it."""
        wake_r, wake_w = socket.socketpair()
        for sock in (wake_r, wake_w):
            sock.setblocking(False)
        self._wake_r = wake_r
        old_fd = signal.set_wakeup_fd(wake_w.fileno(), warn_on_full_buffer=False)
        old_handlers = {sig: signal.signal(sig, self._on_signal) for sig in STOP_SIGNALS}

        def restore() -> None:
            for sig, handler in old_handlers.items():
                signal.signal(sig, handler)
            signal.set_wakeup_fd(old_fd)
            wake_r.close()
            wake_w.close()
            self._wake_r = None

        return restore

    def _on_signal(self, signum: int, frame: Any) -> None:
        # Only record: no logging, no locks. The wake-up fd has already woken the loop.
        self._signals.append(signum)

    def _child_snapshot(self, child_id: str) -> ProcessSnapshot:
        restarts = self._restarts[child_id]
        proc = self._running.get(child_id)
        if proc is not None:
            return ProcessSnapshot(child_id, proc.pid, "running", restarts)
        if child_id in self._due:
            return ProcessSnapshot(child_id, None, "restarting", restarts)
        return ProcessSnapshot(child_id, None, "exited" if child_id in self._exited else "stopped", restarts)


def _has_exited(proc: BaseProcess) -> bool:
    # The sentinel, not is_alive(): a dying child closes its fds (firing the sentinel)
    # a moment before waitpid(WNOHANG) can reap it, so is_alive() would still say yes
    # and the loop would spin on a ready sentinel. Once it fired, join() is prompt.
    return bool(wait([proc.sentinel], 0))


def _drain(sock: socket.socket) -> None:
    try:
        while sock.recv(4096):
            pass
    except BlockingIOError:
        pass


def _set_title(title: str) -> None:
    try:
        import setproctitle
    except ImportError:  # optional: only `ps` output suffers
        return
    setproctitle.setproctitle(title)


def _configure_logging(log_level: str | None) -> None:
    level = (log_level or os.environ.get(LOG_LEVEL_ENV) or "INFO").upper()
    known = isinstance(logging.getLevelName(level), int)
    # A spawned child starts with no handlers; this is its own process, not a library import.
    logging.basicConfig(stream=sys.stderr, level=level if known else logging.INFO, format=_LOG_FORMAT)
    if not known:
        logger.warning("%s=%r is not a log level; using INFO", LOG_LEVEL_ENV, level)
