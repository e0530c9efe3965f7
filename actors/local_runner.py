"""LocalRunner: starts a queued run as its own `dagu start --queued` process on this machine.

It owns the run processes it spawns and the helper threads that watch them, and
reports `RunStarted` / `RunEnded` to whoever asked for the run (the QueueActor).
It does not decide which run starts when; a remote worker proxy plays the same role.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pykka

from actors.messages import RunEnded, RunStarted
from actors.supervised import tell_if_alive
from dagu.config import Settings
from dagu.errors import NotFound
from dagu.status import RunStatus
from dagu.store.naming import safe_name
from dagu.store.proc import find_heartbeat
from dagu.store.runs import RunStore

__all__ = ["LocalRunner", "LocalRunnerSnapshot", "START_TIMEOUT_S"]

logger = logging.getLogger(__name__)

START_TIMEOUT_S = 60.0  # how long to wait for a launched run to show it started

# Modules the fork server imports once, so a forked run process starts without paying
# for them again (a fresh `python -m dagu start` spends ~150 ms of CPU on imports).
FORK_PRELOAD = ("dagu.cli.main", "dagu.cli.cmd_start", "actors.launch", "dagu.spec", "dagu.steps.command", "yaml")


@dataclass(frozen=True, slots=True)
class LocalRunnerSnapshot:
    """`LocalRunner.snapshot()`: the run processes it started that have not exited."""

    pids: tuple[tuple[str, int], ...]  # (run ID, pid)


class LocalRunner:
    """Starts each queued run as its own `dagu start --queued` process on this machine.

    A helper thread per run waits on the process: it tells `RunStarted` once the run
    shows it started (its heartbeat file exists or its status left `queued`), checking
    with a short exponential backoff up to `start_timeout_s`, and `RunEnded` when the
    process exits. Run processes lead their own session, so they outlive the
    scheduler; `close()` does not stop them unless asked to.

    Args:
        settings: passed on to the child (`DAGU_HOME`, `DAGU_CONFIG`); its
            `admin_log_dir` gets one `queue/<dag>.<runId>.log` per run (stdout and stderr).
        command: the argv prefix that runs dagu as a fresh program (e.g. `python -m dagu`);
            by default each run is forked from a fork server that has dagu imported already.
    """

    def __init__(
        self,
        settings: Settings,
        *,
        command: tuple[str, ...] | None = None,
        start_timeout_s: float = START_TIMEOUT_S,
        env: dict[str, str] | None = None,
    ):
        self._settings = settings
        self._command = command
        self._start_timeout_s = start_timeout_s
        self._env = {**(os.environ if env is None else env), **settings.env_for_children()}
        self._runs = RunStore(settings.data_dir, settings.log_dir)
        self._lock = threading.Lock()  # guards _procs, touched by the caller and the helper threads
        self._procs: dict[str, subprocess.Popen[bytes]] = {}
        self._threads: list[threading.Thread] = []

    def start(self, run_id: str, dag_name: str, dag_file: str, queue: str, notify: pykka.ActorRef[Any]) -> None:
        """Spawn the run process and its helper thread.

        Raises:
            OSError: the process could not be spawned.
        """
        log_path = self._settings.admin_log_dir / "queue" / f"{safe_name(dag_name)}.{run_id}.log"
        log_path.parent.mkdir(parents=True, exist_ok=True)
        args = ["start", "-q", "--queued", "-r", run_id, dag_file]
        if self._command is None:
            proc: Any = _ForkedRun(args, self._env, log_path)
        else:
            with open(log_path, "ab") as log:
                proc = subprocess.Popen(
                    [*self._command, *args], stdin=subprocess.DEVNULL, stdout=log, stderr=log, env=self._env,
                    start_new_session=True,
                )
        logger.debug("LocalRunner: started %s/%s as [%d] (log %s)", dag_name, run_id, proc.pid, log_path)
        with self._lock:
            self._procs[run_id] = proc
        thread = threading.Thread(
            target=self._follow, args=(proc, run_id, dag_name, queue, notify, log_path),
            name=f"runner-{run_id}", daemon=True,
        )
        thread.start()
        with self._lock:
            self._threads = [t for t in self._threads if t.is_alive()] + [thread]

    def snapshot(self) -> LocalRunnerSnapshot:
        with self._lock:
            return LocalRunnerSnapshot(tuple(sorted((r, p.pid) for r, p in self._procs.items())))

    def close(self, *, terminate: bool = False, timeout_s: float = 0.0) -> bool:
        """Wait up to `timeout_s` for the run processes (SIGTERM their groups first with `terminate`).

        By default nothing is waited for or stopped: runs outlive the scheduler that
        launched them, and their helper threads die with this process.

        Returns:
            True if every process exited and every helper thread finished.
        """
        if terminate:
            with self._lock:
                procs = list(self._procs.values())
            for proc in procs:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(proc.pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout_s
        with self._lock:
            threads = list(self._threads)
        for thread in threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        return not any(t.is_alive() for t in threads)

    def _follow(
        self, proc: Any, run_id: str, dag_name: str, queue: str,
        notify: pykka.ActorRef[Any], log_path: Path,
    ) -> None:
        started = self._wait_started(proc, run_id, dag_name)
        if started:
            tell_if_alive(notify, RunStarted(run_id, queue))
        code = proc.wait()
        if not started and self._has_started(run_id, dag_name):
            tell_if_alive(notify, RunStarted(run_id, queue))  # it ran and ended between two looks
        elif not started:
            logger.warning("LocalRunner: %s/%s exited %s before starting; see %s", dag_name, run_id, code, log_path)
        with self._lock:
            self._procs.pop(run_id, None)
        tell_if_alive(notify, RunEnded(run_id, queue, code))

    def _wait_started(self, proc: Any, run_id: str, dag_name: str) -> bool:
        """Wait until the run shows it started (True), or the process exits or the deadline passes (False)."""
        deadline = time.monotonic() + self._start_timeout_s
        delay = 0.01
        while True:
            # Waiting on the process doubles as the backoff sleep, so an early exit is seen at once.
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=min(delay, max(0.0, deadline - time.monotonic())))
                return False
            if self._has_started(run_id, dag_name):
                return True
            if time.monotonic() >= deadline:
                logger.warning("LocalRunner: %s/%s [%d] did not start within %gs", dag_name, run_id, proc.pid,
                               self._start_timeout_s)
                return False
            delay = min(delay * 2, 0.5)

    def _has_started(self, run_id: str, dag_name: str) -> bool:
        if find_heartbeat(self._settings.proc_dir, dag_name, run_id) is not None:
            return True
        try:
            run = self._runs.find_run(dag_name, run_id)
            return self._runs.read_latest(run).status != RunStatus.QUEUED
        except NotFound:
            return False


class _ForkedRun:
    """A run process forked from the fork server, with the slice of `Popen` the runner uses."""

    def __init__(self, args: list[str], env: dict[str, str], log_path: Path):
        import multiprocessing

        ctx = multiprocessing.get_context("forkserver")
        ctx.set_forkserver_preload(list(FORK_PRELOAD))
        self._proc = ctx.Process(target=_forked_main, args=(args, env, str(log_path)), daemon=False)
        self._proc.start()
        self.pid = self._proc.pid

    @property
    def returncode(self) -> int | None:
        return self._proc.exitcode

    def poll(self) -> int | None:
        return self._proc.exitcode

    def wait(self, timeout: float | None = None) -> int:
        """Like `Popen.wait`: the exit code (negative for a signal), or TimeoutExpired."""
        self._proc.join(timeout)
        if self._proc.exitcode is None:
            raise subprocess.TimeoutExpired("dagu start --queued", timeout or 0.0)
        return self._proc.exitcode


def _forked_main(args: list[str], env: dict[str, str], log_path: str) -> None:
    """Run-process entry in the forked child: own session, logs to its file, `dagu start --queued`."""
    os.setsid()  # its own process group, like start_new_session: stop signals reach the whole run
    devnull = os.open(os.devnull, os.O_RDONLY)
    log = os.open(log_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    os.dup2(devnull, 0)
    os.dup2(log, 1)
    os.dup2(log, 2)
    os.close(devnull)
    os.close(log)
    os.environ.clear()
    os.environ.update(env)
    from dagu.cli.main import main

    code = main(args)
    sys.stdout.flush()
    sys.stderr.flush()
    raise SystemExit(code)
