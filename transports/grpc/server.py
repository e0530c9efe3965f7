"""The coordinator's gRPC server: CoordinatorService and grpc.health.v1 over a CoordinatorActor.

Each RPC is turned into a message at this boundary (bad input is rejected here
with INVALID_ARGUMENT) and answered from the actors' replies. Long polls and
submitters' event streams park in `GrpcMailboxes`, which the CoordinatorActor and
WorkerProxyActors use to hand over tasks and deliver RunWaiting / RunStarted /
RunEnded. Routing and recording are the actors' business, not this module's.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Iterator
from concurrent import futures
from dataclasses import dataclass
from typing import Any

import grpc
import pykka

from actors.coordinator import CoordinatorActor, CoordinatorSnapshot
from actors.messages import (
    CancelRun,
    GetSnapshot,
    GetWorkerProxy,
    LogChunk,
    PollerGone,
    PollerParked,
    RemoteTask,
    RunChanged,
    RunEnded,
    RunStarted,
    RunWaiting,
    StatusReported,
    StepChanged,
    SubmitTask,
    WorkerBeat,
    WorkerSeen,
)
from dagu.config import Settings
from transports.grpc import coordinator_pb2 as pb
from transports.grpc import coordinator_pb2_grpc as pb_grpc
from transports.grpc import health_pb2_grpc
from transports.grpc.health import HealthServicer
from transports.grpc.options import CoordinatorOptions
from transports.grpc.tls import SERVER_OPTIONS, add_port

__all__ = ["CoordinatorServer", "GrpcMailboxes", "task_to_pb", "task_from_pb", "start_coordinator"]

logger = logging.getLogger(__name__)

ASK_TIMEOUT_S = 30.0
MAX_WORKERS = 512  # threads: one per parked poll and per followed submission, plus unary calls


@dataclass(frozen=True, slots=True)
class _Released:
    """Mailbox token: end a parked poll without a task."""


class GrpcMailboxes:
    """Parked polls (one queue per poller) and submission event queues, shared by gRPC threads and actors."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._polls: dict[str, queue.SimpleQueue[Any]] = {}
        self._followers: dict[tuple[str, str], queue.SimpleQueue[Any]] = {}

    def park(self, poller_id: str) -> queue.SimpleQueue[Any]:
        box: queue.SimpleQueue[Any] = queue.SimpleQueue()
        with self._lock:
            self._polls[poller_id] = box
        return box

    def hand_over(self, poller_id: str, task: RemoteTask, worker_id: str) -> bool:
        with self._lock:
            box = self._polls.pop(poller_id, None)
        if box is None:
            return False
        box.put((task, worker_id))
        return True

    def release(self, poller_id: str) -> None:
        with self._lock:
            box = self._polls.pop(poller_id, None)
        if box is not None:
            box.put(_Released())

    def follow(self, key: tuple[str, str]) -> queue.SimpleQueue[Any]:
        box: queue.SimpleQueue[Any] = queue.SimpleQueue()
        with self._lock:
            self._followers[key] = box  # a re-submission takes over the stream
        return box

    def unfollow(self, key: tuple[str, str], box: queue.SimpleQueue[Any]) -> None:
        with self._lock:
            if self._followers.get(key) is box:
                del self._followers[key]

    def emit(self, key: tuple[str, str], event: Any) -> None:
        with self._lock:
            box = self._followers.get(key)
        if box is not None:
            box.put(event)


