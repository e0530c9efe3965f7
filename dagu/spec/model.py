"""The frozen, validated model of a workflow: what the loader builds and every other layer reads.

This module only defines data. Building it from YAML (key spellings, defaults, checks)
is `dagu.spec.loader`'s job; running it belongs to the actors.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import Enum
from types import MappingProxyType
from typing import Any

__all__ = [
    "EMPTY_MAP",
    "freeze",
    "thaw",
    "DagType",
    "Location",
    "Param",
    "Precondition",
    "ContinueOn",
    "RetryPolicy",
    "RepeatPolicy",
    "Output",
    "Parallel",
    "CronEntry",
    "Schedules",
    "HandlerOn",
    "Step",
    "Dag",
    "HANDLER_NODE_NAMES",
]

EMPTY_MAP: Mapping[str, Any] = MappingProxyType({})


def _empty_map() -> Mapping[str, Any]:
    return EMPTY_MAP


def freeze(value: Any) -> Any:
    """Turn parsed YAML (dicts, lists) into read-only mappings and tuples, recursively."""
    if isinstance(value, Mapping):
        return MappingProxyType({str(k): freeze(v) for k, v in value.items()})
    if isinstance(value, (list, tuple)):
        return tuple(freeze(v) for v in value)
    return value


def thaw(value: Any) -> Any:
    """The inverse of `freeze`: plain dicts and lists, e.g. for JSON output."""
    if isinstance(value, Mapping):
        return {k: thaw(v) for k, v in value.items()}
    if isinstance(value, tuple):
        return [thaw(v) for v in value]
    return value


class DagType(str, Enum):
    CHAIN = "chain"
    GRAPH = "graph"


@dataclass(frozen=True, slots=True)
class Location:
    """Where a node came from: file path and 1-based line and column (0 = unknown)."""

    file: str
    line: int = 0
    column: int = 0


@dataclass(frozen=True, slots=True)
class Param:
    """One run parameter. Positional ones are named "1", "2", ... and have `positional=True`."""

    name: str
    value: str
    positional: bool = False


@dataclass(frozen=True, slots=True)
class Precondition:
    """A condition checked before a DAG or step runs.

    Without `expected`: `condition` is a shell command, exit 0 means met.
    With `expected`: `condition` is evaluated to text and compared line by line with
    `expected` (a `re:` prefix makes it an unanchored regex).
    """

    condition: str
    expected: str | None = None
    negate: bool = False


@dataclass(frozen=True, slots=True)
class ContinueOn:
    """When dependents may run although this step failed or was skipped."""

    failure: bool = False
    skipped: bool = False
    exit_codes: tuple[int, ...] = ()
    output: tuple[str, ...] = ()  # plain substrings or "re:<regex>", matched per stdout line
    mark_success: bool = False


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """Retry of a failed step attempt.

    `limit` and `interval_sec` are ints, or strings holding variables resolved at run time.
    `backoff` is the multiplier (1.0 = constant interval; `backoff: true` loads as 2.0).
    An empty `exit_codes` means: retry on any non-zero exit.
    """

    limit: int | str
    interval_sec: float | str
    backoff: float = 1.0
    max_interval_sec: float | None = None
    exit_codes: tuple[int, ...] = ()


@dataclass(frozen=True, slots=True)
class RepeatPolicy:
    """Repeated execution of a step. `mode` is "while" or "until" (inferred at load)."""

    mode: str
    condition: str | None = None
    expected: str | None = None
    exit_codes: tuple[int, ...] = ()
    interval_sec: float = 0.0
    limit: int = 0  # max total executions; 0 = unlimited
    backoff: float = 1.0
    max_interval_sec: float | None = None


@dataclass(frozen=True, slots=True)
class Output:
    """Capture of a step's stdout into a variable (`output: NAME` or the object form)."""

    name: str  # without a leading "$"
    key: str | None = None  # key in outputs.json; default: camelCase of name
    omit: bool = False  # leave out of outputs.json


@dataclass(frozen=True, slots=True)
class Parallel:
    """Fan-out of a sub-DAG call over items.

    Exactly one of `items` (literal items: strings or frozen mappings) or `expression`
    (a string such as "${LIST}" split at run time) is set.
    """

    items: tuple[Any, ...] | None = None
    expression: str | None = None
    max_concurrent: int = 10


@dataclass(frozen=True, slots=True)
class CronEntry:
    """One cron expression; `tz` is set when the text carried `CRON_TZ=` or `TZ=`."""

    expression: str  # the 5 fields only, without the TZ prefix
    tz: str | None = None
    text: str = ""  # as written in the file


@dataclass(frozen=True, slots=True)
class Schedules:
    start: tuple[CronEntry, ...] = ()
    stop: tuple[CronEntry, ...] = ()
    restart: tuple[CronEntry, ...] = ()

    def __bool__(self) -> bool:
        return bool(self.start or self.stop or self.restart)


