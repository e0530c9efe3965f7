"""The message vocabulary of the actor runtime: frozen, slotted dataclasses, by section.

This module owns what actors say to each other, not who handles it or how. A
message is a fact or a request, never a handle to someone's state, so every
field is immutable (str, int, float, bool, None, tuples and frozensets of those).
Each class names its sender and receiver in its docstring.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = [
    "StopRun",
    "RunDeadline",
    "Wake",
    "RestartStep",
    "StopStep",
    "StepStarted",
    "StepFinished",
    "StepChanged",
    "RunChanged",
    "ChildExited",
    "GetSnapshot",
    "RestartChild",
    "Enqueued",
    "Drain",
    "RunStarted",
    "RunEnded",
    "Tick",
    "DagFileChanged",
    "SweepZombies",
    "TryLock",
    "LockLost",
    "RemoteTask",
    "SubmitTask",
    "PollerParked",
    "PollerGone",
    "WorkerSeen",
    "GetWorkerProxy",
    "RunAssigned",
    "RunWaiting",
    "StatusReported",
    "LogChunk",
    "WorkerBeat",
    "WorkerLost",
    "RemoteRunEnded",
    "CancelRun",
    "SweepWorkers",
]


# --- Common ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class GetSnapshot:
    """Anyone -> a long-lived actor (by `ask`): reply with the actor's `snapshot()`."""


# --- Supervision ----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ChildExited:
    """Supervised actor -> its supervisor (or parent): the actor stopped, cleanly or not.

    A supervisor that gives up sends this to its own parent with `abnormal=True`:
    escalation is nothing more than the supervisor's own abnormal exit.
    """

    child_id: str
    reason: str  # "stopped", "crashed", "failed to start", "restart intensity exceeded: ..."
    abnormal: bool
    error: str | None = None  # "ValueError: bad input" when an exception caused the exit
    actor_urn: str | None = None  # which incarnation exited; a supervisor ignores stale ones


@dataclass(frozen=True, slots=True)
class RestartChild:
    """SupervisorActor's backoff timer -> that SupervisorActor: a restart's delay is over."""

    child_id: str  # the child whose exit caused the restart (for logs)
    token: int  # names the pending restart; a later exit re-tokens the children it covers


# --- DAG runs and steps -----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class StopRun:
    """CLI signal handler / API -> DagRunActor: stop the run (steps get their stop signal)."""

    reason: str = "stop requested"
    force: bool = False  # a second request: no grace


@dataclass(frozen=True, slots=True)
class RunDeadline:
    """DagRunActor's timeout timer -> DagRunActor: the run's `timeout_sec` has passed."""

    run_id: str


@dataclass(frozen=True, slots=True)
class Wake:
    """DagRunActor's `delay_sec` timer -> DagRunActor: launching may go on."""


@dataclass(frozen=True, slots=True)
class RestartStep:
    """DagRunActor's retry/repeat timer -> DagRunActor: start the next attempt of a step."""

    run_id: str
    node: str


@dataclass(frozen=True, slots=True)
class StopStep:
    """DagRunActor -> StepActor: stop the attempt (signal, then SIGKILL after the grace)."""

    signal_name: str = "SIGTERM"
    grace_s: float = 5.0


@dataclass(frozen=True, slots=True)
class StepStarted:
    """StepActor -> DagRunActor: the attempt's process (or executor) is running."""

    run_id: str
    node: str
    attempt: int


@dataclass(frozen=True, slots=True)
class StepFinished:
    """StepActor -> DagRunActor: one attempt of a step ended."""

    run_id: str
    node: str
    attempt: int
    status: int  # NodeStatus value: succeeded, failed, skipped or aborted
    exit_code: int | None
    error: str | None = None
    output: str | None = None  # captured stdout, trimmed
    timed_out: bool = False
    repeat: bool = False  # the repeat policy asks for another execution
    children: tuple[tuple[str, str], ...] = ()  # (run ID, params) of sub-DAG runs it started


@dataclass(frozen=True, slots=True)
class StepChanged:
    """DagRunActor -> observers (progress view, API, coordinator): a node's status changed."""

    run_id: str
    node: str
    status: int


@dataclass(frozen=True, slots=True)
class RunChanged:
    """DagRunActor -> observers: the run's status changed."""

    run_id: str
    status: int


# --- Queue ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Enqueued:
    """Whoever enqueued a run in-process (scheduler, API) -> QueueActor: an item was pushed."""

    queue: str | None = None  # None: look at every queue


@dataclass(frozen=True, slots=True)
class Drain:
    """QueueActor's watcher thread and timers -> QueueActor: look at the queues now."""

    reason: str = "timer"  # "queue changed", "run ended elsewhere", "safety net", "retry" (for logs)


@dataclass(frozen=True, slots=True)
class RunStarted:
    """Runner -> QueueActor: a run it launched is confirmed started (heartbeat, or status left queued)."""

    run_id: str
    queue: str


@dataclass(frozen=True, slots=True)
class RunEnded:
    """Runner -> QueueActor: the process of a run it launched exited."""

    run_id: str
    queue: str
    exit_code: int | None  # negative: killed by that signal