class CoordinatorServicer(pb_grpc.CoordinatorServiceServicer):
    """Turns RPCs into messages for the CoordinatorActor and the WorkerProxyActors."""

    def __init__(self, coordinator: pykka.ActorRef[Any], mailboxes: GrpcMailboxes):
        self._coord = coordinator
        self._boxes = mailboxes
        self._proxies: dict[str, pykka.ActorRef[Any]] = {}
        self._lock = threading.Lock()

    # -- workers --------------------------------------------------------------------------

    def Poll(self, request, context):  # noqa: N802
        if not request.poller_id or not request.worker_id:
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, "Poll needs worker_id and poller_id")
        box = self._boxes.park(request.poller_id)
        self._coord.tell(PollerParked(request.worker_id, request.poller_id, _labels(request.labels)))
        context.add_callback(lambda: self._boxes.release(request.poller_id))
        item = box.get()
        if isinstance(item, _Released):
            self._coord.tell(PollerGone(request.worker_id, request.poller_id))
            return pb.PollResponse()
        task, worker_id = item
        return pb.PollResponse(task=task_to_pb(task, worker_id))

    def Heartbeat(self, request, context):  # noqa: N802
        if not request.worker_id:
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, "Heartbeat needs worker_id")
        running = tuple((t.dag_name, t.dag_run_id) for t in request.stats.running_tasks if t.dag_name and t.dag_run_id)
        seen = WorkerSeen(request.worker_id, _labels(request.labels), request.stats.total_pollers,
                          request.stats.busy_pollers, running)
        proxy = self._coord.ask(seen, timeout=ASK_TIMEOUT_S)
        with self._lock:
            self._proxies[request.worker_id] = proxy
        cancel = proxy.ask(WorkerBeat(running), timeout=ASK_TIMEOUT_S)
        return pb.HeartbeatResponse(cancelled_runs=[pb.RunRef(dag_name=d, dag_run_id=r) for d, r in cancel])

    def ReportStatus(self, request, context):  # noqa: N802
        if not (request.worker_id and request.dag_name and request.dag_run_id and request.record_json):
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, "ReportStatus needs worker_id, dag_name, dag_run_id, record_json")
        if request.kind == pb.STATUS_EVENT_STEP_CHANGED:
            event: Any = StepChanged(request.dag_run_id, request.node, request.status)
        elif request.kind == pb.STATUS_EVENT_RUN_CHANGED:
            event = RunChanged(request.dag_run_id, request.status)
        elif request.kind == pb.STATUS_EVENT_FINAL:
            event = None
        else:
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, f"unknown status event kind {request.kind}")
        msg = StatusReported(request.worker_id, request.dag_name, request.dag_run_id, event, request.record_json,
                             request.outputs_json, request.exit_code if request.has_exit_code else None)
        accepted, error, stop = self._ask_proxy(request.worker_id, msg)
        return pb.ReportStatusResponse(accepted=accepted, error=error, stop=stop)

    def StreamLogs(self, request_iterator, context):  # noqa: N802
        chunks = written = 0
        error = ""
        for c in request_iterator:
            msg = LogChunk(c.worker_id, c.dag_name, c.dag_run_id, c.step_name, int(c.stream_type), c.file_name,
                           c.byte_offset, c.data)
            problem = self._ask_proxy(c.worker_id, msg)
            chunks += 1
            if problem:
                error = problem
            else:
                written += len(c.data)
        return pb.StreamLogsResponse(chunks_received=chunks, bytes_written=written, error=error)

    # -- schedulers and clients -------------------------------------------------------------

    def Submit(self, request, context) -> Iterator[pb.RunEvent]:  # noqa: N802
        task = self._task(request, context)
        key = (task.dag_name, task.run_id)
        box = self._boxes.follow(key)
        try:
            self._coord.ask(SubmitTask(task, wait=True), timeout=ASK_TIMEOUT_S)
            yield pb.RunEvent(kind=pb.RUN_EVENT_ACCEPTED, dag_run_id=task.run_id)
            stop = threading.Event()
            context.add_callback(lambda: (stop.set(), box.put(None)))
            while not stop.is_set():
                event = box.get()
                if event is None:
                    return
                yield _event_pb(event)
                if isinstance(event, RunEnded):
                    return
        finally:
            self._boxes.unfollow(key, box)

    def Dispatch(self, request, context):  # noqa: N802
        task = self._task(request, context)
        why = self._coord.ask(SubmitTask(task, wait=False), timeout=ASK_TIMEOUT_S)
        if why is not None:
            context.abort(grpc.StatusCode.FAILED_PRECONDITION, why)
        return pb.DispatchResponse()

    def GetWorkers(self, request, context):  # noqa: N802
        snap: CoordinatorSnapshot = self._coord.ask(GetSnapshot(), timeout=ASK_TIMEOUT_S)
        now = time.time()
        out = []
        for w in snap.workers:
            silent = now - w.last_seen
            health = pb.WORKER_HEALTH_STATUS_HEALTHY if silent < 5 else (
                pb.WORKER_HEALTH_STATUS_WARNING if silent < 15 else pb.WORKER_HEALTH_STATUS_UNHEALTHY)
            out.append(pb.WorkerInfo(
                worker_id=w.worker_id, labels=dict(w.labels), connected_at=int(w.connected_at),
                total_pollers=w.total, busy_pollers=w.busy, last_heartbeat_at=int(w.last_seen), health_status=health,
                running_tasks=[pb.RunningTask(dag_name=d, dag_run_id=r) for d, r in w.running],
            ))
        return pb.GetWorkersResponse(workers=out)

    def RequestCancel(self, request, context):  # noqa: N802
        if not (request.dag_name and request.dag_run_id):
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, "RequestCancel needs dag_name and dag_run_id")
        found = self._coord.ask(CancelRun(request.dag_name, request.dag_run_id), timeout=ASK_TIMEOUT_S)
        return pb.CancelResponse(accepted=bool(found), error="" if found else "no such run at this coordinator")

    # -- helpers --------------------------------------------------------------------------

    def _task(self, request, context) -> RemoteTask:
        t = request.task
        if not (t.dag_run_id and t.target and t.definition):
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, "a task needs dag_run_id, target (the DAG name) and definition")
        return task_from_pb(t)

    def _ask_proxy(self, worker_id: str, msg: Any) -> Any:
        with self._lock:
            proxy = self._proxies.get(worker_id)
        for _ in range(2):
            if proxy is None or not proxy.is_alive():
                proxy = self._coord.ask(GetWorkerProxy(worker_id), timeout=ASK_TIMEOUT_S)
                with self._lock:
                    self._proxies[worker_id] = proxy
            try:
                return proxy.ask(msg, timeout=ASK_TIMEOUT_S)
            except pykka.ActorDeadError:
                proxy = None
        raise RuntimeError(f"no proxy for worker {worker_id}")


