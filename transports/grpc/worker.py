"""`dagu worker`: long-poll the coordinator for runs, run each as its own process here, report back.

The worker shares no disk with the coordinator. A task carries the DAG's YAML and
evaluated params; the run is recorded in this worker's own DAGU_HOME, and a
follower thread per run reports each StepChanged / RunChanged (with the status
record) and streams the step and run logs to the coordinator, ending with a final
report (outputs and exit code). Heartbeats every `heartbeat_interval_s` carry the
labels and running runs; their replies name runs to stop. If the coordinator
restarts, polls and heartbeats retry with backoff, and the first heartbeat that
gets through re-registers this worker with its running runs.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import signal
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
import orjson

from dagu.config import Settings
from dagu.errors import DaguError, NotFound
from dagu.status import RunStatus
from dagu.store import RunRecord, RunStore, read_status, safe_name
from transports.grpc import coordinator_pb2 as pb
from transports.grpc import coordinator_pb2_grpc as pb_grpc
from transports.grpc.options import WorkerOptions
from transports.grpc.tls import open_channel

__all__ = ["Worker", "WorkerSnapshot"]

logger = logging.getLogger(__name__)

LOG_CHUNK_BYTES = 512 * 1024
FOLLOW_TICK_S = 0.25  # how often a running run's logs are shipped when no status change comes first
RPC_TIMEOUT_S = 30.0
BACKOFF_S = (0.1, 2.0)  # first delay after a failed poll or heartbeat, cap; doubles


@dataclass(frozen=True, slots=True)
class WorkerSnapshot:
    worker_id: str
    running: tuple[tuple[str, str], ...]
    connected: bool


class Worker:
    """Polls `opts.coordinator` with up to `opts.max_active_runs` runs at once.

    Args:
        settings: this worker's own DAGU_HOME (run records, logs, the fork server's env).
        opts: coordinator address, labels, concurrency, TLS.
    """

    def __init__(self, settings: Settings, opts: WorkerOptions):
        self.settings = settings
        self.opts = opts
        self._channel = open_channel(opts.coordinator, opts.peer)
        self._stub = pb_grpc.CoordinatorServiceStub(self._channel)
        self._store = RunStore(settings.data_dir, settings.log_dir)
        self._stop = threading.Event()
        self._slots = threading.Semaphore(opts.max_active_runs)
        self._lock = threading.Lock()
        self._runs: dict[tuple[str, str], _TaskRun] = {}
        self._poll: Any = None
        self._connected = False
        self._threads: list[threading.Thread] = []

    # -- lifecycle ------------------------------------------------------------------------

    def start(self) -> Worker:
        self.settings.ensure_dirs()
        _prepare_fork_server()
        for name, target in (("heartbeat", self._heartbeat_loop), ("poll", self._poll_loop)):
            thread = threading.Thread(target=target, name=f"worker-{name}", daemon=True)
            thread.start()
            self._threads.append(thread)
        logger.info("worker %s: polling %s, labels %s, max %d runs", self.opts.worker_id, self.opts.coordinator,
                    dict(self.opts.labels) or "none", self.opts.max_active_runs)
        return self

    def stop(self, grace_s: float = 10.0) -> None:
        """Stop polling, stop the running runs (SIGTERM), wait for their final reports, close."""
        self._stop.set()
        poll = self._poll
        if poll is not None:
            poll.cancel()
        with self._lock:
            runs = list(self._runs.values())
        for run in runs:
            run.terminate()
        deadline = time.monotonic() + grace_s
        for run in runs:
            run.join(max(0.0, deadline - time.monotonic()))
        for thread in self._threads:
            thread.join(max(0.1, deadline - time.monotonic()))
        self._channel.close()

    def snapshot(self) -> WorkerSnapshot:
        with self._lock:
            return WorkerSnapshot(self.opts.worker_id, tuple(sorted(self._runs)), self._connected)

    # -- polling --------------------------------------------------------------------------

    def _poll_loop(self) -> None:
        delay = BACKOFF_S[0]
        labels = dict(self.opts.labels)
        while not self._stop.is_set():
            if not self._slots.acquire(timeout=0.5):
                continue
            request = pb.PollRequest(worker_id=self.opts.worker_id, poller_id=uuid.uuid4().hex, labels=labels)
            try:
                self._poll = self._stub.Poll.future(request, wait_for_ready=True)
                response = self._poll.result()
            except (grpc.RpcError, grpc.FutureCancelledError) as exc:
                self._slots.release()
                if self._stop.is_set():
                    return
                logger.debug("worker %s: poll failed: %s", self.opts.worker_id, _why(exc))
                self._stop.wait(delay)
                delay = min(delay * 2, BACKOFF_S[1])
                continue
            finally:
                self._poll = None
            delay = BACKOFF_S[0]
            if not response.HasField("task"):
                self._slots.release()
                continue
            self._start_task(response.task)

    def _start_task(self, task: pb.Task) -> None:
        key = (task.target, task.dag_run_id)
        try:
            run = _TaskRun(self, task)
        except (OSError, DaguError, ValueError) as exc:
            logger.error("worker %s: cannot start %s/%s: %s", self.opts.worker_id, *key, exc)
            self._slots.release()
            return
        with self._lock:
            self._runs[key] = run
        run.start()

    def _run_done(self, key: tuple[str, str]) -> None:
        with self._lock:
            self._runs.pop(key, None)
        self._slots.release()

    # -- heartbeats -----------------------------------------------------------------------

    def _heartbeat_loop(self) -> None:
        delay = self.opts.heartbeat_interval_s
        while not self._stop.is_set():
            try:
                response = self._stub.Heartbeat(self._heartbeat_request(), timeout=RPC_TIMEOUT_S)
            except grpc.RpcError as exc:
                if self._connected:
                    logger.warning("worker %s: heartbeat to %s failed: %s; retrying", self.opts.worker_id,
                                   self.opts.coordinator, _why(exc))
                self._connected = False
                self._stop.wait(min(delay, self.opts.heartbeat_interval_s))
                continue
            if not self._connected:
                logger.info("worker %s: registered with %s", self.opts.worker_id, self.opts.coordinator)
            self._connected = True
            for ref in response.cancelled_runs:
                with self._lock:
                    run = self._runs.get((ref.dag_name, ref.dag_run_id))
                if run is not None:
                    logger.info("worker %s: stopping %s/%s as asked", self.opts.worker_id, ref.dag_name, ref.dag_run_id)
                    run.terminate()
            self._stop.wait(self.opts.heartbeat_interval_s)

    def _heartbeat_request(self) -> pb.HeartbeatRequest:
        with self._lock:
            runs = list(self._runs.values())
        tasks = [pb.RunningTask(dag_name=r.dag_name, dag_run_id=r.run_id, started_at=int(r.started_at)) for r in runs]
        stats = pb.WorkerStats(total_pollers=self.opts.max_active_runs, busy_pollers=len(runs), running_tasks=tasks)
        return pb.HeartbeatRequest(worker_id=self.opts.worker_id, labels=dict(self.opts.labels), stats=stats)


class _TaskRun:
    """One task on this worker: its run process and the thread that reports it to the coordinator."""

    def __init__(self, worker: Worker, task: pb.Task):
        import multiprocessing

        self._worker = worker
        self._stub = worker._stub
        self._store = worker._store
        self.dag_name, self.run_id = task.target, task.dag_run_id
        self.started_at = time.time()
        settings = worker.settings
        self._clear_previous()
        folder = settings.data_dir / "worker-dags"
        folder.mkdir(parents=True, exist_ok=True)
        yaml_path = folder / f"{safe_name(self.dag_name)}.{self.run_id}.yaml"
        yaml_path.write_text(task.definition)
        self._log_path = settings.admin_log_dir / "worker" / f"{safe_name(self.dag_name)}.{self.run_id}.log"
        self._log_path.parent.mkdir(parents=True, exist_ok=True)
        spec = {"dag_name": self.dag_name, "run_id": self.run_id, "params_list": list(task.params_list),
                "trigger": task.trigger_type, "queue": task.queue_name}
        env = {**os.environ, **settings.env_for_children()}
        from transports.grpc.task_process import run_task

        ctx = multiprocessing.get_context("forkserver")
        self._conn, child_conn = ctx.Pipe(duplex=False)
        self._proc = ctx.Process(target=run_task, args=(spec, str(yaml_path), env, str(self._log_path), child_conn),
                                 daemon=False)
        self._proc.start()
        child_conn.close()
        self._offsets: dict[str, int] = {}
        self._status_path: Path | None = None
        self._reported = False
        self._thread = threading.Thread(target=self._follow, name=f"task-{self.run_id}", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def join(self, timeout: float) -> None:
        self._thread.join(timeout)

    def terminate(self) -> None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self._proc.pid, signal.SIGTERM)

    # -- the follower thread ----------------------------------------------------------------

    def _follow(self) -> None:
        try:
            self._follow_events()
            self._proc.join()
            self._report_final(self._proc.exitcode)
        except Exception:
            logger.exception("worker: following %s/%s failed", self.dag_name, self.run_id)
        finally:
            self._conn.close()
            self._worker._run_done((self.dag_name, self.run_id))

    def _follow_events(self) -> None:
        while True:
            last = None
            try:
                if self._conn.poll(FOLLOW_TICK_S):
                    last = self._conn.recv()
                    while self._conn.poll(0):  # coalesce a burst: the record has them all
                        last = self._conn.recv()
            except (EOFError, OSError):
                return
            if last is not None:
                self._report(last)
            if self._reported:
                self._ship_logs()

    def _report(self, event: tuple[str, str, int]) -> None:
        record = self._read_record()
        if record is None:
            return
        kind = pb.STATUS_EVENT_STEP_CHANGED if event[0] == "step" else pb.STATUS_EVENT_RUN_CHANGED
        request = pb.ReportStatusRequest(worker_id=self._worker.opts.worker_id, dag_name=self.dag_name,
                                         dag_run_id=self.run_id, kind=kind, node=event[1], status=event[2],
                                         record_json=orjson.dumps(record.to_json()))
        self._send_report(request)

    def _report_final(self, exit_code: int | None) -> None:
        record = self._read_record() or self._failed_record(exit_code)
        outputs = b""
        with contextlib.suppress(NotFound, OSError, ValueError, DaguError):
            attempt = self._store.latest_attempt(self._store.find_run(self.dag_name, self.run_id))
            doc = self._store.read_outputs(attempt)
            if isinstance(doc.get("outputs"), dict):
                outputs = orjson.dumps(doc["outputs"])
        if not self._reported:
            self._send_report(pb.ReportStatusRequest(
                worker_id=self._worker.opts.worker_id, dag_name=self.dag_name, dag_run_id=self.run_id,
                kind=pb.STATUS_EVENT_RUN_CHANGED, status=int(record.status), record_json=orjson.dumps(record.to_json())))
        self._ship_logs(record)
        request = pb.ReportStatusRequest(worker_id=self._worker.opts.worker_id, dag_name=self.dag_name,
                                         dag_run_id=self.run_id, kind=pb.STATUS_EVENT_FINAL, status=int(record.status),
                                         record_json=orjson.dumps(record.to_json()), outputs_json=outputs,
                                         has_exit_code=exit_code is not None, exit_code=exit_code or 0)
        self._send_report(request, retry_until_accepted=True)

    def _send_report(self, request: pb.ReportStatusRequest, *, retry_until_accepted: bool = False) -> None:
        """Send a report; the final one is retried (with backoff) through a coordinator restart."""
        delay = BACKOFF_S[0]
        deadline = time.monotonic() + 300.0
        while True:
            try:
                response = self._stub.ReportStatus(request, timeout=RPC_TIMEOUT_S, wait_for_ready=retry_until_accepted)
                if response.accepted:
                    self._reported = True
                elif response.error:
                    logger.warning("worker: report of %s/%s refused: %s", self.dag_name, self.run_id, response.error)
                if response.stop:
                    self.terminate()
                return
            except grpc.RpcError as exc:
                if not retry_until_accepted or time.monotonic() > deadline:
                    logger.warning("worker: report of %s/%s failed: %s", self.dag_name, self.run_id, _why(exc))
                    return
                time.sleep(delay)
                delay = min(delay * 2, BACKOFF_S[1])

    def _ship_logs(self, record: RunRecord | None = None) -> None:
        record = record or self._read_record()
        if record is None:
            return
        chunks = list(self._log_chunks(record))
        if not chunks:
            return
        try:
            response = self._stub.StreamLogs(iter([c for c, _ in chunks]), timeout=RPC_TIMEOUT_S)
        except grpc.RpcError as exc:
            logger.debug("worker: log stream of %s/%s failed: %s; will resend", self.dag_name, self.run_id, _why(exc))
            return
        if response.error:
            logger.warning("worker: logs of %s/%s: %s", self.dag_name, self.run_id, response.error)
        for chunk, path in chunks:
            self._offsets[path] = chunk.byte_offset + len(chunk.data)

    def _log_chunks(self, record: RunRecord):
        files: list[tuple[str, str, int]] = []
        if record.log:
            files.append((record.log, "", pb.LOG_STREAM_TYPE_SCHEDULER))
        from dagu.store import HANDLER_KEYS

        for node in [*record.nodes, *(getattr(record, a) for a in HANDLER_KEYS.values())]:
            if node is None:
                continue
            if node.stdout:
                files.append((node.stdout, node.name, pb.LOG_STREAM_TYPE_STDOUT))
            if node.stderr and node.stderr != node.stdout:
                files.append((node.stderr, node.name, pb.LOG_STREAM_TYPE_STDERR))
        for path, step, stream in files:
            shipped = path in self._offsets
            offset = self._offsets.get(path, 0)
            try:
                with open(path, "rb") as f:
                    f.seek(offset)
                    data = f.read(LOG_CHUNK_BYTES)
                    if not data and not shipped:  # an empty log still exists on the coordinator
                        yield pb.LogChunk(worker_id=self._worker.opts.worker_id, dag_run_id=self.run_id,
                                          dag_name=self.dag_name, step_name=step, stream_type=stream,
                                          file_name=os.path.basename(path), byte_offset=0), path
                    while data:
                        yield pb.LogChunk(worker_id=self._worker.opts.worker_id, dag_run_id=self.run_id,
                                          dag_name=self.dag_name, step_name=step, stream_type=stream, data=data,
                                          file_name=os.path.basename(path), byte_offset=offset), path
                        offset += len(data)
                        data = f.read(LOG_CHUNK_BYTES)
            except FileNotFoundError:
                continue

    def _read_record(self) -> RunRecord | None:
        try:
            if self._status_path is None:
                run = self._store.find_run(self.dag_name, self.run_id)
                self._status_path = self._store.latest_attempt(run).status_path
            return read_status(self._status_path)
        except (NotFound, DaguError, OSError):
            return None

    def _failed_record(self, exit_code: int | None) -> RunRecord:
        tail = ""
        with contextlib.suppress(OSError):
            tail = self._log_path.read_text(errors="replace")[-500:].strip()
        why = f"the run process on worker {self._worker.opts.worker_id} exited with {exit_code} before it recorded a status"
        return RunRecord(self.dag_name, self.run_id, status=RunStatus.FAILED, error=f"{why}: {tail}" if tail else why)

    def _clear_previous(self) -> None:
        """Forget this worker's own record of the same run (a re-queued run landing here again)."""
        with contextlib.suppress(NotFound, DaguError, OSError):
            run = self._store.find_run(self.dag_name, self.run_id)
            shutil.rmtree(run.path, ignore_errors=True)
            shutil.rmtree(run.log_dir, ignore_errors=True)


def _prepare_fork_server() -> None:
    import multiprocessing

    from transports.grpc.task_process import PRELOAD

    ctx = multiprocessing.get_context("forkserver")
    ctx.set_forkserver_preload(list(PRELOAD))


def _why(exc: BaseException) -> str:
    if isinstance(exc, grpc.RpcError) and hasattr(exc, "code"):
        return f"{exc.code().name}: {exc.details()}"
    return type(exc).__name__
