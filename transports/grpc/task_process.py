"""The run process a worker forks for one task: run the DAG here and announce each change on a pipe.

It is the worker-side twin of `dagu start --queued`: its own process and session,
the DAG loaded from the YAML text the coordinator sent, the run recorded in the
worker's own DAGU_HOME. Its observer forwards the StepChanged / RunChanged the
DagRunActor announces to the worker process, which reports them on. It stops when
the worker goes away (its pipe to the worker breaks; PR_SET_PDEATHSIG on the fork
server as a second line), so a killed worker leaves no orphan runs behind. No gRPC in here: the worker owns the connection.
"""

from __future__ import annotations

import ctypes
import os
import select
import signal
import sys
import threading
from typing import Any

import pykka

from actors.messages import RunChanged, StepChanged

__all__ = ["run_task", "PRELOAD"]

PRELOAD = ("transports.grpc.task_process", "actors.launch", "dagu.spec", "dagu.steps.command", "dagu.cli.render", "yaml")
_PR_SET_PDEATHSIG = 1


class _PipeObserver(pykka.ThreadingActor):
    """DagRunActor -> this actor -> the worker process: each change as a small tuple on the pipe."""

    def __init__(self, conn: Any):
        super().__init__()
        self._conn = conn

    def on_receive(self, message: Any) -> Any:
        match message:
            case StepChanged(node=node, status=status):
                self._send(("step", str(node), int(status)))
            case RunChanged(status=status):
                self._send(("run", "", int(status)))
            case _:
                return super().on_receive(message)
        return None

    def _send(self, item: tuple[str, str, int]) -> None:
        try:
            self._conn.send(item)
        except OSError:
            pass  # the worker is gone; the run goes on and its record stays on this disk


def run_task(task: dict[str, Any], yaml_path: str, env: dict[str, str], log_path: str, conn: Any) -> None:
    """Fork-server entry: own session, logs to `log_path`, run the DAG, exit with `dagu start`'s code."""
    os.setsid()
    # The worker blocks SIGINT/SIGTERM in every thread (it sigwaits); a mask survives
    # fork and exec, and this process must feel SIGTERM to stop its run.
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT, signal.SIGTERM, signal.SIGHUP})
    _die_with_parent()
    devnull = os.open(os.devnull, os.O_RDONLY)
    log = os.open(log_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    for fd, target in ((devnull, 0), (log, 1), (log, 2)):
        os.dup2(fd, target)
    os.close(devnull)
    os.close(log)
    os.environ.clear()
    os.environ.update(env)
    code = 1
    try:
        code = _run(task, yaml_path, conn)
    except Exception as exc:  # noqa: BLE001 - reported through the log; the worker reports the exit code
        print(f"Error: {type(exc).__name__}: {exc}", file=sys.stderr)
        import traceback

        traceback.print_exc()
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        conn.close()
    raise SystemExit(code)


def _run(task: dict[str, Any], yaml_path: str, conn: Any) -> int:
    from actors.launch import RunRequest, run_dag
    from dagu.cli.render import exit_code_for
    from dagu.config import load_settings
    from dagu.spec import load_dag
    from dagu.status import TriggerType

    settings = load_settings()
    settings.ensure_dirs()
    base = settings.base_config if settings.base_config.is_file() else None
    dag = load_dag(yaml_path, name=task["dag_name"], base_config=base)
    try:
        trigger = TriggerType.from_label(task.get("trigger") or "unknown")
    except KeyError:
        trigger = TriggerType.UNKNOWN
    _watch_worker(conn)
    observer = _PipeObserver.start(conn)
    try:
        request = RunRequest(
            run_id=task["run_id"], param_args=tuple(task.get("params_list") or ()), evaluate_params=False,
            trigger=trigger, queue=task.get("queue") or None, observer=observer,
        )
        rec, _ = run_dag(dag, settings, request)
    finally:
        observer.stop()
    return exit_code_for(rec.status)


def _watch_worker(conn: Any) -> None:
    """Stop this run (SIGTERM to itself) when the worker goes away, e.g. after a kill -9.

    The run's end of the pipe is its write end; once the worker (the only reader) is
    gone, poll() reports an error on it. The fork server is no sure witness: it can
    outlive the worker.
    """

    def watch() -> None:
        poller = select.poll()
        poller.register(conn.fileno(), 0)  # POLLERR / POLLHUP / POLLNVAL are always reported
        while True:
            for _, event in poller.poll():
                if event & select.POLLNVAL:  # we closed the pipe: the run is over
                    return
                if event & (select.POLLERR | select.POLLHUP):
                    print("the worker went away; stopping the run", file=sys.stderr, flush=True)
                    os.kill(os.getpid(), signal.SIGTERM)
                    return

    threading.Thread(target=watch, name="worker-watch", daemon=True).start()


def _die_with_parent() -> None:
    """SIGTERM this process when its parent (the worker's fork server) exits, e.g. after a kill -9 of the worker."""
    if not sys.platform.startswith("linux"):
        return
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, int(signal.SIGTERM), 0, 0, 0)
    except (OSError, AttributeError):
        pass
    if os.getppid() == 1:  # the parent died before prctl took effect
        os.kill(os.getpid(), signal.SIGTERM)
