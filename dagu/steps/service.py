"""The common frame of the step types that work in this process (http, ssh, sftp, jq, template,
archive, router, mail, docker, postgres, sqlite, redis, s3).

Owns what those executors share: the step's log files and `output:` capture, stop() and the
step timeout (one `Cancel` per attempt), the mapping of how the work ended to an
`AttemptResult`, the "install the extra" error for a missing client library, hiding
passwords in addresses, and reading config values written as text. Each type's own module
decides what to do and how to interrupt it. `CommandExecutor` owns its own plumbing for
processes; nothing here starts a process.
"""

from __future__ import annotations

import dataclasses
import importlib
import logging
import os
import re
import threading
from collections.abc import Callable
from typing import Any

from dagu.steps.base import TIMEOUT_EXIT_CODE, Attempt, AttemptResult

__all__ = [
    "StepExecutor", "ServiceExecutor", "StepLogs", "Cancel", "Cancelled", "StepFailure", "run_cancellable",
    "require", "redact", "config_bool", "config_int", "config_float", "config_seconds",
]  # fmt: skip

logger = logging.getLogger(__name__)

_EXIT_FAILED = 1
_EXIT_STOPPED = 128 + 15  # reported by the in-process types, whatever the stop signal
_LOG_MODE = 0o644
_URL_PASSWORD = re.compile(r"(?P<head>[a-zA-Z][a-zA-Z0-9+.-]*://[^:/@\s]*:)(?P<pw>[^@/\s]*)(?P<at>@)")
_KV_PASSWORD = re.compile(r"(?P<head>\bpassword\s*=\s*)(?P<pw>'[^']*'|\S+)", re.IGNORECASE)


class StepFailure(Exception):
    """The step failed for a reason worth telling the user in one line; `exit_code` is reported."""

    def __init__(self, message: str, exit_code: int = _EXIT_FAILED):
        super().__init__(message)
        self.exit_code = exit_code


class Cancelled(Exception):
    """Raised inside a step's work when stop() or the timeout cut it short."""


class StepLogs:
    """The step's stdout/stderr log files (append mode) and the in-memory copy for `output:`.

    Thread-safe: a reader thread may write stdout while another writes stderr.
    """

    def __init__(self, attempt: Attempt) -> None:
        self._attempt = attempt
        self._lock = threading.Lock()
        self._chunks: list[bytes] = []
        self._size = 0
        self.overflowed = False
        self._out = _open_append(attempt.stdout_path)
        same = os.path.realpath(attempt.stderr_path) == os.path.realpath(attempt.stdout_path)
        self._err = self._out if same else _open_append(attempt.stderr_path)

    def __enter__(self) -> StepLogs:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def close(self) -> None:
        with self._lock:
            if self._out is None:
                return
            if self._err is not self._out:
                self._err.close()
            self._out.close()
            self._out = self._err = None  # type: ignore[assignment]

    def out(self, data: str | bytes) -> None:
        """Append to stdout (and the `output:` capture)."""
        raw = data.encode("utf-8") if isinstance(data, str) else data
        with self._lock:
            if self._out is None:
                return
            self._out.write(raw)
            self._out.flush()
            if self._attempt.capture_output and not self.overflowed:
                if self._size + len(raw) > self._attempt.max_output_size:
                    self.overflowed = True
                    self._chunks.clear()
                else:
                    self._chunks.append(raw)
                    self._size += len(raw)

    def err(self, data: str | bytes) -> None:
        """Append to stderr."""
        raw = data.encode("utf-8") if isinstance(data, str) else data
        with self._lock:
            if self._err is None:
                return
            self._err.write(raw)
            self._err.flush()

    def captured(self) -> str | None:
        if not self._attempt.capture_output or self.overflowed:
            return None
        return b"".join(self._chunks).decode("utf-8", errors="replace").strip()

    @property
    def overflow_error(self) -> str:
        return f"output exceeded max_output_size ({self._attempt.max_output_size} bytes)"

    def result(self, exit_code: int = 0, error: str | None = None, cancel: Cancel | None = None) -> AttemptResult:
        """The AttemptResult for how the work ended; a cancel (stop/timeout) wins over `exit_code`."""
        output = self.captured()
        if cancel is not None and cancel.reason == "timeout":
            text = f"step timed out after {self._attempt.timeout_s:g}s"
            return AttemptResult(TIMEOUT_EXIT_CODE, text, output, timed_out=True)
        if cancel is not None and cancel.reason == "stop":
            return AttemptResult(_EXIT_STOPPED, f"stopped by {cancel.signal_name}" + (f"; {error}" if error else ""), output, stopped=True)
        if exit_code == 0 and self.overflowed:
            return AttemptResult(_EXIT_FAILED, self.overflow_error)
        return AttemptResult(exit_code, error if exit_code else None, output)

    def fail(self, error: str, exit_code: int = _EXIT_FAILED) -> AttemptResult:
        """Write `error` to stderr and return it as the step's failure."""
        self.err(error + "\n")
        return self.result(exit_code, error)


