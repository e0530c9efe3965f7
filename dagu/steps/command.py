"""The default step type: run a step's commands or script as local shell processes.

Owns one attempt's processes from start to reaping: argv forms (dag-spec 3.4), log
files, output capture (3.7), the step timeout and stop signals (3.14). It does not
decide the shell, the environment or the working directory (the engine resolves
those into the `Attempt`), nor retries (a retry is a new attempt). POSIX only.

Exit codes follow the shell convention: a process killed by signal N reports
128+N (137 for SIGKILL) and `AttemptResult.killed_by` names the signal; a timeout
reports 124 whatever the process did on its way out.
"""

from __future__ import annotations

import logging
import os
import selectors
import shutil
import signal
import subprocess
import tempfile
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass

from dagu.steps.base import TIMEOUT_EXIT_CODE, Attempt, AttemptResult
from dagu.steps.shell import command_argv, script_argv, script_suffix

__all__ = ["CommandExecutor"]

logger = logging.getLogger(__name__)

# After the main process exits, how long its output pipe may stay open (held by a
# background grandchild) before we stop reading. Go's exec calls this WaitDelay.
_PIPE_DRAIN_S = 0.5
_READ_CHUNK = 65536
_LOG_MODE = 0o644
_EXIT_START_FAILED = 1


