"""`/dag-runs`: run history, inline-spec runs, and one run's status, spec, logs, outputs,
sub-runs and controls (stop, retry, reschedule, dequeue, step status).
"""

from __future__ import annotations

from collections import deque
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from dagu.errors import DaguError, NotFound
from dagu.events import events_dir, publish_once, step_event
from dagu.status import NodeStatus, RunStatus
from dagu.store import RunHandle, RunRecord, new_run_id, read_status, rewrite_status, validate_run_id
from dagu.store.fsutil import atomic_write
from dagu.store.naming import safe_name
from web.api import runs_common as rc
from web.api.common import Api, Req, endpoint
from web.api.launcher import inline_spec_path, spawn_dagu, wait_started
from web.api.shapes import run_details, run_summary
from web.catalog import FILE_NAME_RE, spec_errors
from web.errors import ApiError
from web.security import Permission

__all__ = ["routes", "read_log"]

_HISTORY_LIMIT = 1000
MAX_UNIX_S = 253402300799  # 9999-12-31T23:59:59Z
MAX_LOG_LINES = 10_000_000
_RUN = "/dag-runs/{name}/{dagRunId}"
_SUB = _RUN + "/sub-dag-runs/{subDAGRunId}"


def routes() -> list[Any]:
    R, X = Permission.READ, Permission.RUN
    return [
        endpoint("/dag-runs", "GET", R, list_all),
        endpoint("/dag-runs", "POST", X, run_inline, body=True),
        endpoint("/dag-runs/enqueue", "POST", X, enqueue_inline, body=True),
        endpoint("/dag-runs/{name}", "GET", R, list_of_dag),
        endpoint(_RUN, "GET", R, get_run),
        endpoint(_RUN + "/spec", "GET", R, get_run_spec),
        endpoint(_RUN + "/log", "GET", R, get_run_log),
        endpoint(_RUN + "/steps/{stepName}/log", "GET", R, get_step_log),
        endpoint(_RUN + "/steps/{stepName}/status", "PATCH", X, patch_step_status, body=True),
        endpoint(_RUN + "/outputs", "GET", R, get_outputs),
        endpoint(_RUN + "/stop", "POST", X, stop_run, body=True),
        endpoint(_RUN + "/retry", "POST", X, retry_run, body=True),
        endpoint(_RUN + "/reschedule", "POST", X, reschedule_run, body=True),
        endpoint(_RUN + "/dequeue", "GET", X, dequeue_run),
        endpoint(_RUN + "/sub-dag-runs", "GET", R, list_sub_runs),
        endpoint(_SUB, "GET", R, get_sub_run),
        endpoint(_SUB + "/log", "GET", R, get_sub_run_log),
        endpoint(_SUB + "/steps/{stepName}/log", "GET", R, get_sub_step_log),
        endpoint(_SUB + "/steps/{stepName}/status", "PATCH", X, patch_sub_step_status, body=True),
    ]


# -- history -----------------------------------------------------------------------------


def list_all(api: Api, req: Req) -> dict[str, Any]:
    name = req.query.get("name")
    return {"dagRuns": _history(api, req, _dag_name(name) if name is not None else None)}


def list_of_dag(api: Api, req: Req) -> dict[str, Any]:
    return {"dagRuns": _history(api, req, _dag_name(req.path["name"]))}


def _dag_name(name: str) -> str:
    if not FILE_NAME_RE.match(name):
        raise ApiError.bad_request(f"invalid DAG name {name!r}: use 1-40 letters, digits, '-', '_' or '.'")
    return name


def _history(api: Api, req: Req, name: str | None) -> list[dict[str, Any]]:
    status = req.qint("status")
    if status is not None and status not in RunStatus._value2member_map_:
        raise ApiError.bad_request(f"status must be one of {sorted(RunStatus._value2member_map_)}, got {status}")
    since_s = req.qint("fromDate", low=0, high=MAX_UNIX_S)
    until_s = req.qint("toDate", low=0, high=MAX_UNIX_S)
    if since_s is None and until_s is None:
        # Dagu's rule: without bounds, only today's runs (from 00:00 UTC).
        since = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
        until = None
    else:
        since = _from_unix(since_s, "fromDate") if since_s is not None else None
        until = _from_unix(until_s, "toDate") if until_s is not None else None
    run_filter = req.query.get("dagRunId") or ""
    statuses = {RunStatus(status)} if status is not None else None
    rows = api.runs.list_runs(name, since=since, until=until, statuses=statuses,
                              limit=None if run_filter else _HISTORY_LIMIT)
    records = [rec for _, rec in rows if run_filter in rec.run_id][:_HISTORY_LIMIT]
    return [run_summary(r, api.clock) for r in records]