class Cancel:
    """Stop and timeout of one attempt whose work blocks in a library call.

    `stop()` (any thread) and the timeout both set the event and run the registered
    abort callbacks once (close a socket, a channel), which is what unblocks the work.
    After `close()` (the attempt ended) neither does anything.
    """

    def __init__(self, label: str = "", timeout_grace_s: float = 5.0) -> None:
        self._event = threading.Event()
        self._lock = threading.Lock()
        self._aborts: list[Callable[[], None]] = []
        self._label = label
        self._timeout_grace_s = timeout_grace_s
        self._closed = False
        self._timer: threading.Timer | None = None
        self._timeout_s = 0.0
        self.reason: str | None = None  # "stop" | "timeout"
        self.signal_name = "SIGTERM"
        self.grace_s = 5.0

    @property
    def is_set(self) -> bool:
        return self._event.is_set()

    def check(self) -> None:
        """Raise Cancelled when the attempt was stopped or timed out."""
        if self._event.is_set():
            raise Cancelled(self.reason or "stop")

    def on_abort(self, callback: Callable[[], None]) -> None:
        """Run `callback` when the attempt is cancelled (at once if it already is)."""
        with self._lock:
            if self._closed:
                return
            if not self._event.is_set():
                self._aborts.append(callback)
                return
        _call_quietly(callback)

    def arm(self, timeout_s: float) -> None:
        """Time the attempt out (SIGTERM, then the attempt's timeout grace) after `timeout_s`; 0: never."""
        self._timeout_s = timeout_s
        if timeout_s > 0:
            self._timer = threading.Timer(timeout_s, self._fire, args=("timeout", "SIGTERM", self._timeout_grace_s))
            self._timer.name = f"dagu-step-timeout:{self._label}"
            self._timer.daemon = True
            self._timer.start()

    def stop(self, signal_name: str = "SIGTERM", grace_s: float = 5.0) -> None:
        self._fire("stop", signal_name, grace_s)

    def close(self) -> None:
        """The attempt ended: disarm the timeout and wait out an abort it is running."""
        with self._lock:
            self._closed = True
            self._aborts.clear()
        if self._timer is not None:
            self._timer.cancel()
            if self._timer is not threading.current_thread():
                self._timer.join()

    def _fire(self, reason: str, signal_name: str, grace_s: float) -> None:
        with self._lock:
            if self._event.is_set() or self._closed:
                return
            self.reason, self.signal_name, self.grace_s = reason, signal_name, grace_s
            self._event.set()
            aborts, self._aborts = self._aborts, []
        if reason == "timeout":
            logger.info("%s: timed out after %gs", self._label, self._timeout_s)
        else:
            logger.info("%s: stop requested (%s)", self._label, signal_name)
        for callback in aborts:
            _call_quietly(callback)