# --- Scheduler --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Tick:
    """SchedulerActor's timer -> SchedulerActor: the earliest fire time (or a catch-up retry) is due."""


@dataclass(frozen=True, slots=True)
class DagFileChanged:
    """SchedulerActor's DAG-folder watcher thread -> SchedulerActor: this file was added, changed or removed."""

    path: str


@dataclass(frozen=True, slots=True)
class SweepZombies:
    """SchedulerActor's slow timer -> SchedulerActor: mark running runs without a live heartbeat failed."""


@dataclass(frozen=True, slots=True)
class TryLock:
    """SchedulerActor's standby timer -> SchedulerActor: try to take the scheduler lock again."""


@dataclass(frozen=True, slots=True)
class LockLost:
    """SchedulerLock's touch thread -> SchedulerActor: another scheduler now holds the lock."""


# --- Distributed (coordinator, worker proxies; see actors/coordinator.py) ---------------


@dataclass(frozen=True, slots=True)
class RemoteTask:
    """RemoteRunner -> coordinator -> worker: a queued run to execute on a worker, with its DAG's YAML."""

    dag_name: str
    run_id: str
    definition: str  # the DAG's YAML text: the worker shares no disk with us
    params_list: tuple[str, ...] = ()
    params: str = ""
    queue: str = ""
    selector: tuple[tuple[str, str], ...] = ()  # worker_selector, sorted
    trigger: str = ""
    requeue_limit: int = 0  # DAG-level retry_policy.limit: re-queue this often when the worker is lost


@dataclass(frozen=True, slots=True)
class SubmitTask:
    """gRPC Submit/Dispatch handler -> CoordinatorActor (by `ask`): route a task to a worker."""

    task: RemoteTask
    wait: bool = True  # False: 1.30 Dispatch, fail unless an idle eligible poller exists now


@dataclass(frozen=True, slots=True)
class PollerParked:
    """gRPC Poll handler -> CoordinatorActor: a worker waits for a run on `poller_id`."""

    worker_id: str
    poller_id: str
    labels: tuple[tuple[str, str], ...]


@dataclass(frozen=True, slots=True)
class PollerGone:
    """gRPC Poll handler -> CoordinatorActor: the poll ended without a task (client went away)."""

    worker_id: str
    poller_id: str


@dataclass(frozen=True, slots=True)
class WorkerSeen:
    """gRPC Heartbeat handler -> CoordinatorActor (by `ask`): a worker is alive; reply its WorkerProxyActor."""

    worker_id: str
    labels: tuple[tuple[str, str], ...]
    total: int = 0  # max active runs
    busy: int = 0
    running: tuple[tuple[str, str], ...] = ()  # (dag name, run ID)


@dataclass(frozen=True, slots=True)
class GetWorkerProxy:
    """gRPC report handlers -> CoordinatorActor (by `ask`): the WorkerProxyActor of a worker."""

    worker_id: str


@dataclass(frozen=True, slots=True)
class RunAssigned:
    """CoordinatorActor -> WorkerProxyActor: this task was handed to your worker."""

    task: RemoteTask


@dataclass(frozen=True, slots=True)
class RunWaiting:
    """CoordinatorActor -> the submitter's event stream: no eligible worker is free yet."""

    run_id: str
    reason: str


@dataclass(frozen=True, slots=True)
class StatusReported:
    """gRPC ReportStatus handler -> WorkerProxyActor (by `ask`): a remote run's status, after `event`."""

    worker_id: str
    dag_name: str
    run_id: str
    event: StepChanged | RunChanged | None  # None: the run process exited (final)
    record: bytes  # the worker's status record, JSON
    outputs: bytes = b""  # final only: outputs.json's `outputs` map, JSON
    exit_code: int | None = None  # final only


@dataclass(frozen=True, slots=True)
class LogChunk:
    """Worker (gRPC StreamLogs) -> WorkerProxyActor (by `ask`): bytes of one log file of a remote run."""

    worker_id: str
    dag_name: str
    run_id: str
    step: str
    stream: int  # LogStreamType: 1 stdout, 2 stderr, 3 the run log
    file_name: str  # base name of the log file
    offset: int
    data: bytes


@dataclass(frozen=True, slots=True)
class WorkerBeat:
    """gRPC Heartbeat handler -> WorkerProxyActor (by `ask`): runs the worker has; reply the ones to cancel."""

    running: tuple[tuple[str, str], ...]  # (dag name, run ID)


@dataclass(frozen=True, slots=True)
class WorkerLost:
    """CoordinatorActor -> WorkerProxyActor: no heartbeat for too long; fail (or re-queue) its runs."""

    reason: str


@dataclass(frozen=True, slots=True)
class RemoteRunEnded:
    """WorkerProxyActor -> CoordinatorActor: a run on its worker ended (or never started)."""

    worker_id: str
    dag_name: str
    run_id: str


@dataclass(frozen=True, slots=True)
class CancelRun:
    """gRPC RequestCancel handler -> CoordinatorActor -> WorkerProxyActor: stop this run on its worker."""

    dag_name: str
    run_id: str


@dataclass(frozen=True, slots=True)
class SweepWorkers:
    """CoordinatorActor's timer -> CoordinatorActor: mark workers without a recent heartbeat lost."""