def _from_unix(value: int, field: str) -> datetime:
    try:
        return datetime.fromtimestamp(value, UTC)
    except (OverflowError, OSError, ValueError):
        raise ApiError.bad_request(f"{field} is not a valid unix time: {value}") from None


# -- one run -----------------------------------------------------------------------------


def get_run(api: Api, req: Req) -> dict[str, Any]:
    run, _, record = rc.find(api, req.path["name"], req.path["dagRunId"])
    return {"dagRunDetails": run_details(record, api.clock, rc.sub_status(api, record, run))}


def get_run_spec(api: Api, req: Req) -> dict[str, Any]:
    _, attempt, _ = rc.find(api, req.path["name"], req.path["dagRunId"])
    try:
        spec = api.runs.read_dag_json(attempt).get("yamlData")
    except (NotFound, ValueError):
        spec = None
    if not isinstance(spec, str):
        raise ApiError.not_found(f"dag-run {attempt.run.run_id} has no stored spec")
    return {"spec": spec}


def get_run_log(api: Api, req: Req) -> dict[str, Any]:
    _, attempt, record = rc.find(api, req.path["name"], req.path["dagRunId"])
    return read_log(record.log or str(attempt.run_log_path), req)


def get_step_log(api: Api, req: Req) -> dict[str, Any]:
    _, _, record = rc.find(api, req.path["name"], req.path["dagRunId"])
    return _step_log(record, req)


def get_outputs(api: Api, req: Req) -> dict[str, Any]:
    _, attempt, record = rc.find(api, req.path["name"], req.path["dagRunId"])
    try:
        doc = api.runs.read_outputs(attempt)
    except (NotFound, ValueError):
        doc = {}
    metadata = doc.get("metadata") if isinstance(doc.get("metadata"), dict) else None
    outputs = doc.get("outputs") if isinstance(doc.get("outputs"), dict) else {}
    if metadata is None:
        metadata = {"dagName": record.name, "dagRunId": record.run_id, "attemptId": record.attempt_id,
                    "status": record.status.label, "completedAt": api.clock.fmt(record.finished_at)}
    return {"metadata": metadata, "outputs": outputs}


def patch_step_status(api: Api, req: Req) -> None:
    _, attempt, record = rc.find(api, req.path["name"], req.path["dagRunId"])
    _set_step_status(api, attempt, record, req)


# -- controls ----------------------------------------------------------------------------


def stop_run(api: Api, req: Req) -> None:
    _, attempt, record = rc.find(api, req.path["name"], req.path["dagRunId"])
    if record.status not in (RunStatus.RUNNING, RunStatus.WAITING):
        raise ApiError(400, "not_running", "DAG is not running")
    rc.request_stop(api, attempt, record)


def retry_run(api: Api, req: Req) -> None:
    name = req.path["name"]
    _, attempt, record = rc.find(api, name, req.path["dagRunId"])
    body_id = req.text("dagRunId")
    if body_id and body_id != record.run_id:
        raise ApiError.bad_request(f"dagRunId in the body ({body_id}) differs from the path ({record.run_id})")
    step = req.text("stepName")
    if step:
        try:
            record.find_node(step)
        except KeyError:
            raise ApiError.not_found(f"step {step} not found in dag-run {record.run_id}") from None
    if record.status.is_active:
        raise ApiError.bad_request(f"dag-run {record.run_id} is still {record.status.label}; stop it before retrying")
    if record.parent is not None:
        raise ApiError.bad_request("retry a sub dag-run through its root run")
    args = ["retry", "-q", "-r", record.run_id, *(["--step", step] if step else []), name]
    before = attempt.attempt_id
    proc = spawn_dagu(api.settings, args, f"{safe_name(name)}.{record.run_id}")
    wait_started(proc, api.runs, name, record.run_id, is_new=lambda rec: rec.attempt_id != before)