class CommandExecutor:
    """One attempt of a command or script step. `run` blocks; `stop` may come from any thread."""

    def __init__(self, attempt: Attempt) -> None:
        self._attempt = attempt
        self._label = f"{attempt.dag.name}/{attempt.step.name}"
        # Guards everything below; the run thread sleeps on it while a process runs,
        # and stop() / the reaper thread wake it up.
        self._cond = threading.Condition()
        self._ending: _Ending | None = None
        self._deadline: float | None = None
        self._proc_exited = False
        self._finished = False

    def run(self) -> AttemptResult:
        """Run every invocation of the step in order and report how the attempt ended."""
        with self._cond:
            if self._ending is not None:
                return _stopped_before_start(self._ending.signum)
            if self._attempt.timeout_s > 0:
                self._deadline = time.monotonic() + self._attempt.timeout_s
        try:
            return self._run_with_files()
        finally:
            with self._cond:
                self._finished = True

    def stop(self, signal_name: str = "SIGTERM", grace_s: float = 5.0) -> None:
        """Send `signal_name` to the step's process group, then SIGKILL after `grace_s`.

        Idempotent and safe before, during or after `run`. A later call with a shorter
        grace brings the SIGKILL forward (a second Ctrl-C skips the wait).

        Raises:
            ValueError: `signal_name` is not a signal name such as "SIGINT".
        """
        signum = _signal_number(signal_name)
        with self._cond:
            if self._finished:
                return
            kill_at = time.monotonic() + max(grace_s, 0.0)
            if self._ending is None:
                logger.debug("%s: stop requested (%s, grace %.1fs)", self._label, signal_name, grace_s)
                self._ending = _Ending("stop", signum, kill_at)
            elif kill_at < self._ending.kill_at:
                self._ending.kill_at = kill_at
            self._cond.notify_all()

    def _run_with_files(self) -> AttemptResult:
        attempt = self._attempt
        script_dir = None
        try:
            out_fd, err_fd = _open_logs(attempt.stdout_path, attempt.stderr_path)
        except OSError as exc:
            return AttemptResult(_EXIT_START_FAILED, error=f"cannot open step log: {exc}")
        try:
            if attempt.script is not None:
                script_dir = tempfile.mkdtemp(prefix="dagu-script-")
            plan = _plan(attempt, script_dir)
            if isinstance(plan, AttemptResult):
                return plan
            return self._run_plan(plan, out_fd, err_fd)
        finally:
            os.close(out_fd)
            if err_fd != out_fd:
                os.close(err_fd)
            if script_dir is not None:
                shutil.rmtree(script_dir, ignore_errors=True)

    def _run_plan(self, plan: list[list[str]], out_fd: int, err_fd: int) -> AttemptResult:
        capture = _Capture(self._attempt.max_output_size) if self._attempt.capture_output else None
        returncode = 0
        for index, argv in enumerate(plan):
            with self._cond:
                if self._ending is not None and index == 0:
                    return _stopped_before_start(self._ending.signum)
                if self._ending is not None:
                    break
            started = self._start(argv, out_fd, err_fd, capture)
            if isinstance(started, AttemptResult):
                return started
            returncode = self._wait(*started)
            if returncode != 0:
                break
        with self._cond:
            ending = self._ending
        return self._result(returncode, ending, capture)

    def _start(
        self, argv: list[str], out_fd: int, err_fd: int, capture: _Capture | None
    ) -> tuple[subprocess.Popen[bytes], _Pump | None] | AttemptResult:
        attempt = self._attempt
        pipe_r = pipe_w = -1
        if capture is not None:
            pipe_r, pipe_w = os.pipe()
        try:
            proc = subprocess.Popen(
                argv,
                cwd=attempt.cwd,
                env=dict(attempt.env),
                stdin=subprocess.DEVNULL,
                stdout=pipe_w if capture is not None else out_fd,
                stderr=err_fd,
                start_new_session=True,  # own process group, so killpg reaches grandchildren
            )
        except OSError as exc:
            if capture is not None:
                os.close(pipe_r)
            return _start_failure(argv, exc)
        finally:
            if capture is not None:
                os.close(pipe_w)  # the child holds its own copy; EOF comes when all writers exit
        logger.debug("%s: started %s [%d]", self._label, argv[0], proc.pid)
        pump = None
        if capture is not None:
            pump = _Pump(pipe_r, out_fd, capture, name=f"dagu-step-output-{proc.pid}")
        return proc, pump

    def _wait(self, proc: subprocess.Popen[bytes], pump: _Pump | None) -> int:
        """Block until `proc` exits, delivering timeout and stop signals meanwhile."""
        with self._cond:
            self._proc_exited = False
        reaper = threading.Thread(target=self._reap, args=(proc,), name=f"dagu-step-wait-{proc.pid}", daemon=True)
        reaper.start()
        with self._cond:
            while not self._proc_exited:
                self._cond.wait(self._deliver_signals(proc.pid))
            ending = self._ending
        reaper.join()
        if ending is not None:
            # The leader is gone; whatever is left of its group (a grandchild that
            # trapped the stop signal) is killed now rather than leaked.
            _killpg(proc.pid, signal.SIGKILL)
        if pump is not None:
            pump.finish(_PIPE_DRAIN_S)
        logger.debug("%s: [%d] %s", self._label, proc.pid, _describe_exit(proc.returncode))
        return proc.returncode

    def _reap(self, proc: subprocess.Popen[bytes]) -> None:
        # A blocking waitpid in its own thread: the run thread sleeps on the condition
        # instead of polling Popen.wait(timeout), which naps in 50 ms steps.
        proc.wait()
        with self._cond:
            self._proc_exited = True
            self._cond.notify_all()

    def _deliver_signals(self, pgid: int) -> float | None:
        """Send whatever signal is due to group `pgid`; return seconds until the next one is.

        Called with the condition held.
        """
        now = time.monotonic()
        if self._ending is None and self._deadline is not None and now >= self._deadline:
            logger.info("%s: timed out after %gs, sending SIGTERM", self._label, self._attempt.timeout_s)
            self._ending = _Ending("timeout", signal.SIGTERM, now + max(self._attempt.timeout_grace_s, 0.0))
        ending = self._ending
        if ending is None:
            return None if self._deadline is None else self._deadline - now
        if not ending.signalled:
            ending.signalled = True
            _killpg(pgid, ending.signum)
        if ending.killed:
            return None
        if now >= ending.kill_at:
            logger.info("%s: [%d] still running after grace, sending SIGKILL", self._label, pgid)
            ending.killed = True
            _killpg(pgid, signal.SIGKILL)
            return None
        return ending.kill_at - now

    def _result(self, returncode: int, ending: _Ending | None, capture: _Capture | None) -> AttemptResult:
        killed_by = _signal_name(-returncode) if returncode < 0 else None
        exit_code = 128 - returncode if returncode < 0 else returncode
        output = capture.text() if capture is not None and not capture.overflowed else None
        if ending is not None and ending.reason == "timeout":
            error = f"step timed out after {self._attempt.timeout_s:g}s"
            return AttemptResult(TIMEOUT_EXIT_CODE, error, output, timed_out=True, killed_by=killed_by)
        if ending is not None:
            error = f"stopped by {ending.signum.name}; {_describe_exit(returncode)}"
            return AttemptResult(exit_code, error, output, stopped=True, killed_by=killed_by)
        if capture is not None and capture.overflowed:
            error = f"output exceeded max_output_size ({capture.limit} bytes)"
            return AttemptResult(exit_code or 1, error, None, killed_by=killed_by)
        error = _describe_exit(returncode) if returncode else None
        return AttemptResult(exit_code, error, output, killed_by=killed_by)


@dataclass(slots=True)
class _Ending:
    """Why the attempt is being cut short, and when its group gets SIGKILL."""

    reason: str  # "stop" | "timeout"
    signum: signal.Signals
    kill_at: float  # time.monotonic()
    signalled: bool = False
    killed: bool = False


