"""The status record of one run attempt, and its camelCase JSON shape (service.md 4.4).

`RunRecord` and `NodeRecord` are the DagRunActor's mutable working copy; this module
only converts them to and from JSON-ready dicts. Writing and replaying the status
file is `status_log`'s job.

Conventions of the JSON form:
- Times are ISO-8601 UTC strings with milliseconds, `2026-11-24T18:07:36.437Z`; we
  keep milliseconds in memory too (`utc_now()`), so a record survives a round trip.
  An unset time is written as `"-"` for a node's `startedAt`/`finishedAt` (as Dagu
  does) and left out everywhere else. Readers accept `"-"`, `""`, `null` or absence.
  `createdAt` is unix milliseconds (an int), as Dagu writes it.
- Optional fields equal to their default are left out (`error: ""`, `children: []`);
  a node's counters (`retryCount`, `doneCount`) are always written.
- `statusLabel` is derived from `status` on output and ignored on input.
- Keys we don't model (approval fields, `preconditions`, ...) are kept in `extra`
  and written back unchanged.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from dagu.status import NodeStatus, RunStatus, TriggerType

__all__ = [
    "HANDLER_KEYS",
    "DagRef",
    "ChildRun",
    "NodeRecord",
    "RunRecord",
    "utc_now",
    "format_time",
    "parse_time",
    "encode_node_fields",
    "encode_run_fields",
]

# Status-record key of each handler node -> RunRecord attribute.
HANDLER_KEYS: Mapping[str, str] = {
    "onInit": "on_init",
    "onExit": "on_exit",
    "onSuccess": "on_success",
    "onFailure": "on_failure",
    "onCancel": "on_cancel",
    "onWait": "on_wait",
}

_UNSET_TIMES = (None, "", "-")


def utc_now() -> datetime:
    """The current UTC time cut to milliseconds, the precision the status file keeps."""
    now = datetime.now(UTC)
    return now.replace(microsecond=now.microsecond // 1000 * 1000)


def format_time(value: datetime) -> str:
    """`2026-11-24T18:07:36.437Z`; a naive datetime is taken as local time (Python's rule)."""
    value = value.astimezone(UTC)
    return f"{value:%Y-%m-%dT%H:%M:%S}.{value.microsecond // 1000:03d}Z"


def parse_time(value: Any) -> datetime | None:
    """Inverse of `format_time`; also reads unix milliseconds and Dagu's unset markers."""
    if value in _UNSET_TIMES:
        return None
    if isinstance(value, int) and not isinstance(value, bool):
        # Integer arithmetic: float division could land a microsecond off.
        return datetime.fromtimestamp(value // 1000, UTC).replace(microsecond=value % 1000 * 1000)
    if not isinstance(value, str):
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


@dataclass(frozen=True, slots=True)
class DagRef:
    """A run named by DAG name and run ID (`root`, `parent` in the record)."""

    name: str
    id: str

    def to_json(self) -> dict[str, str]:
        return {"name": self.name, "id": self.id}

    @classmethod
    def from_json(cls, data: Any) -> DagRef | None:
        if not isinstance(data, Mapping) or not (data.get("name") or data.get("id")):
            return None
        return cls(str(data.get("name") or ""), str(data.get("id") or ""))


@dataclass(frozen=True, slots=True)
class ChildRun:
    """A sub-run started by a node (`children[]` in the record)."""

    run_id: str
    params: str = ""

    def to_json(self) -> dict[str, str]:
        return {"dagRunId": self.run_id, "params": self.params}

    @classmethod
    def from_json(cls, data: Any) -> ChildRun:
        data = data if isinstance(data, Mapping) else {}
        return cls(str(data.get("dagRunId") or ""), str(data.get("params") or ""))


@dataclass(slots=True)
class NodeRecord:
    """The state of one step (or handler) within a run attempt."""

    step: dict[str, Any] = field(default_factory=dict)  # name, id, description, commands, depends, output...
    stdout: str = ""  # absolute log path; "" if the step never ran
    stderr: str = ""
    started_at: datetime | None = None
    finished_at: datetime | None = None
    status: NodeStatus = NodeStatus.NOT_STARTED
    retried_at: datetime | None = None
    retry_count: int = 0
    done_count: int = 0
    repeated: bool = False
    error: str = ""
    exit_code: int | None = None
    children: list[ChildRun] = field(default_factory=list)
    output_variables: dict[str, str] = field(default_factory=dict)  # NAME -> "NAME=value"
    extra: dict[str, Any] = field(default_factory=dict)  # keys we don't model, kept verbatim

    @property
    def name(self) -> str:
        return str(self.step.get("name", ""))

    @property
    def status_label(self) -> str:
        return self.status.label

    def to_json(self) -> dict[str, Any]:
        """The camelCase dict of service.md 4.4."""
        return _to_json(self, _NODE_FIELDS)

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> NodeRecord:
        """Build from a status-record dict; unknown keys go to `extra`, bad values to defaults."""
        return cls(**_from_json(data, _NODE_FIELDS))


@dataclass(slots=True)
class RunRecord:
    """The status of one run attempt: what `status.jsonl` holds."""

    name: str
    run_id: str
    attempt_id: str = ""
    root: DagRef | None = None  # None on construction: this run is its own root
    parent: DagRef | None = None
    status: RunStatus = RunStatus.NOT_STARTED
    worker_id: str = ""
    pid: int = 0
    nodes: list[NodeRecord] = field(default_factory=list)
    on_init: NodeRecord | None = None
    on_exit: NodeRecord | None = None
    on_success: NodeRecord | None = None
    on_failure: NodeRecord | None = None
    on_cancel: NodeRecord | None = None
    on_wait: NodeRecord | None = None
    created_at: datetime | None = None
    queued_at: datetime | None = None
    started_at: datetime | None = None
    finished_at: datetime | None = None
    log: str = ""  # absolute path of the run log
    error: str = ""
    params: str = ""
    params_list: list[str] = field(default_factory=list)
    trigger_type: TriggerType = TriggerType.UNKNOWN
    extra: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.root is None:
            self.root = DagRef(self.name, self.run_id)

    @property
    def status_label(self) -> str:
        return self.status.label

    def node(self, key: int | str) -> NodeRecord:
        """The node at index `key`, or the handler node named `key` (`"onExit"`).

        Raises:
            KeyError: no such node.
        """
        if isinstance(key, int):
            if 0 <= key < len(self.nodes):
                return self.nodes[key]
        elif key in HANDLER_KEYS and (node := getattr(self, HANDLER_KEYS[key])) is not None:
            return node
        raise KeyError(f"run {self.name}/{self.run_id} has no node {key!r}")

    def find_node(self, step_name: str) -> tuple[int | str, NodeRecord]:
        """(key, node) of the step or handler called `step_name`.

        Raises:
            KeyError: no node has that name.
        """
        for i, node in enumerate(self.nodes):
            if node.name == step_name:
                return i, node
        for key, attr in HANDLER_KEYS.items():
            node = getattr(self, attr)
            if node is not None and (node.name == step_name or key == step_name):
                return key, node
        raise KeyError(f"run {self.name}/{self.run_id} has no step {step_name!r}")

    def to_json(self) -> dict[str, Any]:
        """The camelCase dict of service.md 4.4."""
        return _to_json(self, _RUN_FIELDS)

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> RunRecord:
        """Build from a status-record dict; unknown keys go to `extra`, bad values to defaults."""
        kwargs = _from_json(data, _RUN_FIELDS)
        kwargs.setdefault("name", "")
        kwargs.setdefault("run_id", "")
        return cls(**kwargs)


def encode_node_fields(fields: Mapping[str, Any]) -> dict[str, Any]:
    """Turn `{attribute: value}` of a NodeRecord into `{jsonKey: jsonValue}`.

    Raises:
        ValueError: an attribute that NodeRecord doesn't have (a wiring mistake).
    """
    return _encode_fields(fields, _NODE_FIELDS, "NodeRecord")


def encode_run_fields(fields: Mapping[str, Any]) -> dict[str, Any]:
    """Turn `{attribute: value}` of a RunRecord (not nodes) into `{jsonKey: jsonValue}`.

    Raises:
        ValueError: an unknown attribute, or `nodes`/handlers (change those per node).
    """
    if bad := [k for k in fields if k == "nodes" or k in _HANDLER_ATTRS]:
        raise ValueError(f"change nodes one at a time, not through the run: {bad}")
    return _encode_fields(fields, _RUN_FIELDS, "RunRecord")


# ---------------------------------------------------------------------------------------
# Field tables: attribute -> (json key, encode, decode, omit when encoded value is this).
# A field whose "omit" marker is _KEEP is always written.

_KEEP = object()
_Field = tuple[str, Callable[[Any], Any], Callable[[Any], Any], Any]


def _ident(value: Any) -> Any:
    return value


def _enc_time(value: datetime | None) -> str | None:
    return None if value is None else format_time(value)


def _enc_time_dash(value: datetime | None) -> str:
    return "-" if value is None else format_time(value)


def _enc_ms(value: datetime | None) -> int | None:
    return None if value is None else round(value.timestamp() * 1000)


def _dec_str(value: Any) -> str:
    return value if isinstance(value, str) else ("" if value is None else str(value))


def _dec_int(value: Any) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        return 0


def _dec_opt_int(value: Any) -> int | None:
    return None if value is None else _dec_int(value)


def _dec_enum(enum: Any, default: Any) -> Callable[[Any], Any]:
    def decode(value: Any) -> Any:
        try:
            return enum(value) if isinstance(value, int) else enum.from_label(str(value))
        except (KeyError, ValueError):
            return default

    return decode


def _dec_dict(value: Any) -> dict[str, Any]:
    return dict(value) if isinstance(value, Mapping) else {}


def _dec_str_list(value: Any) -> list[str]:
    return [str(v) for v in value] if isinstance(value, list) else []


def _dec_node(value: Any) -> NodeRecord | None:
    return NodeRecord.from_json(value) if isinstance(value, Mapping) else None


def _enc_node(value: NodeRecord | None) -> dict[str, Any] | None:
    return None if value is None else value.to_json()


_NODE_FIELDS: dict[str, _Field] = {
    "step": ("step", _ident, _dec_dict, _KEEP),
    "stdout": ("stdout", _ident, _dec_str, _KEEP),
    "stderr": ("stderr", _ident, _dec_str, _KEEP),
    "started_at": ("startedAt", _enc_time_dash, parse_time, _KEEP),
    "finished_at": ("finishedAt", _enc_time_dash, parse_time, _KEEP),
    "status": ("status", int, _dec_enum(NodeStatus, NodeStatus.NOT_STARTED), _KEEP),
    "retried_at": ("retriedAt", _enc_time, parse_time, None),
    "retry_count": ("retryCount", _ident, _dec_int, _KEEP),
    "done_count": ("doneCount", _ident, _dec_int, _KEEP),
    "repeated": ("repeated", bool, bool, False),
    "error": ("error", _ident, _dec_str, ""),
    "exit_code": ("exitCode", _ident, _dec_opt_int, None),
    "children": (
        "children",
        lambda v: [c.to_json() for c in v],
        lambda v: [ChildRun.from_json(c) for c in v] if isinstance(v, list) else [],
        [],
    ),
    "output_variables": ("outputVariables", dict, _dec_dict, {}),
}

_RUN_FIELDS: dict[str, _Field] = {
    "root": ("root", lambda v: None if v is None else v.to_json(), DagRef.from_json, None),
    "parent": ("parent", lambda v: None if v is None else v.to_json(), DagRef.from_json, None),
    "name": ("name", _ident, _dec_str, _KEEP),
    "run_id": ("dagRunId", _ident, _dec_str, _KEEP),
    "attempt_id": ("attemptId", _ident, _dec_str, _KEEP),
    "status": ("status", int, _dec_enum(RunStatus, RunStatus.NOT_STARTED), _KEEP),
    "worker_id": ("workerId", _ident, _dec_str, ""),
    "pid": ("pid", _ident, _dec_int, 0),
    "nodes": (
        "nodes",
        lambda v: [n.to_json() for n in v],
        lambda v: [NodeRecord.from_json(n) for n in v if isinstance(n, Mapping)] if isinstance(v, list) else [],
        _KEEP,
    ),
    **{attr: (key, _enc_node, _dec_node, None) for key, attr in HANDLER_KEYS.items()},
    "created_at": ("createdAt", _enc_ms, parse_time, None),
    "queued_at": ("queuedAt", _enc_time, parse_time, None),
    "started_at": ("startedAt", _enc_time, parse_time, None),
    "finished_at": ("finishedAt", _enc_time, parse_time, None),
    "log": ("log", _ident, _dec_str, ""),
    "error": ("error", _ident, _dec_str, ""),
    "params": ("params", _ident, _dec_str, ""),
    "params_list": ("paramsList", list, _dec_str_list, []),
    "trigger_type": ("triggerType", lambda v: v.label, _dec_enum(TriggerType, TriggerType.UNKNOWN), "unknown"),
}

_HANDLER_ATTRS = frozenset(HANDLER_KEYS.values())
_DERIVED_KEYS = frozenset({"statusLabel"})
_NODE_JSON_KEYS = frozenset(f[0] for f in _NODE_FIELDS.values()) | _DERIVED_KEYS
_RUN_JSON_KEYS = frozenset(f[0] for f in _RUN_FIELDS.values()) | _DERIVED_KEYS


def _to_json(record: Any, table: dict[str, _Field]) -> dict[str, Any]:
    data: dict[str, Any] = dict(record.extra)
    for attr, (key, encode, _, omit) in table.items():
        value = encode(getattr(record, attr))
        if omit is _KEEP or value != omit:
            data[key] = value
        if attr == "status":
            data["statusLabel"] = record.status.label
    return data


def _from_json(data: Mapping[str, Any], table: dict[str, _Field]) -> dict[str, Any]:
    known = _NODE_JSON_KEYS if table is _NODE_FIELDS else _RUN_JSON_KEYS
    kwargs: dict[str, Any] = {}
    for attr, (key, _, decode, _omit) in table.items():
        if key in data:
            kwargs[attr] = decode(data[key])
    kwargs["extra"] = {k: v for k, v in data.items() if k not in known}
    return kwargs


def _encode_fields(fields: Mapping[str, Any], table: dict[str, _Field], owner: str) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for attr, value in fields.items():
        spec = table.get(attr)
        if spec is None:
            raise ValueError(f"{owner} has no field {attr!r}")
        out[spec[0]] = spec[1](value)
    return out
