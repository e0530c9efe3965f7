"""Run one DAG in this process: prepare the run's record and environment, start its
DagRunActor, wait for it while turning SIGINT/SIGTERM into a stop, and clean up.

This is what `dagu start`, `retry`, `restart`, `exec` and a sub-DAG child process do.
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import sys
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
import pykka

from actors.announcer import AnnouncerActor
from actors.dagrun import DagRunActor, RunSetup, step_json
from actors.messages import StopRun
from dagu.config import Settings
from dagu.events import events_dir
from dagu.resolve import (
    evaluate_env,
    host_env,
    output_key,
    params_env,
    params_list,
    params_text,
    read_dotenv,
    resolve_dir,
    resolve_params,
    run_context_env,
)
from dagu.spec.model import Dag, Param
from dagu.status import NodeStatus, RunStatus, TriggerType
from dagu.steps.shell import build_shell
from dagu.store import DagRef, Heartbeat, NodeRecord, RunRecord, RunStore, StatusWriter, new_run_id, utc_now
from dagu.store.locate import locate_run

__all__ = ["RunRequest", "run_dag", "reset_for_retry"]

logger = logging.getLogger(__name__)
run_logger = logging.getLogger("dagu.run")  # the run's own story: start, each step's status, end
_RUN_LOGGERS = ("dagu", "actors")  # whose records go into the run log file

_ANNOUNCE_DRAIN_S = 5.0  # at most this long at the end of a run to publish its last events


@dataclass(frozen=True)
class RunRequest:
    """How the caller wants the run: params, ids, where it sits in a run tree."""

    run_id: str | None = None
    params_text: str | None = None
    param_args: tuple[str, ...] = ()
    parent: DagRef | None = None
    root: DagRef | None = None
    trigger: TriggerType = TriggerType.MANUAL
    default_working_dir: str | None = None
    retry_of: RunRecord | None = None  # dagu retry: the previous attempt's record
    retry_step: str | None = None  # dagu retry --step
    queued_of: RunRecord | None = None  # a queued run being executed: its queued record
    queue: str | None = None  # queue / proc group; default: the DAG's `queue`, else its name
    evaluate_params: bool = True
    observer: pykka.ActorRef | None = None


def run_dag(dag: Dag, settings: Settings, request: RunRequest = RunRequest()) -> tuple[RunRecord, Any]:
    """Execute `dag` to the end and return its final record and the attempt handle.

    Raises:
        DaguError: the params or env cannot be evaluated, or the run ID is taken.
    """
    store = RunStore(settings.data_dir, settings.log_dir)
    working_dir = _working_dir(dag, request)
    existing = request.retry_of or request.queued_of
    if existing is not None:
        run = locate_run(store, DagRef(dag.name, existing.run_id), request.root) if request.parent else store.find_run(dag.name, existing.run_id)
        params = _params_from_list(existing.params_list)
        dag_env = evaluate_env(dag.env, {}, process_env=os.environ, shell=_shell(dag, settings), cwd=working_dir)
    else:
        params, dag_env = _params_and_env(dag, settings, request, working_dir)
        parent = locate_run(store, request.parent, request.root) if request.parent else None
        run = store.create_run(dag.name, request.run_id or new_run_id(), parent=parent)
    _set_title(dag.name, run.run_id)
    attempt = store.new_attempt(run)
    env = _run_env(dag, dag_env, settings, run.run_id, str(attempt.run_log_path), params, working_dir)
    record = _initial_record(dag, run.run_id, attempt, params, request)
    if request.queued_of is not None:
        record.queued_at = request.queued_of.queued_at
        record.trigger_type = request.queued_of.trigger_type
    keep = reset_for_retry(dag, request.retry_of, request.retry_step) if request.retry_of else {}
    queue = _queue_name(dag, request)
    store.write_dag_json(attempt, _dag_json(dag, params, queue))
    done = threading.Event()
    final: list[RunRecord] = []

    def on_done(rec: RunRecord) -> None:
        final.append(rec)
        done.set()
        _wake(wake_w)

    wake_r, wake_w = socket.socketpair()
    root = request.root or DagRef(dag.name, run.run_id)
    announcer = AnnouncerActor.start(dag.name, run.run_id, (root.name, root.id), events_dir(settings.data_dir), request.observer)
    setup = RunSetup(
        dag=dag,
        run_id=run.run_id,
        record=record,
        writer=StatusWriter(attempt.status_path),
        step_log_paths=lambda name, at: tuple(map(str, attempt.step_log_paths(name, at, merged=dag.log_output == "merged"))),
        env=env,
        working_dir=working_dir,
        default_shell=settings.default_shell,
        keep=keep,
        context={
            "settings": settings,
            "dag_file": dag.file,
            "run_dir": str(run.path),
            "root": request.root or DagRef(dag.name, run.run_id),
            "parent": DagRef(dag.name, run.run_id),
            "working_dir": working_dir,
        },
        on_done=on_done,
        before_close=lambda rec: _before_close(store, attempt, dag, rec, params),
        observer=announcer,
    )
    run_log = _open_run_log(attempt.run_log_path)
    run_logger.info("%s %s of %s (attempt %s)%s", "retry of" if request.retry_of else "run", run.run_id, dag.name,
                    attempt.attempt_id, f" params: {params_text(params)}" if params else "")
    heartbeat = Heartbeat(settings.proc_dir, queue, dag.name, run.run_id, interval_s=settings.heartbeat_interval_s).start()
    ref = DagRunActor.start(setup)
    try:
        _wait(ref, done, wake_r, float(dag.max_clean_up_time_sec))
    finally:
        heartbeat.close()
        wake_r.close()
        wake_w.close()
        _release_step_resources(run.run_id)
        _stop_announcer(announcer)
    rec = final[0]
    try:
        _notify(dag, rec, env)
    finally:
        _close_run_log(run_log)
    return rec, attempt


def _before_close(store: RunStore, attempt: Any, dag: Dag, rec: RunRecord, params: Sequence[Param]) -> None:
    """Outputs and the run log's last line exist by the time the run reads as finished."""
    _write_outputs(store, attempt, dag, rec, params)
    run_logger.info("run %s ended %s%s", rec.run_id, rec.status.label, f": {rec.error}" if rec.error else "")


