"""The scheduler's side of the coordinator: a runner that starts queued runs on remote workers.

`RoutingRunner` is what the scheduler's QueueActor gets when a coordinator is
configured. For each run it reads the DAG from the run's `dag.json`: a DAG with a
`worker_selector` (or every DAG, with `default_execution_mode: distributed`) goes
to `RemoteRunner`, the rest to the LocalRunner. `RemoteRunner.start` submits the
task over gRPC (Submit) and a helper thread follows the run's events, telling the
QueueActor `RunStarted` / `RunEnded` exactly as LocalRunner does. The QueueActor
cannot tell the difference. A run no worker can take yet stays queued (the
coordinator holds it and writes the reason into the queued record).
"""

from __future__ import annotations

import logging
import threading
from typing import Any

import grpc
import pykka

from actors.messages import RemoteTask, RunEnded, RunStarted
from actors.supervised import tell_if_alive
from dagu.config import Settings
from dagu.errors import DaguError
from dagu.store import RunStore, read_status
from transports.grpc import coordinator_pb2 as pb
from transports.grpc import coordinator_pb2_grpc as pb_grpc
from transports.grpc.options import CoordinatorOptions, coordinator_options, is_distributed_default
from transports.grpc.server import task_to_pb
from transports.grpc.tls import open_channel

__all__ = ["RemoteRunner", "RoutingRunner", "remote_task", "list_workers"]

logger = logging.getLogger(__name__)

CONNECT_TIMEOUT_S = 3.0


class RemoteRunner:
    """Starts a queued run on a worker through the coordinator and reports RunStarted / RunEnded.

    Raises from `start` (so the QueueActor retries with backoff): OSError when the
    coordinator cannot be reached.
    """

    def __init__(self, settings: Settings, opts: CoordinatorOptions | None = None):
        self._settings = settings
        self._opts = opts or coordinator_options(settings)
        self._address = self._opts.address
        self._channel = open_channel(self._address, self._opts.peer)
        self._stub = pb_grpc.CoordinatorServiceStub(self._channel)
        self._runs = RunStore(settings.data_dir, settings.log_dir)
        self._lock = threading.Lock()
        self._calls: dict[str, Any] = {}
        self._threads: list[threading.Thread] = []

    def start(self, run_id: str, dag_name: str, dag_file: str, queue: str, notify: pykka.ActorRef[Any]) -> None:
        try:
            grpc.channel_ready_future(self._channel).result(timeout=CONNECT_TIMEOUT_S)
        except grpc.FutureTimeoutError:
            raise OSError(f"the coordinator at {self._address} is not reachable") from None
        task = remote_task(self._runs, dag_name, run_id, queue)
        call = self._stub.Submit(pb.DispatchRequest(task=task_to_pb(task)))
        with self._lock:
            self._calls[run_id] = call
        thread = threading.Thread(target=self._follow, args=(call, task, notify), name=f"remote-{run_id}", daemon=True)
        thread.start()
        with self._lock:
            self._threads = [t for t in self._threads if t.is_alive()] + [thread]

    def close(self, *, terminate: bool = False, timeout_s: float = 0.0) -> bool:
        """Stop following (runs go on on their workers); True if every follower ended."""
        with self._lock:
            calls, threads = list(self._calls.values()), list(self._threads)
        for call in calls:
            call.cancel()
        for thread in threads:
            thread.join(max(0.1, timeout_s))
        self._channel.close()
        return not any(t.is_alive() for t in threads)

    def _follow(self, call: Any, task: RemoteTask, notify: pykka.ActorRef[Any]) -> None:
        started = False
        exit_code: int | None = None
        try:
            for event in call:
                if event.kind == pb.RUN_EVENT_WAITING:
                    logger.info("RemoteRunner: %s/%s: %s", task.dag_name, task.run_id, event.reason)
                elif event.kind == pb.RUN_EVENT_STARTED and not started:
                    started = True
                    tell_if_alive(notify, RunStarted(task.run_id, task.queue))
                elif event.kind == pb.RUN_EVENT_ENDED:
                    exit_code = event.exit_code if event.has_exit_code else None
                    break
        except grpc.RpcError as exc:
            if exc.code() != grpc.StatusCode.CANCELLED:
                logger.warning("RemoteRunner: lost the coordinator while following %s/%s: %s",
                               task.dag_name, task.run_id, exc.details())
        finally:
            with self._lock:
                self._calls.pop(task.run_id, None)
        tell_if_alive(notify, RunEnded(task.run_id, task.queue, exit_code))


