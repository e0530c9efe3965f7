"""The API's JSON resource shapes (camelCase, as Dagu serves them): DAG, DAGDetails, Step,
DAGRunSummary, DAGRunDetails, Node, pagination.

Pure conversions from the spec model and the store's records to dicts; no file
access except through the `sub_status` callback handed in by the caller.
"""

from __future__ import annotations

import shlex
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, tzinfo
from typing import TYPE_CHECKING, Any

from dagu.store import HANDLER_KEYS, NodeRecord, RunRecord

if TYPE_CHECKING:
    from dagu.spec.model import Dag, Step

__all__ = [
    "Clock",
    "dag_summary",
    "dag_details",
    "step_doc",
    "run_summary",
    "run_details",
    "node_doc",
    "pagination",
    "commands_doc",
]

# Called with (child DAG name, sub-run ID) -> (status int, label) for `subRuns` entries.
SubStatus = Callable[[str, str], tuple[int, str]]


class Clock:
    """Formats times as RFC 3339 at second precision in the server's zone; unset -> ""."""

    def __init__(self, tz: tzinfo | None = None):
        self.tz = tz

    def fmt(self, value: datetime | None) -> str:
        if value is None:
            return ""
        local = value.astimezone(self.tz) if self.tz is not None else value.astimezone(UTC)
        text = local.replace(microsecond=0).isoformat()
        return text[:-6] + "Z" if text.endswith("+00:00") else text


def dag_summary(dag: Dag) -> dict[str, Any]:
    """`DAG`: the fields a list shows."""
    doc: dict[str, Any] = {"name": dag.name}
    if dag.group:
        doc["group"] = dag.group
    if dag.schedule.start:
        doc["schedule"] = [{"expression": c.text or c.expression} for c in dag.schedule.start]
    if dag.description:
        doc["description"] = dag.description
    if dag.params:
        doc["params"] = [p.value if p.positional else f"{p.name}={p.value}" for p in dag.params]
    if dag.params_text:
        doc["defaultParams"] = dag.params_text
    if dag.tags:
        doc["tags"] = list(dag.tags)
    if dag.queue:
        doc["queue"] = dag.queue
    doc["maxActiveRuns"] = dag.max_active_runs
    if dag.run_config:
        doc["runConfig"] = {
            "disableParamEdit": bool(_get(dag.run_config, "disable_param_edit")),
            "disableRunIdEdit": bool(_get(dag.run_config, "disable_run_id_edit")),
        }
    return doc


def dag_details(dag: Dag) -> dict[str, Any]:
    """`DAGDetails`: the summary plus steps, handlers and run settings."""
    doc = dag_summary(dag)
    doc["steps"] = [step_doc(s) for s in dag.steps]
    handlers = {
        key: step_doc(step)
        for key, step in (
            ("failure", dag.handler_on.failure),
            ("success", dag.handler_on.success),
            ("cancel", dag.handler_on.abort),
            ("exit", dag.handler_on.exit),
        )
        if step is not None
    }
    if handlers:
        doc["handlerOn"] = handlers
    if dag.env:
        doc["env"] = [f"{k}={v}" for k, v in dag.env]
    if dag.log_dir:
        doc["logDir"] = dag.log_dir
    if dag.delay_sec:
        doc["delay"] = dag.delay_sec
    doc["histRetentionDays"] = dag.hist_retention_days
    if dag.preconditions:
        doc["preconditions"] = [_condition(p) for p in dag.preconditions]
    if dag.max_active_steps:
        doc["maxActiveSteps"] = dag.max_active_steps
    if dag.timeout_sec:
        doc["timeoutSec"] = dag.timeout_sec
    return doc


def step_doc(step: Step) -> dict[str, Any]:
    """`Step` of a DAG definition: the command split into `commands[]`."""
    doc: dict[str, Any] = {"name": step.name}
    if step.id:
        doc["id"] = step.id
    if step.description:
        doc["description"] = step.description
    if step.working_dir:
        doc["dir"] = step.working_dir
    if step.commands:
        doc["commands"] = commands_doc(step.commands)
    if step.script is not None:
        doc["script"] = step.script
    if step.stdout:
        doc["stdout"] = step.stdout
    if step.stderr:
        doc["stderr"] = step.stderr
    if step.output is not None:
        doc["output"] = step.output.name
    if step.call:
        doc["call"] = step.call
    if step.params:
        doc["params"] = step.params
    if step.parallel is not None:
        items = list(step.parallel.items) if step.parallel.items is not None else step.parallel.expression
        doc["parallel"] = {"items": _plain(items), "maxConcurrent": step.parallel.max_concurrent}
    if step.depends:
        doc["depends"] = list(step.depends)
    if step.mail_on_error:
        doc["mailOnError"] = True
    if step.preconditions:
        doc["preconditions"] = [_condition(p) for p in step.preconditions]
    if step.timeout_sec:
        doc["timeoutSec"] = step.timeout_sec
    if step.type not in ("command", "dag", "parallel"):
        doc["executorConfig"] = {"type": step.type, "config": _plain(step.config)}
    return doc


