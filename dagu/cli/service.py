"""Composition of the long-running services: the scheduler process (SchedulerActor ->
QueueActor -> LocalRunner) and the process tree of `start-all`.

The scheduler never runs a DAG itself: a fire enqueues a run in-process and tells the
QueueActor, which starts it as its own `dagu start --queued` process.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
from pathlib import Path
from typing import Any

from dagu.config import Settings, load_settings

__all__ = ["EnqueueFire", "scheduler_service", "scheduler_process", "server_process", "flag_overrides", "with_overrides"]

logger = logging.getLogger(__name__)


class EnqueueFire:
    """The scheduler's `fire`: start = enqueue a run; stop = stop the running run; restart = both."""

    def __init__(self, settings: Settings, queue_ref: Any):
        self._settings = settings
        self._queue = queue_ref

    def __call__(self, request) -> None:
        # Stopping waits for the run to end; keep that off the scheduler's thread.
        threading.Thread(target=self._run, args=(request,), name=f"fire {request.dag_name}", daemon=True).start()

    def _run(self, request) -> None:
        try:
            if request.kind in ("stop", "restart"):
                self._stop(request.dag_name)
            if request.kind in ("start", "restart"):
                self._enqueue(request)
        except Exception:  # a broken DAG file or store must not take the scheduler down
            logger.exception("%s: %s for slot %s failed", request.dag_name, request.kind, request.slot)

    def _enqueue(self, request) -> None:
        from actors.launch import RunRequest, enqueue_run
        from actors.messages import Enqueued
        from dagu.spec import load_dag
        from dagu.status import TriggerType

        settings = self._settings
        base = settings.base_config if settings.base_config.is_file() else None
        dag = load_dag(request.dag_path, base_config=base)
        trigger = TriggerType.from_label(request.trigger)
        record = enqueue_run(dag, settings, RunRequest(run_id=request.run_id, trigger=trigger))
        logger.info("%s: queued run %s for slot %s", dag.name, record.run_id, request.slot)
        self._queue.tell(Enqueued(dag.queue or dag.name))

    def _stop(self, dag_name: str) -> None:
        from dagu.cli.cmd_stop import stop_run
        from dagu.cli.lookup import find_run
        from dagu.errors import NotFound
        from dagu.status import RunStatus

        try:
            _, attempt, record = find_run(self._settings, dag_name)
        except NotFound:
            return
        if record.status == RunStatus.RUNNING:
            stop_run(self._settings, attempt, record, wait=True)


def scheduler_service(settings: Settings) -> int:
    """The `dagu: scheduler` process: queue and scheduler actors until SIGTERM/SIGINT."""
    from actors.local_runner import LocalRunner
    from actors.queue import QueueActor
    from actors.scheduler import run_scheduler

    settings.ensure_dirs()
    runner = _runner_for(settings, LocalRunner(settings))
    queue_ref = QueueActor.start(settings, runner) if settings.queues_enabled else None
    try:
        fire = EnqueueFire(settings, queue_ref) if queue_ref is not None else None
        return run_scheduler(settings, fire=fire)
    finally:
        if queue_ref is not None:
            queue_ref.stop(block=True, timeout=5)
        runner.close()


def _runner_for(settings: Settings, local: Any) -> Any:
    """LocalRunner, or with a coordinator configured, a RoutingRunner that sends DAGs with a
    `worker_selector` to workers through it (transports/grpc/client.py)."""
    from transports.grpc.options import coordinator_configured

    if not coordinator_configured(settings):
        return local
    from transports.grpc.client import RoutingRunner

    return RoutingRunner(settings, local)


def flag_overrides(args: Any) -> tuple[tuple[str, Any], ...]:
    """The `--host`, `--port` and `--dags` flags of `server` / `start-all` as settings overrides."""
    overrides: list[tuple[str, Any]] = []
    if args.host:
        overrides.append(("host", args.host))
    if args.port:
        overrides.append(("port", args.port))
    if args.dags:
        overrides.append(("dags_dir", Path(args.dags).absolute()))
    return tuple(overrides)


def with_overrides(settings: Settings, overrides: tuple[tuple[str, Any], ...]) -> Settings:
    """Settings with command-line flags applied (`host`, `port`, `dags_dir`)."""
    return dataclasses.replace(settings, **dict(overrides)) if overrides else settings


def scheduler_process(dagu_home: str | None, config: str | None, overrides: tuple = ()) -> int:
    """start-all child: the scheduler."""
    return scheduler_service(with_overrides(load_settings(dagu_home=dagu_home, config=config), overrides))


def server_process(dagu_home: str | None, config: str | None, overrides: tuple = ()) -> int:
    """start-all child: the HTTP server (REST API) under uvicorn."""
    from web.server import serve

    settings = with_overrides(load_settings(dagu_home=dagu_home, config=config), overrides)
    return serve(settings)