class StepExecutor:
    """Base of one attempt of an in-process step type.

    `run` opens the step logs, arms the step timeout and calls `work(logs)`, the type's
    own logic, which returns the AttemptResult (usually through `logs.result`). `stop`
    (any thread) and the timeout fire `self._cancel`; the work checks it or registers
    abort callbacks on it.
    """

    def __init__(self, attempt: Attempt) -> None:
        self.attempt = attempt
        self.label = f"{attempt.dag.name}/{attempt.step.name}"
        self._cancel = Cancel(self.label, attempt.timeout_grace_s)
        self._finished = threading.Event()

    def work(self, logs: StepLogs) -> AttemptResult:
        raise NotImplementedError

    @property
    def is_ending(self) -> bool:
        """True once stop() was called or the step timed out."""
        return self._cancel.is_set

    def wait_finished(self, timeout_s: float) -> bool:
        """Block up to `timeout_s` for `run` to return; True if it did."""
        return self._finished.wait(max(timeout_s, 0.0))

    def later(self, delay_s: float, action: Callable[[], Any], name: str) -> None:
        """Call `action()` in a helper thread after `delay_s`, unless the attempt finished first
        (how "SIGKILL after the grace period" is done)."""

        def wait_then_act() -> None:
            if not self.wait_finished(delay_s):
                try:
                    action()
                except Exception as exc:  # the target may be gone already
                    logger.debug("%s: %s failed: %s", self.label, name, exc)

        threading.Thread(target=wait_then_act, name=f"dagu-{name}:{self.label}", daemon=True).start()

    # -- the Executor protocol ---------------------------------------------------

    def run(self) -> AttemptResult:
        try:
            logs = StepLogs(self.attempt)
        except OSError as exc:
            return AttemptResult(_EXIT_FAILED, error=f"cannot open step log: {exc}")
        self._cancel.arm(self.attempt.timeout_s)
        try:
            return self.work(logs)
        finally:
            self._cancel.close()
            self._finished.set()
            logs.close()

    def stop(self, signal_name: str = "SIGTERM", grace_s: float = 5.0) -> None:
        self._cancel.stop(signal_name, grace_s)


class ServiceExecutor(StepExecutor):
    """Base of one attempt of a step that talks to a server (docker, postgres, sqlite, redis, s3).

    Subclasses implement `execute(logs) -> exit code` (raise StepFailure for a clear
    failure) and `interrupt(signal_name, grace_s)`, which must make `execute` return
    soon; it is called from another thread on stop() or when the step times out.
    A failure's text is written to stderr; a stop before `run` skips the work.
    """

    type_name = "service"

    def __init__(self, attempt: Attempt) -> None:
        super().__init__(attempt)
        self.config: dict[str, Any] = dict(attempt.config)

    def execute(self, logs: StepLogs) -> int:
        raise NotImplementedError

    def interrupt(self, signal_name: str, grace_s: float) -> None:
        raise NotImplementedError

    def run(self) -> AttemptResult:
        if self._cancel.is_set:
            return AttemptResult(_EXIT_FAILED, error=f"stopped by {self._cancel.signal_name} before start", stopped=True)
        self._cancel.on_abort(self._interrupt_safely)
        return super().run()

    def work(self, logs: StepLogs) -> AttemptResult:
        error = None
        try:
            code = self.execute(logs)
        except StepFailure as exc:
            code, error = exc.exit_code, str(exc)
        except Exception as exc:  # a client library error we did not anticipate: still the step's failure
            if not self.is_ending:
                logger.debug("%s: %s", self.label, exc, exc_info=True)
            code, error = _EXIT_FAILED, f"{self.type_name}: {type(exc).__name__}: {exc}"
        if self._cancel.reason == "timeout":
            result = logs.result(cancel=self._cancel)
            logs.err(f"{result.error}\n")
            return result
        if self._cancel.reason == "stop":
            # The work's own exit code is kept: a container killed by the signal reports it.
            return dataclasses.replace(logs.result(code, error, self._cancel), exit_code=code or _EXIT_FAILED)
        if error:
            logs.err(error.rstrip("\n") + "\n")
        elif code:
            error = f"exit status {code}"
        if logs.overflowed:
            return AttemptResult(code or _EXIT_FAILED, logs.overflow_error)
        return AttemptResult(code, error, logs.captured())

    def _interrupt_safely(self) -> None:
        try:
            self.interrupt(self._cancel.signal_name, self._cancel.grace_s)
        except Exception as exc:  # the work may have just finished; nothing left to interrupt
            logger.warning("%s: interrupting failed: %s", self.label, exc)