def enqueue_run(dag: Dag, settings: Settings, request: RunRequest = RunRequest(), *, priority: str = "low") -> RunRecord:
    """Create a run in status `queued` and its queue item; a QueueActor starts it later.

    The record is durable before the item exists, so a queue reader never sees an item
    without its run.

    Raises:
        DaguError: the params cannot be evaluated, or the run ID is taken.
    """
    from dagu.store.queue import QueueStore

    store = RunStore(settings.data_dir, settings.log_dir)
    working_dir = _working_dir(dag, request)
    params, _ = _params_and_env(dag, settings, request, working_dir)
    run = store.create_run(dag.name, request.run_id or new_run_id())
    attempt = store.new_attempt(run)
    record = _initial_record(dag, run.run_id, attempt, params, request)
    record.status = RunStatus.QUEUED
    record.queued_at = utc_now()
    queue = _queue_name(dag, request)
    store.write_dag_json(attempt, _dag_json(dag, params, queue))
    writer = StatusWriter(attempt.status_path)
    writer.open(record)
    writer.release()
    QueueStore(settings.queue_dir).push(queue, dag.name, run.run_id, priority=priority)
    return record


def reset_for_retry(dag: Dag, previous: RunRecord, only_step: str | None) -> dict[str, NodeRecord]:
    """Nodes of `previous` to keep as they were: all but the failed ones and their descendants
    (or, with `only_step`, all but that step)."""
    from actors.plan import Plan

    plan = Plan(dag)
    by_name = {n.name: n for n in previous.nodes}
    if only_step is not None:
        if only_step not in plan.steps:
            from dagu.errors import NotFound

            raise NotFound(f"step {only_step!r} is not in DAG {dag.name}")
        rerun = {only_step}
    else:
        bad = (NodeStatus.FAILED, NodeStatus.ABORTED, NodeStatus.REJECTED, NodeStatus.NOT_STARTED, NodeStatus.RUNNING)
        rerun = set()
        for name in plan.steps:
            node = by_name.get(name)
            if node is None or node.status in bad:
                rerun.add(name)
                rerun |= plan.descendants(name)
    return {name: node for name, node in by_name.items() if name in plan.steps and name not in rerun}