class _Capture:
    """Stdout kept in memory for `output:`, up to `limit` bytes."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.overflowed = False
        self._chunks: list[bytes] = []
        self._size = 0

    def add(self, data: bytes) -> None:
        if self.overflowed:
            return
        if self._size + len(data) > self.limit:
            self.overflowed = True
            self._chunks.clear()
            return
        self._chunks.append(data)
        self._size += len(data)

    def text(self) -> str:
        return b"".join(self._chunks).decode("utf-8", errors="replace").strip()


class _Pump:
    """A thread copying a child's stdout pipe to the log file and into a `_Capture`.

    Owns `read_fd` and closes it. The copy continues past an overflow so the log stays
    complete and the child never blocks on a full pipe.
    """

    def __init__(self, read_fd: int, log_fd: int, capture: _Capture, name: str) -> None:
        self._read_fd = read_fd
        self._log_fd = log_fd
        self._capture = capture
        self._wake_r, self._wake_w = os.pipe()
        self._thread = threading.Thread(target=self._copy, name=name, daemon=True)
        self._thread.start()

    def finish(self, drain_s: float) -> None:
        """Wait up to `drain_s` for end of file, then stop reading and close the pipe."""
        self._thread.join(drain_s)
        if self._thread.is_alive():
            # A process outside the killed group still holds the write end; a read on a
            # pipe cannot be interrupted by closing it, so wake the selector instead.
            os.write(self._wake_w, b"x")
            self._thread.join()
        for fd in (self._read_fd, self._wake_r, self._wake_w):
            os.close(fd)

    def _copy(self) -> None:
        log_ok = True
        with selectors.DefaultSelector() as sel:
            sel.register(self._read_fd, selectors.EVENT_READ)
            sel.register(self._wake_r, selectors.EVENT_READ)
            while True:
                ready = {key.fd for key, _ in sel.select()}
                if self._read_fd not in ready:
                    return
                data = os.read(self._read_fd, _READ_CHUNK)
                if not data:
                    return
                if log_ok:
                    log_ok = _write_log(self._log_fd, data)
                self._capture.add(data)


def _plan(attempt: Attempt, script_dir: str | None) -> list[list[str]] | AttemptResult:
    """The argv of every invocation, in order; an AttemptResult when the step is malformed."""
    shell = attempt.shell
    packages = attempt.step.shell_packages
    if attempt.script is None:
        return [command_argv(shell, text, packages) for text in attempt.commands]
    if len(attempt.commands) > 1:
        error = f"a step with a script takes one interpreter command, got {len(attempt.commands)}"
        return AttemptResult(_EXIT_START_FAILED, error=error)
    assert script_dir is not None
    path = _write_script(script_dir, attempt.script, script_suffix(shell))
    has_shebang = attempt.script.startswith("#!")
    interpreter = attempt.commands[0] if attempt.commands else None
    if has_shebang and interpreter is None:
        os.chmod(path, 0o700)
    return [script_argv(shell, path, interpreter=interpreter, has_shebang=has_shebang, shell_packages=packages)]


def _write_script(script_dir: str, text: str, suffix: str) -> str:
    path = os.path.join(script_dir, "script" + suffix)
    with open(path, "w", encoding="utf-8") as f:
        f.write(text)
    return path


def _open_logs(stdout_path: str, stderr_path: str) -> tuple[int, int]:
    """Append-mode fds for both streams; one shared fd when they name the same file."""
    out_fd = _open_append(stdout_path)
    if os.path.realpath(stderr_path) == os.path.realpath(stdout_path):
        return out_fd, out_fd
    try:
        return out_fd, _open_append(stderr_path)
    except OSError:
        os.close(out_fd)
        raise


def _open_append(path: str) -> int:
    parent = os.path.dirname(path)
    if parent:
        os.makedirs(parent, exist_ok=True)
    return os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC, _LOG_MODE)


def _write_log(fd: int, data: bytes) -> bool:
    """Write all of `data`; False (and a warning) when the log cannot take it."""
    view = memoryview(data)
    try:
        while view:
            view = view[os.write(fd, view) :]
    except OSError as exc:
        logger.warning("cannot write step log: %s; output is no longer logged", exc)
        return False
    return True


def _killpg(pgid: int, signum: int) -> None:
    try:
        os.killpg(pgid, signum)
    except ProcessLookupError:
        pass  # the whole group is already gone


def _signal_number(name: str) -> signal.Signals:
    try:
        return signal.Signals[name]
    except KeyError:
        raise ValueError(f'unknown signal "{name}"; expected a full name such as "SIGTERM"') from None


def _describe_exit(returncode: int) -> str:
    if returncode < 0:
        return f"killed by {_signal_name(-returncode)}"
    return f"exit status {returncode}"


def _signal_name(signum: int) -> str:
    try:
        return signal.Signals(signum).name
    except ValueError:
        return f"signal {signum}"  # e.g. a real-time signal without an enum member


def _start_failure(argv: Sequence[str], exc: OSError) -> AttemptResult:
    if isinstance(exc, FileNotFoundError):
        code = 127
    elif isinstance(exc, PermissionError):
        code = 126
    else:
        code = _EXIT_START_FAILED
    return AttemptResult(code, error=f"cannot start {argv[0]}: {exc}")


def _stopped_before_start(signum: signal.Signals) -> AttemptResult:
    return AttemptResult(128 + signum, error=f"stopped by {signum.name} before start", stopped=True)