class RoutingRunner:
    """LocalRunner for DAGs without a `worker_selector`, RemoteRunner for the rest (see module doc)."""

    def __init__(self, settings: Settings, local: Any, remote: RemoteRunner | None = None):
        self._settings = settings
        self._local = local
        self._remote = remote or RemoteRunner(settings)
        self._runs = RunStore(settings.data_dir, settings.log_dir)
        self._all_remote = is_distributed_default(settings)

    def start(self, run_id: str, dag_name: str, dag_file: str, queue: str, notify: pykka.ActorRef[Any]) -> None:
        if self._all_remote or _selector_of(self._runs, dag_name, run_id):
            self._remote.start(run_id, dag_name, dag_file, queue, notify)
        else:
            self._local.start(run_id, dag_name, dag_file, queue, notify)

    def close(self, *, terminate: bool = False, timeout_s: float = 0.0) -> bool:
        remote = self._remote.close(timeout_s=timeout_s)
        return self._local.close(terminate=terminate, timeout_s=timeout_s) and remote


def remote_task(runs: RunStore, dag_name: str, run_id: str, queue: str) -> RemoteTask:
    """The task for a queued run: its DAG's YAML (from dag.json), evaluated params, selector.

    Raises:
        NotFound: the run or its dag.json is missing.
        DaguError: the stored DAG has no YAML text.
    """
    attempt = runs.latest_attempt(runs.find_run(dag_name, run_id))
    dag_json = runs.read_dag_json(attempt)
    record = read_status(attempt.status_path)
    yaml_text = dag_json.get("yamlData")
    if not isinstance(yaml_text, str) or not yaml_text.strip():
        raise DaguError(f"dag.json of {dag_name}/{run_id} holds no YAML to send to a worker")
    selector, limit = _routing_keys(yaml_text)
    return RemoteTask(
        dag_name=dag_name, run_id=run_id, definition=yaml_text, params_list=tuple(record.params_list),
        params=record.params, queue=queue, selector=selector, trigger=record.trigger_type.label, requeue_limit=limit,
    )


def _selector_of(runs: RunStore, dag_name: str, run_id: str) -> tuple[tuple[str, str], ...]:
    try:
        attempt = runs.latest_attempt(runs.find_run(dag_name, run_id))
        return _routing_keys(str(runs.read_dag_json(attempt).get("yamlData") or ""))[0]
    except (DaguError, OSError, ValueError):
        return ()


def _routing_keys(yaml_text: str) -> tuple[tuple[tuple[str, str], ...], int]:
    """(worker_selector pairs, DAG-level retry_policy.limit) of the first YAML document."""
    import yaml

    try:
        doc = next(yaml.load_all(yaml_text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader)), None)
    except yaml.YAMLError:
        return (), 0
    if not isinstance(doc, dict):
        return (), 0
    selector = doc.get("worker_selector", doc.get("workerSelector")) or {}
    policy = doc.get("retry_policy", doc.get("retryPolicy")) or {}
    limit = policy.get("limit", 0) if isinstance(policy, dict) else 0
    pairs = tuple(sorted((str(k), str(v)) for k, v in selector.items())) if isinstance(selector, dict) else ()
    return pairs, limit if isinstance(limit, int) and limit > 0 else 0


_HEALTH_LABELS = {1: "healthy", 2: "warning", 3: "unhealthy"}


def list_workers(settings: Settings, timeout_s: float = 2.0) -> list[dict[str, Any]]:
    """The coordinator's connected workers in the API's `Worker` shape (times as unix seconds).

    Raises:
        ConnectionError: the coordinator did not answer within `timeout_s`.
    """
    opts = coordinator_options(settings)
    channel = open_channel(opts.address, opts.peer)
    try:
        reply = pb_grpc.CoordinatorServiceStub(channel).GetWorkers(pb.GetWorkersRequest(), timeout=timeout_s)
    except grpc.RpcError as exc:
        raise ConnectionError(f"coordinator at {opts.address}: {exc.code().name.lower()}: {exc.details()}") from exc
    finally:
        channel.close()
    return [
        {
            "id": w.worker_id,
            "labels": dict(w.labels),
            "totalPollers": w.total_pollers,
            "busyPollers": w.busy_pollers,
            "runningTasks": [{"dagRunId": t.dag_run_id, "dagName": t.dag_name} for t in w.running_tasks],
            "lastHeartbeatAt": w.last_heartbeat_at,
            "healthStatus": _HEALTH_LABELS.get(w.health_status, "unhealthy"),
        }
        for w in reply.workers
    ]