# -- helpers ---------------------------------------------------------------------


def _release_step_resources(run_id: str) -> None:
    """Remove what step types keep for the whole run (the DAG-level container).

    Only a step type that was used has been imported, so an unused one costs nothing here.
    """
    docker_steps = sys.modules.get("dagu.steps.docker")
    if docker_steps is not None:
        docker_steps.release_run(run_id)


def _wait(ref: pykka.ActorRef, done: threading.Event, wake_r: socket.socket, grace_s: float) -> None:
    """Block until the run is done; the first SIGINT/SIGTERM stops it, a second kills harder."""
    if threading.current_thread() is not threading.main_thread():
        done.wait()
        return
    import selectors

    stops = 0
    old_handlers = {}
    sig_r, sig_w = socket.socketpair()
    sig_w.setblocking(False)
    old_fd = signal.set_wakeup_fd(sig_w.fileno(), warn_on_full_buffer=False)
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        old_handlers[sig] = signal.signal(sig, lambda *_: None)  # the wakeup fd carries the signal
    sel = selectors.DefaultSelector()
    sel.register(sig_r, selectors.EVENT_READ, "signal")
    sel.register(wake_r, selectors.EVENT_READ, "done")
    try:
        while not done.is_set():
            for key, _ in sel.select():
                if key.data == "signal":
                    for signum in sig_r.recv(64):
                        stops += 1
                        name = signal.Signals(signum).name
                        logger.info("received %s; stopping the run", name)
                        try:
                            ref.tell(StopRun(reason=f"received {name}", force=stops > 1))
                        except pykka.ActorDeadError:
                            pass
    finally:
        sel.close()
        signal.set_wakeup_fd(old_fd)
        for sig, handler in old_handlers.items():
            signal.signal(sig, handler)
        sig_r.close()
        sig_w.close()


def _open_run_log(path: Path | str) -> logging.Handler | None:
    """Copy this run's log records (the engine's, the step types' warnings) into its run log file."""
    try:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        handler = logging.FileHandler(path, encoding="utf-8", delay=False)
    except OSError as exc:
        logger.warning("cannot open the run log %s: %s", path, exc)
        return None
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
    handler.setLevel(logging.INFO)
    for name in _RUN_LOGGERS:
        logging.getLogger(name).addHandler(handler)
    run_logger.addHandler(handler)
    run_logger.setLevel(logging.INFO)
    run_logger.propagate = False  # the run's story goes to its file, not to the terminal
    return handler


def _close_run_log(handler: logging.Handler | None) -> None:
    if handler is None:
        return
    for name in _RUN_LOGGERS:
        logging.getLogger(name).removeHandler(handler)
    run_logger.removeHandler(handler)
    handler.close()


def _stop_announcer(ref: pykka.ActorRef) -> None:
    """Stop the announcer once it has published what the run told it, waiting a bounded time."""
    try:
        ref.stop(block=True, timeout=_ANNOUNCE_DRAIN_S)
    except pykka.Timeout:
        logger.warning("run events not all published within %.0fs; a subscriber is not reading", _ANNOUNCE_DRAIN_S)


def _set_title(dag_name: str, run_id: str) -> None:
    if threading.current_thread() is not threading.main_thread():
        return
    try:
        import setproctitle
    except ImportError:  # optional at run time; only `ps` output suffers
        return
    setproctitle.setproctitle(f"dagu: run {dag_name} {run_id}")


def _wake(sock: socket.socket) -> None:
    try:
        sock.send(b"x")
    except OSError:
        pass


def _shell(dag: Dag, settings: Settings) -> tuple[str, ...]:
    return build_shell(None, dag.shell, settings.default_shell, os.environ)


def _params_and_env(dag: Dag, settings: Settings, request: RunRequest, working_dir: str) -> tuple[list[Param], dict[str, str]]:
    """The run's params and evaluated DAG env.

    The 1.30 binary evaluates the DAG env first (params are not visible to it); params
    may then refer to env values. Checked against the binary in test_compare_dagu.
    """
    shell = _shell(dag, settings)
    dag_env = evaluate_env(dag.env, {}, process_env=os.environ, shell=shell, cwd=working_dir)
    params = resolve_params(
        dag.params, request.params_text, request.param_args, evaluate=request.evaluate_params,
        env={**os.environ, **dag_env}, shell=shell, cwd=working_dir,
    )
    return params, dag_env