def reschedule_run(api: Api, req: Req) -> dict[str, Any]:
    name = req.path["name"]
    _, attempt, record = rc.find(api, name, req.path["dagRunId"])
    try:
        data = api.runs.read_dag_json(attempt)
    except (NotFound, ValueError):
        data = {}
    spec = data.get("yamlData")
    if not isinstance(spec, str):
        raise ApiError.bad_request(f"dag-run {record.run_id} has no stored spec to run again")
    new_name = req.text("dagName") or None
    if new_name and not FILE_NAME_RE.match(new_name):
        raise ApiError.bad_request(f"invalid dagName {new_name!r}")
    dag_name = new_name or record.name
    run_id = validate_run_id(req.text("dagRunId") or new_run_id())
    rc.check_new_run(api, dag_name, run_id)
    original = data.get("file") if isinstance(data.get("file"), str) else ""
    workdir = str(Path(original).parent) if original and Path(original).parent.is_dir() else str(api.settings.dags_dir)
    path = _save_spec(api, spec, record.name, run_id)
    rc.start_process(api, path, dag_name, run_id, name=dag_name, param_args=tuple(record.params_list),
                     working_dir=workdir)
    return {"dagRunId": run_id, "queued": False}


def dequeue_run(api: Api, req: Req) -> None:
    run, attempt, record = rc.find(api, req.path["name"], req.path["dagRunId"])
    rc.dequeue(api, run, attempt, record)


def run_inline(api: Api, req: Req) -> dict[str, Any]:
    spec, dag_name, run_id = _inline(api, req)
    rc.check_new_run(api, dag_name, run_id)
    if req.flag("singleton") and rc.alive_runs(api, dag_name):
        raise ApiError.conflict(f"DAG {dag_name} is already running (singleton mode)")
    path = _save_spec(api, spec, dag_name, run_id)
    rc.start_process(api, path, dag_name, run_id, params=req.text("params"), name=dag_name,
                     working_dir=str(api.settings.dags_dir))
    return {"dagRunId": run_id}


def enqueue_inline(api: Api, req: Req) -> dict[str, Any]:
    from dagu.spec import load_dag_text

    spec, dag_name, run_id = _inline(api, req)
    rc.check_new_run(api, dag_name, run_id)
    written = load_dag_text(spec, f"{dag_name}.yaml").name
    if written != dag_name:
        # The queue later runs the saved file by path, which gives it the spec's own name.
        raise ApiError.bad_request(f"name {dag_name!r} differs from the spec's name {written!r}; drop one of them")
    path = _save_spec(api, spec, dag_name, run_id)
    record = rc.enqueue(api, path, run_id, params=req.text("params"), name=dag_name, queue=req.text("queue"),
                        singleton=req.flag("singleton"), working_dir=str(api.settings.dags_dir))
    return {"dagRunId": record.run_id}


# -- sub-runs ----------------------------------------------------------------------------


def list_sub_runs(api: Api, req: Req) -> dict[str, Any]:
    run, _, record = rc.find(api, req.path["name"], req.path["dagRunId"])
    parent_sub = req.query.get("parentSubDAGRunId")
    if parent_sub:
        run = _sub_handle(api, run, parent_sub)
        record = api.runs.read_latest(run)
    subs = []
    for node in record.nodes:
        for child in node.children:
            entry = {"dagRunId": child.run_id, "params": child.params, "name": str(node.step.get("call") or ""),
                     "status": 0, "statusLabel": RunStatus.NOT_STARTED.label, "startedAt": "", "finishedAt": ""}
            try:
                rec = api.runs.read_latest(api.runs.find_sub_run(run, child.run_id))
            except (NotFound, DaguError):
                rec = None
            if rec is not None:
                entry.update(name=rec.name or entry["name"], status=int(rec.status), statusLabel=rec.status.label,
                             startedAt=api.clock.fmt(rec.started_at), finishedAt=api.clock.fmt(rec.finished_at))
            subs.append(entry)
    return {"subRuns": subs}


def get_sub_run(api: Api, req: Req) -> dict[str, Any]:
    sub, _, record = _sub(api, req)
    return {"dagRunDetails": run_details(record, api.clock, rc.sub_status(api, record, sub))}


def get_sub_run_log(api: Api, req: Req) -> dict[str, Any]:
    _, attempt, record = _sub(api, req)
    return read_log(record.log or str(attempt.run_log_path), req)


def get_sub_step_log(api: Api, req: Req) -> dict[str, Any]:
    _, _, record = _sub(api, req)
    return _step_log(record, req)


def patch_sub_step_status(api: Api, req: Req) -> None:
    _, attempt, record = _sub(api, req)
    _set_step_status(api, attempt, record, req)


# -- logs --------------------------------------------------------------------------------