def commands_doc(commands: Any) -> list[dict[str, Any]]:
    """Command lines as `[{command, args}]` (split like a shell would, best effort)."""
    out = []
    for text in commands if isinstance(commands, (list, tuple)) else [commands]:
        if isinstance(text, Mapping):
            out.append({"command": str(text.get("command", "")), "args": [str(a) for a in text.get("args") or []]})
            continue
        try:
            words = shlex.split(str(text))
        except ValueError:
            words = str(text).split()
        if words:
            out.append({"command": words[0], "args": words[1:]})
    return out


def run_summary(record: RunRecord, clock: Clock) -> dict[str, Any]:
    """`DAGRunSummary`."""
    root = record.root
    doc: dict[str, Any] = {
        "rootDAGRunName": root.name if root else record.name,
        "rootDAGRunId": root.id if root else record.run_id,
        "dagRunId": record.run_id,
        "name": record.name,
        "status": int(record.status),
        "statusLabel": record.status.label,
        "queuedAt": clock.fmt(record.queued_at),
        "startedAt": clock.fmt(record.started_at),
        "finishedAt": clock.fmt(record.finished_at),
        "log": record.log,
        "params": record.params,
        "workerId": record.worker_id or "local",
    }
    if record.parent is not None:
        doc["parentDAGRunName"] = record.parent.name
        doc["parentDAGRunId"] = record.parent.id
    if record.error:
        doc["error"] = record.error
    return doc


def run_details(record: RunRecord, clock: Clock, sub_status: SubStatus | None = None) -> dict[str, Any]:
    """`DAGRunDetails`: the summary with every node, handlers and preconditions."""
    doc = run_summary(record, clock)
    doc["nodes"] = [node_doc(n, clock, sub_status) for n in record.nodes]
    for key, attr in HANDLER_KEYS.items():
        node = getattr(record, attr)
        if node is not None and key in ("onExit", "onSuccess", "onFailure", "onCancel"):
            doc[key] = node_doc(node, clock, sub_status)
    pre = record.extra.get("preconditions")
    doc["preconditions"] = pre if isinstance(pre, list) else []
    return doc


def node_doc(node: NodeRecord, clock: Clock, sub_status: SubStatus | None = None) -> dict[str, Any]:
    """`Node`: a step's state in a run; sub-runs carry name, status and label too."""
    step = {k: v for k, v in node.step.items() if k not in ("commands", "command", "type")}
    step["name"] = node.name
    if node.step.get("commands"):
        step["commands"] = commands_doc(node.step["commands"])
    doc: dict[str, Any] = {
        "step": step,
        "stdout": node.stdout,
        "stderr": node.stderr,
        "startedAt": clock.fmt(node.started_at),
        "finishedAt": clock.fmt(node.finished_at),
        "status": int(node.status),
        "statusLabel": node.status.label,
        "retryCount": node.retry_count,
        "doneCount": node.done_count,
    }
    if node.error:
        doc["error"] = node.error
    if node.children:
        child_dag = str(node.step.get("call") or "")
        subs = []
        for child in node.children:
            status, label = sub_status(child_dag, child.run_id) if sub_status else (0, "not_started")
            subs.append({"dagRunId": child.run_id, "params": child.params, "name": child_dag,
                         "status": status, "statusLabel": label})
        doc["subRuns"] = subs
    return doc


def pagination(total: int, page: int, per_page: int) -> dict[str, int]:
    """`pagination` as Dagu computes it (next/prev stay on the current page at the edges)."""
    pages = max(1, -(-total // per_page)) if total else 1
    return {
        "totalRecords": total,
        "currentPage": page,
        "totalPages": pages,
        "nextPage": page + 1 if page < pages else page,
        "prevPage": page - 1 if page > 1 else page,
    }


def _condition(p: Any) -> dict[str, Any]:
    doc = {"condition": p.condition}
    if p.expected is not None:
        doc["expected"] = p.expected
    if p.negate:
        doc["negate"] = True
    return doc


def _get(mapping: Mapping[str, Any], snake: str) -> Any:
    if snake in mapping:
        return mapping[snake]
    head, *rest = snake.split("_")
    return mapping.get(head + "".join(w.title() for w in rest))


def _plain(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    return str(value)