def _queue_name(dag: Dag, request: RunRequest) -> str:
    return request.queue or dag.queue or dag.name


def _dag_json(dag: Dag, params: Sequence[Param], queue: str) -> dict[str, Any]:
    """What dag.json keeps: enough to run the DAG again (retry, queue dispatch) as it was."""
    return {
        "name": dag.name,
        "file": dag.file,
        "yamlData": dag.source,
        "params": params_text(params),
        "queue": queue,
        "maxActiveRuns": dag.max_active_runs,
    }


def _dag_dir(dag: Dag) -> str | None:
    """Folder of the DAG's file; None for a DAG loaded from text (`<string>`)."""
    return str(Path(dag.file).parent) if dag.file and not dag.file.startswith("<") else None


def _working_dir(dag: Dag, request: RunRequest) -> str:
    base = request.default_working_dir or _dag_dir(dag) or os.getcwd()
    return resolve_dir(dag.working_dir, os.environ, base) if dag.working_dir else base


def _run_env(dag: Dag, dag_env: Mapping[str, str], settings: Settings, run_id: str, log_file: str,
             params: Sequence[Param], working_dir: str) -> dict[str, str]:
    """Host allow-list, then params, DAG env, dotenv and the run-context variables (low to high)."""
    env = host_env(os.environ, settings.env_passthrough, settings.env_passthrough_prefixes)
    if settings.home is not None:
        env["DAGU_HOME"] = str(settings.home)
    env.update(params_env(params))
    env.update(dag_env)
    env.update(read_dotenv(list(dag.dotenv), working_dir, _dag_dir(dag)))
    env.update(run_context_env(dag_name=dag.name, run_id=run_id, log_file=log_file, params=params))
    return env


def _initial_record(dag: Dag, run_id: str, attempt: Any, params: Sequence[Param], request: RunRequest) -> RunRecord:
    now = utc_now()
    return RunRecord(
        name=dag.name,
        run_id=run_id,
        attempt_id=attempt.attempt_id,
        root=request.root,
        parent=request.parent,
        status=RunStatus.NOT_STARTED,
        worker_id="local",
        nodes=[NodeRecord(step=step_json(s)) for s in dag.steps],
        created_at=now,
        log=str(attempt.run_log_path),
        params=params_text(params),
        params_list=params_list(params),
        trigger_type=TriggerType.RETRY if request.retry_of else request.trigger,
    )


def _write_outputs(store: RunStore, attempt: Any, dag: Dag, rec: RunRecord, params: Sequence[Param]) -> None:
    outputs: dict[str, str] = {}
    for step, node in zip(dag.steps, rec.nodes):
        if step.output is None or step.output.omit:
            continue
        text = node.output_variables.get(step.output.name)
        if text is not None:
            outputs[output_key(step.output.name, step.output.key)] = text.partition("=")[2]
    if not outputs:
        return
    metadata = {
        "dagName": dag.name,
        "dagRunId": rec.run_id,
        "attemptId": rec.attempt_id,
        "status": rec.status.label,
        "completedAt": rec.finished_at.isoformat().replace("+00:00", "Z") if rec.finished_at else "",
        "params": orjson.dumps(rec.params_list).decode(),
    }
    store.write_outputs(attempt, metadata, outputs)


def _notify(dag: Dag, rec: RunRecord, env: Mapping[str, str]) -> None:
    """Notification mail (mail_on, step mail_on_error); imported only when a DAG asks for it."""
    if not any((dag.mail_on or {}).values()) and not any(s.mail_on_error for s in dag.steps):
        return
    from dagu.notify.mail import notify_run_end

    notify_run_end(dag, rec, env)


def _params_from_list(items: Sequence[str]) -> list[Param]:
    """Params back from a record's `paramsList` (`NAME=value` or a positional value)."""
    out, pos = [], 0
    for text in items:
        name, sep, value = text.partition("=")
        if sep and name.isidentifier():
            out.append(Param(name, value))
        else:
            pos += 1
            out.append(Param(str(pos), text, positional=True))
    return out