def read_log(path: str, req: Req) -> dict[str, Any]:
    """`Log` of a text file: whole, or `head`/`tail` lines, or `offset` (1-based) + `limit`."""
    head = req.qint("head", low=0, high=MAX_LOG_LINES)
    tail = req.qint("tail", low=0, high=MAX_LOG_LINES)
    offset = req.qint("offset", low=1, high=MAX_LOG_LINES)
    limit = req.qint("limit", low=0, high=MAX_LOG_LINES)
    if not path:
        return {"content": ""}
    try:
        f = open(path, encoding="utf-8", errors="replace")  # noqa: SIM115 (closed below)
    except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
        return {"content": ""}
    with f:
        total = 0
        if tail is not None:
            window: deque[str] = deque(maxlen=tail)
            for line in f:
                total += 1
                window.append(line)
            lines = list(window)
        else:
            start = (offset or 1) - 1
            count = head if head is not None else limit
            lines = []
            for line in f:
                if total >= start and (count is None or len(lines) < count):
                    lines.append(line)
                total += 1
    doc: dict[str, Any] = {"content": "".join(lines).removesuffix("\n")}
    if lines:
        doc["lineCount"] = len(lines)
    if total:
        doc["totalLines"] = total
    shown_end = total if tail is not None else ((offset or 1) - 1 + len(lines))
    if shown_end < total:
        doc["hasMore"] = True
    return doc


def _step_log(record: RunRecord, req: Req) -> dict[str, Any]:
    stream = req.query.get("stream") or "stdout"
    if stream not in ("stdout", "stderr"):
        raise ApiError.bad_request(f"stream must be stdout or stderr, got {stream!r}")
    try:
        _, node = record.find_node(req.path["stepName"])
    except KeyError:
        raise ApiError.not_found(f"step {req.path['stepName']} not found in dag-run {record.run_id}") from None
    return read_log(node.stdout if stream == "stdout" else node.stderr, req)


def _set_step_status(api: Api, attempt: Any, record: RunRecord, req: Req) -> None:
    value = req.integer("status", required=True)
    if value not in NodeStatus._value2member_map_:
        raise ApiError.bad_request(f"status must be one of {sorted(NodeStatus._value2member_map_)}, got {value}")
    try:
        _, node = record.find_node(req.path["stepName"])
    except KeyError:
        raise ApiError.not_found(f"step {req.path['stepName']} not found in dag-run {record.run_id}") from None
    if record.status.is_active:
        raise ApiError.bad_request(f"dag-run {record.run_id} is still {record.status.label}; its steps cannot be changed")
    node.status = NodeStatus(value)
    rewrite_status(attempt.status_path, record)
    publish_once(events_dir(api.settings.data_dir), step_event(record.name, record.run_id, req.path["stepName"], node.status))


# -- helpers -----------------------------------------------------------------------------


def _sub(api: Api, req: Req) -> tuple[RunHandle, Any, RunRecord]:
    run, _, _ = rc.find(api, req.path["name"], req.path["dagRunId"])
    sub = _sub_handle(api, run, req.path["subDAGRunId"])
    attempt = api.runs.latest_attempt(sub)
    return sub, attempt, read_status(attempt.status_path)


def _sub_handle(api: Api, run: RunHandle, sub_id: str) -> RunHandle:
    validate_run_id(sub_id)
    return rc.find_sub(api, run, sub_id)


def _inline(api: Api, req: Req) -> tuple[str, str, str]:
    from dagu.spec import load_dag_text

    spec = req.text("spec", required=True)
    name = req.text("name") or None
    if name is not None and not FILE_NAME_RE.match(name):
        raise ApiError.bad_request(f"invalid name {name!r}: use 1-40 letters, digits, '-', '_' or '.'")
    base = api.settings.base_config if api.settings.base_config.is_file() else None
    try:
        dag = load_dag_text(spec, f"{name or 'inline'}.yaml" if name else "<request>", name=name, base_config=base)
    except DaguError as exc:
        raise ApiError.bad_request("\n".join(spec_errors(exc))) from None
    if not dag.name:
        raise ApiError.bad_request("give the run a name: a 'name' field in the request or `name:` in the spec")
    run_id = validate_run_id(req.text("dagRunId") or new_run_id())
    return spec, dag.name, run_id


def _save_spec(api: Api, spec: str, dag_name: str, run_id: str) -> Path:
    """Keep a request's spec as a file so the run process (and retries) can load it by path.

    The file is named after the DAG, so a spec without `name:` still gets that name.
    """
    path = inline_spec_path(api.settings, dag_name, run_id)
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(path, spec.encode())
    return path