class CoordinatorServer:
    """A running coordinator: the gRPC server, its CoordinatorActor, and the bound port."""

    def __init__(self, server: grpc.Server, coordinator: pykka.ActorRef[Any], health: HealthServicer, port: int):
        self.server = server
        self.coordinator = coordinator
        self.health = health
        self.port = port

    def stop(self, grace_s: float = 2.0) -> None:
        """Report NOT_SERVING, stop taking calls, then stop the actors (runs on workers go on)."""
        self.health.set_serving(False)
        self.server.stop(grace_s).wait(grace_s + 1)
        try:
            self.coordinator.stop(block=True, timeout=10)
        except pykka.Timeout:
            logger.warning("coordinator: the actor did not stop within 10s")


def start_coordinator(settings: Settings, opts: CoordinatorOptions) -> CoordinatorServer:
    """Start the CoordinatorActor and serve CoordinatorService + health on `opts.host:opts.port`.

    Raises:
        ConfigError: bad TLS settings.
        OSError: the address cannot be bound.
    """
    boxes = GrpcMailboxes()
    coordinator = CoordinatorActor.start(settings, boxes, worker_lost_after_s=opts.worker_lost_after_s)
    try:
        server = grpc.server(futures.ThreadPoolExecutor(max_workers=MAX_WORKERS, thread_name_prefix="grpc"),
                             options=SERVER_OPTIONS)
        pb_grpc.add_CoordinatorServiceServicer_to_server(CoordinatorServicer(coordinator, boxes), server)
        health = HealthServicer()
        health_pb2_grpc.add_HealthServicer_to_server(health, server)
        port = add_port(server, f"{opts.host}:{opts.port}", opts.peer)
        server.start()
    except BaseException:
        coordinator.stop()
        raise
    return CoordinatorServer(server, coordinator, health, port)


def task_to_pb(task: RemoteTask, worker_id: str = "") -> pb.Task:
    return pb.Task(
        root_dag_run_name=task.dag_name, root_dag_run_id=task.run_id, dag_run_id=task.run_id,
        operation=pb.OPERATION_START, target=task.dag_name, params=task.params,
        worker_selector=dict(task.selector), definition=task.definition, worker_id=worker_id,
        params_list=list(task.params_list), queue_name=task.queue, trigger_type=task.trigger,
        requeue_limit=task.requeue_limit,
    )


def task_from_pb(t: pb.Task) -> RemoteTask:
    return RemoteTask(
        dag_name=t.target, run_id=t.dag_run_id, definition=t.definition, params_list=tuple(t.params_list),
        params=t.params, queue=t.queue_name, selector=_labels(t.worker_selector), trigger=t.trigger_type,
        requeue_limit=max(0, t.requeue_limit),
    )


def _labels(mapping: Any) -> tuple[tuple[str, str], ...]:
    return tuple(sorted((str(k), str(v)) for k, v in mapping.items()))


def _event_pb(event: Any) -> pb.RunEvent:
    match event:
        case RunWaiting(run_id=run_id, reason=reason):
            return pb.RunEvent(kind=pb.RUN_EVENT_WAITING, dag_run_id=run_id, reason=reason)
        case RunStarted(run_id=run_id):
            return pb.RunEvent(kind=pb.RUN_EVENT_STARTED, dag_run_id=run_id, started=True)
        case RunEnded(run_id=run_id, exit_code=code):
            return pb.RunEvent(kind=pb.RUN_EVENT_ENDED, dag_run_id=run_id, has_exit_code=code is not None,
                               exit_code=code or 0)
    raise TypeError(f"not a run event: {event!r}")
