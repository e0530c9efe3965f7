"""File-backed persistence of run history: run/attempt folders, status files, heartbeats.

Everything here is plain files under the data and log folders; nothing imports an
actor. The DagRunActor owns a run's `StatusWriter`; everyone else reads.
"""

from dagu.store.fsutil import atomic_write, dir_lock, fsync_dir
from dagu.store.proc import Heartbeat, ProcEntry, find_heartbeat, is_alive, list_alive
from dagu.store.records import (
    HANDLER_KEYS,
    ChildRun,
    DagRef,
    NodeRecord,
    RunRecord,
    format_time,
    parse_time,
    utc_now,
)
from dagu.store.naming import new_run_id, safe_name, validate_run_id
from dagu.store.runs import CANCEL_FLAG, AttemptHandle, RunHandle, RunStore
from dagu.store.status_log import StatusWriter, encode_snapshot, read_status, rewrite_status

__all__ = [
    "atomic_write",
    "dir_lock",
    "fsync_dir",
    "Heartbeat",
    "ProcEntry",
    "find_heartbeat",
    "is_alive",
    "list_alive",
    "HANDLER_KEYS",
    "ChildRun",
    "DagRef",
    "NodeRecord",
    "RunRecord",
    "format_time",
    "parse_time",
    "utc_now",
    "CANCEL_FLAG",
    "AttemptHandle",
    "RunHandle",
    "RunStore",
    "new_run_id",
    "safe_name",
    "validate_run_id",
    "StatusWriter",
    "encode_snapshot",
    "read_status",
    "rewrite_status",
]