@dataclass(frozen=True, slots=True)
class Step:
    """One step, with every field resolved to a single canonical spelling and type.

    `type` is the executor name after resolution (dag-spec 3.3): "command" for shell
    commands and scripts, "dag" for `call`, "parallel" for `parallel`, else the
    executor (http, ssh, docker, ...). Unknown executor names are kept as written.
    `commands` holds one entry per shell invocation: a string `command` gives one
    entry; a list `command` gives one entry per item (run in order).
    """

    name: str
    location: Location
    id: str | None = None
    description: str = ""
    type: str = "command"
    config: Mapping[str, Any] = field(default_factory=_empty_map)  # executor config (`config:`/`with:`), frozen
    commands: tuple[str, ...] = ()
    script: str | None = None
    shell: str | None = None  # as written; None = inherit from the DAG
    shell_args: tuple[str, ...] = ()
    shell_packages: tuple[str, ...] = ()
    working_dir: str | None = None  # as written; resolved at run time
    depends: tuple[str, ...] = ()  # step names (ids already rewritten to names)
    explicit_no_depends: bool = False  # `depends: []` (opts out of chain injection)
    env: tuple[tuple[str, str], ...] = ()  # in source order, values unevaluated
    preconditions: tuple[Precondition, ...] = ()
    continue_on: ContinueOn = ContinueOn()
    retry_policy: RetryPolicy | None = None
    repeat_policy: RepeatPolicy | None = None
    timeout_sec: int = 0
    signal_on_stop: str | None = None  # full name such as "SIGINT"
    mail_on_error: bool = False
    output: Output | None = None
    stdout: str | None = None
    stderr: str | None = None
    log_output: str | None = None  # "separate" | "merged" | None = DAG's
    call: str | None = None  # sub-DAG name or path
    params: str | None = None  # params for `call`, normalised to a params string
    parallel: Parallel | None = None
    worker_selector: Mapping[str, str] = field(default_factory=_empty_map)
    container: Any = None  # str or frozen mapping
    llm: Mapping[str, Any] | None = None
    messages: tuple[Any, ...] = ()
    extras: Mapping[str, Any] = field(default_factory=_empty_map)  # accepted 2.x-only step keys kept as written

    @property
    def is_script(self) -> bool:
        return self.script is not None


@dataclass(frozen=True, slots=True)
class HandlerOn:
    """Lifecycle hooks; each is a Step (its name is fixed to the node name, e.g. "onExit")."""

    init: Step | None = None
    success: Step | None = None
    failure: Step | None = None
    abort: Step | None = None
    exit: Step | None = None
    wait: Step | None = None

    def items(self) -> tuple[tuple[str, Step], ...]:
        """(hook key, step) for every hook that is set, in declaration order."""
        pairs = (
            ("init", self.init),
            ("success", self.success),
            ("failure", self.failure),
            ("abort", self.abort),
            ("exit", self.exit),
            ("wait", self.wait),
        )
        return tuple((k, s) for k, s in pairs if s is not None)


# Hook key -> node name as stored in status records (1.30 names; abort is "onCancel").
HANDLER_NODE_NAMES: Mapping[str, str] = MappingProxyType(
    {
        "init": "onInit",
        "success": "onSuccess",
        "failure": "onFailure",
        "abort": "onCancel",
        "exit": "onExit",
        "wait": "onWait",
    }
)


@dataclass(frozen=True, slots=True)
class Dag:
    """A whole workflow document, after the base config merge.

    `steps` is in definition order with chain dependencies already injected into
    `Step.depends`, so the executor only ever reads `depends`. `local_dags` holds the
    later documents of the same file by name (only on the first document).
    """

    name: str
    location: Location
    description: str = ""
    group: str = ""
    type: DagType = DagType.CHAIN
    params: tuple[Param, ...] = ()
    params_text: str = ""  # the params as one string, as written (for display)
    env: tuple[tuple[str, str], ...] = ()
    dotenv: tuple[str, ...] = (".env",)
    schedule: Schedules = Schedules()
    skip_if_successful: bool = False
    catchup_window_s: float | None = None
    overlap_policy: str = "skip"
    queue: str | None = None
    max_active_runs: int = 1
    max_active_steps: int = 0
    timeout_sec: int = 0
    delay_sec: int = 0
    restart_wait_sec: int = 0
    max_clean_up_time_sec: int = 5
    max_output_size: int = 1_048_576
    hist_retention_days: int = 30
    log_dir: str | None = None
    log_output: str = "separate"
    working_dir: str | None = None
    shell: str | None = None
    shell_args: tuple[str, ...] = ()
    handler_on: HandlerOn = HandlerOn()
    preconditions: tuple[Precondition, ...] = ()
    mail_on: Mapping[str, bool] = field(default_factory=_empty_map)  # keys failure/success/wait
    smtp: Mapping[str, Any] = field(default_factory=_empty_map)
    error_mail: Mapping[str, Any] = field(default_factory=_empty_map)
    info_mail: Mapping[str, Any] = field(default_factory=_empty_map)
    wait_mail: Mapping[str, Any] = field(default_factory=_empty_map)
    tags: tuple[str, ...] = ()
    worker_selector: Mapping[str, str] = field(default_factory=_empty_map)
    container: Any = None
    registry_auths: Any = None
    ssh: Mapping[str, Any] | None = None
    llm: Mapping[str, Any] | None = None
    secrets: tuple[Mapping[str, Any], ...] = ()
    run_config: Mapping[str, Any] = field(default_factory=_empty_map)
    extras: Mapping[str, Any] = field(default_factory=_empty_map)  # accepted 2.x-only root keys kept as written
    steps: tuple[Step, ...] = ()
    local_dags: Mapping[str, "Dag"] = field(default_factory=_empty_map)
    source: str = ""  # the YAML text of this document, for dag.json and the API

    @property
    def file(self) -> str:
        return self.location.file

    def step(self, name: str) -> Step:
        """The step called `name`; KeyError if there is none."""
        for s in self.steps:
            if s.name == name:
                return s
        raise KeyError(name)
