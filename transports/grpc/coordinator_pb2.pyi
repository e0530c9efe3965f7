from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class Operation(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    OPERATION_UNSPECIFIED: _ClassVar[Operation]
    OPERATION_START: _ClassVar[Operation]
    OPERATION_RETRY: _ClassVar[Operation]

class RunEventKind(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    RUN_EVENT_UNSPECIFIED: _ClassVar[RunEventKind]
    RUN_EVENT_ACCEPTED: _ClassVar[RunEventKind]
    RUN_EVENT_WAITING: _ClassVar[RunEventKind]
    RUN_EVENT_STARTED: _ClassVar[RunEventKind]
    RUN_EVENT_ENDED: _ClassVar[RunEventKind]

class WorkerHealthStatus(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    WORKER_HEALTH_STATUS_UNSPECIFIED: _ClassVar[WorkerHealthStatus]
    WORKER_HEALTH_STATUS_HEALTHY: _ClassVar[WorkerHealthStatus]
    WORKER_HEALTH_STATUS_WARNING: _ClassVar[WorkerHealthStatus]
    WORKER_HEALTH_STATUS_UNHEALTHY: _ClassVar[WorkerHealthStatus]

class StatusEventKind(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    STATUS_EVENT_UNSPECIFIED: _ClassVar[StatusEventKind]
    STATUS_EVENT_STEP_CHANGED: _ClassVar[StatusEventKind]
    STATUS_EVENT_RUN_CHANGED: _ClassVar[StatusEventKind]
    STATUS_EVENT_FINAL: _ClassVar[StatusEventKind]

class LogStreamType(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    LOG_STREAM_TYPE_UNSPECIFIED: _ClassVar[LogStreamType]
    LOG_STREAM_TYPE_STDOUT: _ClassVar[LogStreamType]
    LOG_STREAM_TYPE_STDERR: _ClassVar[LogStreamType]
    LOG_STREAM_TYPE_SCHEDULER: _ClassVar[LogStreamType]
OPERATION_UNSPECIFIED: Operation
OPERATION_START: Operation
OPERATION_RETRY: Operation
RUN_EVENT_UNSPECIFIED: RunEventKind
RUN_EVENT_ACCEPTED: RunEventKind
RUN_EVENT_WAITING: RunEventKind
RUN_EVENT_STARTED: RunEventKind
RUN_EVENT_ENDED: RunEventKind
WORKER_HEALTH_STATUS_UNSPECIFIED: WorkerHealthStatus
WORKER_HEALTH_STATUS_HEALTHY: WorkerHealthStatus
WORKER_HEALTH_STATUS_WARNING: WorkerHealthStatus
WORKER_HEALTH_STATUS_UNHEALTHY: WorkerHealthStatus
STATUS_EVENT_UNSPECIFIED: StatusEventKind
STATUS_EVENT_STEP_CHANGED: StatusEventKind
STATUS_EVENT_RUN_CHANGED: StatusEventKind
STATUS_EVENT_FINAL: StatusEventKind
LOG_STREAM_TYPE_UNSPECIFIED: LogStreamType
LOG_STREAM_TYPE_STDOUT: LogStreamType
LOG_STREAM_TYPE_STDERR: LogStreamType
LOG_STREAM_TYPE_SCHEDULER: LogStreamType

class Task(_message.Message):
    __slots__ = ("root_dag_run_name", "root_dag_run_id", "parent_dag_run_name", "parent_dag_run_id", "dag_run_id", "operation", "target", "params", "step", "worker_selector", "definition", "worker_id", "params_list", "queue_name", "trigger_type", "requeue_limit")
    class WorkerSelectorEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    ROOT_DAG_RUN_NAME_FIELD_NUMBER: _ClassVar[int]
    ROOT_DAG_RUN_ID_FIELD_NUMBER: _ClassVar[int]
    PARENT_DAG_RUN_NAME_FIELD_NUMBER: _ClassVar[int]
    PARENT_DAG_RUN_ID_FIELD_NUMBER: _ClassVar[int]
    DAG_RUN_ID_FIELD_NUMBER: _ClassVar[int]
    OPERATION_FIELD_NUMBER: _ClassVar[int]
    TARGET_FIELD_NUMBER: _ClassVar[int]
    PARAMS_FIELD_NUMBER: _ClassVar[int]
    STEP_FIELD_NUMBER: _ClassVar[int]
    WORKER_SELECTOR_FIELD_NUMBER: _ClassVar[int]
    DEFINITION_FIELD_NUMBER: _ClassVar[int]
    WORKER_ID_FIELD_NUMBER: _ClassVar[int]
    PARAMS_LIST_FIELD_NUMBER: _ClassVar[int]
    QUEUE_NAME_FIELD_NUMBER: _ClassVar[int]
    TRIGGER_TYPE_FIELD_NUMBER: _ClassVar[int]
    REQUEUE_LIMIT_FIELD_NUMBER: _ClassVar[int]
    root_dag_run_name: str
    root_dag_run_id: str
    parent_dag_run_name: str
    parent_dag_run_id: str
    dag_run_id: str
    operation: Operation
    target: str
    params: str
    step: str
    worker_selector: _containers.ScalarMap[str, str]
    definition: str
    worker_id: str
    params_list: _containers.RepeatedScalarFieldContainer[str]
    queue_name: str
    trigger_type: str
    requeue_limit: int
    def __init__(self, root_dag_run_name: _Optional[str] = ..., root_dag_run_id: _Optional[str] = ..., parent_dag_run_name: _Optional[str] = ..., parent_dag_run_id: _Optional[str] = ..., dag_run_id: _Optional[str] = ..., operation: _Optional[_Union[Operation, str]] = ..., target: _Optional[str] = ..., params: _Optional[str] = ..., step: _Optional[str] = ..., worker_selector: _Optional[_Mapping[str, str]] = ..., definition: _Optional[str] = ..., worker_id: _Optional[str] = ..., params_list: _Optional[_Iterable[str]] = ..., queue_name: _Optional[str] = ..., trigger_type: _Optional[str] = ..., requeue_limit: _Optional[int] = ...) -> None: ...

class PollRequest(_message.Message):
    __slots__ = ("worker_id", "poller_id", "labels")
    class LabelsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    WORKER_ID_FIELD_NUMBER: _ClassVar[int]
    POLLER_ID_FIELD_NUMBER: _ClassVar[int]
    LABELS_FIELD_NUMBER: _ClassVar[int]
    worker_id: str
    poller_id: str
    labels: _containers.ScalarMap[str, str]
    def __init__(self, worker_id: _Optional[str] = ..., poller_id: _Optional[str] = ..., labels: _Optional[_Mapping[str, str]] = ...) -> None: ...

class PollResponse(_message.Message):
    __slots__ = ("task",)
    TASK_FIELD_NUMBER: _ClassVar[int]
    task: Task
    def __init__(self, task: _Optional[_Union[Task, _Mapping]] = ...) -> None: ...

class DispatchRequest(_message.Message):
    __slots__ = ("task",)
    TASK_FIELD_NUMBER: _ClassVar[int]
    task: Task
    def __init__(self, task: _Optional[_Union[Task, _Mapping]] = ...) -> None: ...

class DispatchResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class RunEvent(_message.Message):
    __slots__ = ("kind", "dag_run_id", "worker_id", "reason", "status", "started", "has_exit_code", "exit_code")
    KIND_FIELD_NUMBER: _ClassVar[int]
    DAG_RUN_ID_FIELD_NUMBER: _ClassVar[int]
    WORKER_ID_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    STARTED_FIELD_NUMBER: _ClassVar[int]
    HAS_EXIT_CODE_FIELD_NUMBER: _ClassVar[int]
    EXIT_CODE_FIELD_NUMBER: _ClassVar[int]
    kind: RunEventKind
    dag_run_id: str
    worker_id: str
    reason: str
    status: int
    started: bool
    has_exit_code: bool
    exit_code: int
    def __init__(self, kind: _Optional[_Union[RunEventKind, str]] = ..., dag_run_id: _Optional[str] = ..., worker_id: _Optional[str] = ..., reason: _Optional[str] = ..., status: _Optional[int] = ..., started: _Optional[bool] = ..., has_exit_code: _Optional[bool] = ..., exit_code: _Optional[int] = ...) -> None: ...

class RunningTask(_message.Message):
    __slots__ = ("dag_run_id", "dag_name", "started_at", "root_dag_run_name", "root_dag_run_id", "parent_dag_run_name", "parent_dag_run_id")
    DAG_RUN_ID_FIELD_NUMBER: _ClassVar[int]
    DAG_NAME_FIELD_NUMBER: _ClassVar[int]
    STARTED_AT_FIELD_NUMBER: _ClassVar[int]
    ROOT_DAG_RUN_NAME_FIELD_NUMBER: _ClassVar[int]
    ROOT_DAG_RUN_ID_FIELD_NUMBER: _ClassVar[int]
    PARENT_DAG_RUN_NAME_FIELD_NUMBER: _ClassVar[int]
    PARENT_DAG_RUN_ID_FIELD_NUMBER: _ClassVar[int]
    dag_run_id: str
    dag_name: str
    started_at: int
    root_dag_run_name: str
    root_dag_run_id: str
    parent_dag_run_name: str
    parent_dag_run_id: str
    def __init__(self, dag_run_id: _Optional[str] = ..., dag_name: _Optional[str] = ..., started_at: _Optional[int] = ..., root_dag_run_name: _Optional[str] = ..., root_dag_run_id: _Optional[str] = ..., parent_dag_run_name: _Optional[str] = ..., parent_dag_run_id: _Optional[str] = ...) -> None: ...

class WorkerStats(_message.Message):
    __slots__ = ("total_pollers", "busy_pollers", "running_tasks")
    TOTAL_POLLERS_FIELD_NUMBER: _ClassVar[int]
    BUSY_POLLERS_FIELD_NUMBER: _ClassVar[int]
    RUNNING_TASKS_FIELD_NUMBER: _ClassVar[int]
    total_pollers: int
    busy_pollers: int
    running_tasks: _containers.RepeatedCompositeFieldContainer[RunningTask]
    def __init__(self, total_pollers: _Optional[int] = ..., busy_pollers: _Optional[int] = ..., running_tasks: _Optional[_Iterable[_Union[RunningTask, _Mapping]]] = ...) -> None: ...

class HeartbeatRequest(_message.Message):
    __slots__ = ("worker_id", "labels", "stats")
    class LabelsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    WORKER_ID_FIELD_NUMBER: _ClassVar[int]
    LABELS_FIELD_NUMBER: _ClassVar[int]
    STATS_FIELD_NUMBER: _ClassVar[int]
    worker_id: str
    labels: _containers.ScalarMap[str, str]
    stats: WorkerStats
    def __init__(self, worker_id: _Optional[str] = ..., labels: _Optional[_Mapping[str, str]] = ..., stats: _Optional[_Union[WorkerStats, _Mapping]] = ...) -> None: ...

class RunRef(_message.Message):
    __slots__ = ("dag_name", "dag_run_id")
    DAG_NAME_FIELD_NUMBER: _ClassVar[int]
    DAG_RUN_ID_FIELD_NUMBER: _ClassVar[int]
    dag_name: str
    dag_run_id: str
    def __init__(self, dag_name: _Optional[str] = ..., dag_run_id: _Optional[str] = ...) -> None: ...

class HeartbeatResponse(_message.Message):
    __slots__ = ("cancelled_runs",)
    CANCELLED_RUNS_FIELD_NUMBER: _ClassVar[int]
    cancelled_runs: _containers.RepeatedCompositeFieldContainer[RunRef]
    def __init__(self, cancelled_runs: _Optional[_Iterable[_Union[RunRef, _Mapping]]] = ...) -> None: ...

class GetWorkersRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class WorkerInfo(_message.Message):
    __slots__ = ("worker_id", "poller_id", "labels", "connected_at", "total_pollers", "busy_pollers", "running_tasks", "last_heartbeat_at", "health_status")
    class LabelsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    WORKER_ID_FIELD_NUMBER: _ClassVar[int]
    POLLER_ID_FIELD_NUMBER: _ClassVar[int]
    LABELS_FIELD_NUMBER: _ClassVar[int]
    CONNECTED_AT_FIELD_NUMBER: _ClassVar[int]
    TOTAL_POLLERS_FIELD_NUMBER: _ClassVar[int]
    BUSY_POLLERS_FIELD_NUMBER: _ClassVar[int]
    RUNNING_TASKS_FIELD_NUMBER: _ClassVar[int]
    LAST_HEARTBEAT_AT_FIELD_NUMBER: _ClassVar[int]
    HEALTH_STATUS_FIELD_NUMBER: _ClassVar[int]
    worker_id: str
    poller_id: str
    labels: _containers.ScalarMap[str, str]
    connected_at: int
    total_pollers: int
    busy_pollers: int
    running_tasks: _containers.RepeatedCompositeFieldContainer[RunningTask]
    last_heartbeat_at: int
    health_status: WorkerHealthStatus
    def __init__(self, worker_id: _Optional[str] = ..., poller_id: _Optional[str] = ..., labels: _Optional[_Mapping[str, str]] = ..., connected_at: _Optional[int] = ..., total_pollers: _Optional[int] = ..., busy_pollers: _Optional[int] = ..., running_tasks: _Optional[_Iterable[_Union[RunningTask, _Mapping]]] = ..., last_heartbeat_at: _Optional[int] = ..., health_status: _Optional[_Union[WorkerHealthStatus, str]] = ...) -> None: ...

class GetWorkersResponse(_message.Message):
    __slots__ = ("workers",)
    WORKERS_FIELD_NUMBER: _ClassVar[int]
    workers: _containers.RepeatedCompositeFieldContainer[WorkerInfo]
    def __init__(self, workers: _Optional[_Iterable[_Union[WorkerInfo, _Mapping]]] = ...) -> None: ...

class ReportStatusRequest(_message.Message):
    __slots__ = ("worker_id", "dag_name", "dag_run_id", "kind", "node", "status", "record_json", "outputs_json", "has_exit_code", "exit_code")
    WORKER_ID_FIELD_NUMBER: _ClassVar[int]
    DAG_NAME_FIELD_NUMBER: _ClassVar[int]
    DAG_RUN_ID_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    NODE_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    RECORD_JSON_FIELD_NUMBER: _ClassVar[int]
    OUTPUTS_JSON_FIELD_NUMBER: _ClassVar[int]
    HAS_EXIT_CODE_FIELD_NUMBER: _ClassVar[int]
    EXIT_CODE_FIELD_NUMBER: _ClassVar[int]
    worker_id: str
    dag_name: str
    dag_run_id: str
    kind: StatusEventKind
    node: str
    status: int
    record_json: bytes
    outputs_json: bytes
    has_exit_code: bool
    exit_code: int
    def __init__(self, worker_id: _Optional[str] = ..., dag_name: _Optional[str] = ..., dag_run_id: _Optional[str] = ..., kind: _Optional[_Union[StatusEventKind, str]] = ..., node: _Optional[str] = ..., status: _Optional[int] = ..., record_json: _Optional[bytes] = ..., outputs_json: _Optional[bytes] = ..., has_exit_code: _Optional[bool] = ..., exit_code: _Optional[int] = ...) -> None: ...

class ReportStatusResponse(_message.Message):
    __slots__ = ("accepted", "error", "stop")
    ACCEPTED_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    STOP_FIELD_NUMBER: _ClassVar[int]
    accepted: bool
    error: str
    stop: bool
    def __init__(self, accepted: _Optional[bool] = ..., error: _Optional[str] = ..., stop: _Optional[bool] = ...) -> None: ...

class LogChunk(_message.Message):
    __slots__ = ("worker_id", "dag_run_id", "dag_name", "step_name", "stream_type", "data", "sequence", "is_final", "file_name", "byte_offset")
    WORKER_ID_FIELD_NUMBER: _ClassVar[int]
    DAG_RUN_ID_FIELD_NUMBER: _ClassVar[int]
    DAG_NAME_FIELD_NUMBER: _ClassVar[int]
    STEP_NAME_FIELD_NUMBER: _ClassVar[int]
    STREAM_TYPE_FIELD_NUMBER: _ClassVar[int]
    DATA_FIELD_NUMBER: _ClassVar[int]
    SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    IS_FINAL_FIELD_NUMBER: _ClassVar[int]
    FILE_NAME_FIELD_NUMBER: _ClassVar[int]
    BYTE_OFFSET_FIELD_NUMBER: _ClassVar[int]
    worker_id: str
    dag_run_id: str
    dag_name: str
    step_name: str
    stream_type: LogStreamType
    data: bytes
    sequence: int
    is_final: bool
    file_name: str
    byte_offset: int
    def __init__(self, worker_id: _Optional[str] = ..., dag_run_id: _Optional[str] = ..., dag_name: _Optional[str] = ..., step_name: _Optional[str] = ..., stream_type: _Optional[_Union[LogStreamType, str]] = ..., data: _Optional[bytes] = ..., sequence: _Optional[int] = ..., is_final: _Optional[bool] = ..., file_name: _Optional[str] = ..., byte_offset: _Optional[int] = ...) -> None: ...

class StreamLogsResponse(_message.Message):
    __slots__ = ("chunks_received", "bytes_written", "error")
    CHUNKS_RECEIVED_FIELD_NUMBER: _ClassVar[int]
    BYTES_WRITTEN_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    chunks_received: int
    bytes_written: int
    error: str
    def __init__(self, chunks_received: _Optional[int] = ..., bytes_written: _Optional[int] = ..., error: _Optional[str] = ...) -> None: ...

class CancelRequest(_message.Message):
    __slots__ = ("dag_name", "dag_run_id")
    DAG_NAME_FIELD_NUMBER: _ClassVar[int]
    DAG_RUN_ID_FIELD_NUMBER: _ClassVar[int]
    dag_name: str
    dag_run_id: str
    def __init__(self, dag_name: _Optional[str] = ..., dag_run_id: _Optional[str] = ...) -> None: ...

class CancelResponse(_message.Message):
    __slots__ = ("accepted", "error")
    ACCEPTED_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    accepted: bool
    error: str
    def __init__(self, accepted: _Optional[bool] = ..., error: _Optional[str] = ...) -> None: ...