def run_cancellable(work: Callable[[], Any], cancel: Cancel, name: str) -> Any:
    """Run `work` in a helper thread; return its value, or raise Cancelled when cancelled first.

    Used where the library call cannot be interrupted (a DNS lookup, an HTTP read): the
    attempt ends at once and the helper thread is left to finish on its own (daemon).
    """
    box: dict[str, Any] = {}
    done = threading.Event()

    def target() -> None:
        try:
            box["value"] = work()
        except BaseException as exc:  # handed back to the caller's thread
            box["error"] = exc
        finally:
            done.set()

    cancel.on_abort(done.set)
    threading.Thread(target=target, name=name, daemon=True).start()
    done.wait()
    if "value" not in box and "error" not in box:
        raise Cancelled(cancel.reason or "stop")
    if cancel.is_set and "error" in box:
        raise Cancelled(cancel.reason or "stop")
    if "error" in box:
        raise box["error"]
    return box["value"]


def require(module: str, step_type: str, package: str) -> Any:
    """Import a client library, or fail the step naming the extra to install."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise StepFailure(
            f"the {step_type} step needs the {package} package, which is not installed ({exc}); "
            f"install it with: pip install 'dagu[steps]'"
        ) from exc


def redact(text: str) -> str:
    """`text` with passwords in URLs (`user:pw@`) and `password=...` pairs masked."""
    text = _URL_PASSWORD.sub(lambda m: f"{m['head']}***{m['at']}", text)
    return _KV_PASSWORD.sub(lambda m: f"{m['head']}***", text)


def config_bool(value: Any, default: bool = False) -> bool:
    """A config flag that may arrive as a bool or, after expansion, as text."""
    if value is None or value == "":
        return default
    if isinstance(value, bool):
        return value
    return str(value).strip().lower() in ("1", "true", "yes", "on")


def config_int(value: Any, default: int, what: str) -> int:
    """A whole number that may arrive as text; StepFailure names `what` when it is not one."""
    if value is None or value == "":
        return default
    try:
        return int(str(value).strip()) if not isinstance(value, int) else value
    except ValueError:
        raise StepFailure(f"{what}: expected a whole number, got {value!r}") from None


def config_float(value: Any, default: float, what: str) -> float:
    """A number that may arrive as text; StepFailure names `what` when it is not one."""
    if value is None or value == "":
        return default
    try:
        return float(value)
    except (TypeError, ValueError):
        raise StepFailure(f"{what}: expected a number, got {value!r}") from None


def config_seconds(value: Any, default: float = 0.0) -> float:
    """A duration: a number of seconds, or text such as "30", "1.5s", "500ms", "2m".

    Raises:
        ValueError: not a duration (the caller adds which key it was).
    """
    if value is None or value == "":
        return default
    if isinstance(value, bool):
        raise ValueError(f"expected a duration, got {value!r}")
    if isinstance(value, (int, float)):
        return float(value)
    text = str(value).strip()
    for suffix, factor in (("ms", 0.001), ("s", 1.0), ("m", 60.0), ("h", 3600.0)):
        if text.endswith(suffix) and text[: -len(suffix)].replace(".", "", 1).isdigit():
            return float(text[: -len(suffix)]) * factor
    try:
        return float(text)
    except ValueError:
        raise ValueError(f"expected a duration such as 30 or 1.5s, got {value!r}") from None


def _open_append(path: str):
    parent = os.path.dirname(path)
    if parent:
        os.makedirs(parent, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC, _LOG_MODE)
    return os.fdopen(fd, "ab", buffering=0)


def _call_quietly(callback: Callable[[], None]) -> None:
    try:
        callback()
    except Exception:  # an abort is best effort: the socket may already be closed
        logger.debug("abort callback failed", exc_info=True)
