"""`/dags`: DAG definitions - list, search, tags, get, spec get/put, create, validate, rename,
delete, suspend - and the actions on a DAG: start, enqueue, stop-all, its runs.

Every write validates first and writes whole files (temp + link/rename), so a bad
request leaves the DAGs folder as it was.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dagu.errors import DaguError
from dagu.store import RunRecord, new_run_id, validate_run_id
from dagu.store.fsutil import atomic_write
from dagu.store.suspend import is_suspended, suspend_flag_path
from web.api import runs_common as rc
from web.api.common import Api, Req, endpoint
from web.api.shapes import dag_details, dag_summary, pagination, run_details, run_summary
from web.catalog import FILE_NAME_RE, CatalogEntry, spec_errors
from web.errors import ApiError
from web.security import Permission

if TYPE_CHECKING:
    from dagu.spec.model import Dag

__all__ = ["routes", "STUB_SPEC"]

STUB_SPEC = "steps:\n  - command: echo hello\n"
_SORTS = ("name", "nextRun")
_ORDERS = ("asc", "desc")


def routes() -> list[Any]:
    R, W, X = Permission.READ, Permission.WRITE, Permission.RUN
    return [
        endpoint("/dags", "GET", R, list_dags),
        endpoint("/dags", "POST", W, create_dag, body=True),
        endpoint("/dags/validate", "POST", R, validate_spec, body=True),
        endpoint("/dags/search", "GET", R, search_dags),
        endpoint("/dags/tags", "GET", R, list_tags),
        endpoint("/dags/{fileName}", "GET", R, get_dag),
        endpoint("/dags/{fileName}", "DELETE", W, delete_dag),
        endpoint("/dags/{fileName}/spec", "GET", R, get_spec),
        endpoint("/dags/{fileName}/spec", "PUT", W, put_spec, body=True),
        endpoint("/dags/{fileName}/rename", "POST", W, rename_dag, body=True),
        endpoint("/dags/{fileName}/suspend", "POST", X, suspend_dag, body=True),
        endpoint("/dags/{fileName}/start", "POST", X, start_dag, body=True),
        endpoint("/dags/{fileName}/enqueue", "POST", X, enqueue_dag, body=True),
        endpoint("/dags/{fileName}/stop-all", "POST", X, stop_all, body=True),
        endpoint("/dags/{fileName}/dag-runs", "GET", R, dag_runs),
        endpoint("/dags/{fileName}/dag-runs/{dagRunId}", "GET", R, dag_run),
    ]


# -- reading ---------------------------------------------------------------------------


def list_dags(api: Api, req: Req) -> dict[str, Any]:
    page = req.qint("page", 1, low=1)
    per_page = req.qint("perPage", 50, low=1, high=1000)
    sort = req.query.get("sort") or "name"
    order = req.query.get("order") or "asc"
    if sort not in _SORTS:
        raise ApiError.bad_request(f"sort must be one of {', '.join(_SORTS)}, got {sort!r}")
    if order not in _ORDERS:
        raise ApiError.bad_request(f"order must be asc or desc, got {order!r}")
    entries = api.catalog.entries()
    if name := (req.query.get("name") or "").lower():
        entries = [e for e in entries if name in e.name.lower() or name in e.file_name.lower()]
    if tag := (req.query.get("tag") or "").lower():
        entries = [e for e in entries if tag in e.tags]
    if sort == "nextRun":
        entries.sort(key=_next_run_key)
    else:
        entries.sort(key=lambda e: (e.name.lower(), e.file_name))
    if order == "desc":
        entries.reverse()
    total = len(entries)
    chosen = entries[(page - 1) * per_page : page * per_page]
    errors = [f"{e.file_name}: {err}" for e in entries if e.errors for err in e.errors[:1]]
    return {
        "dags": [_dag_file(api, e) for e in chosen],
        "errors": errors,
        "pagination": pagination(total, page, per_page),
    }


def get_dag(api: Api, req: Req) -> dict[str, Any]:
    entry = _entry(api, req)
    record = rc.latest_record(api, entry.name)
    local = []
    if entry.dag is not None:
        local = [{"name": n, "dag": dag_details(d), "errors": []} for n, d in entry.dag.local_dags.items()]
    return {
        "dag": _details(entry),
        "localDags": local,
        "latestDAGRun": run_details(record, api.clock, rc.sub_status(api, record)) if record else rc.blank_run(entry.name),
        "suspended": is_suspended(api.settings.suspend_dir, entry.file_name),
        "errors": list(entry.errors),
    }


def get_spec(api: Api, req: Req) -> dict[str, Any]:
    entry = _entry(api, req)
    return {"dag": _details(entry), "spec": entry.text, "errors": list(entry.errors)}


def search_dags(api: Api, req: Req) -> dict[str, Any]:
    query = req.query.get("q") or ""
    if not query.strip():
        raise ApiError.bad_request("query parameter 'q' is required")
    needle = query.lower()
    results = []
    for entry in api.catalog.entries():
        lines = entry.text.splitlines()
        matches = []
        for i, line in enumerate(lines):
            if needle in line.lower():
                start = max(0, i - 2)
                matches.append({"line": "\n".join(lines[start : i + 3]), "lineNumber": i + 1, "startLine": start + 1})
        if matches:
            results.append({"name": entry.file_name, "dag": _summary(entry), "matches": matches})
    return {"results": results, "errors": []}


def list_tags(api: Api, req: Req) -> dict[str, Any]:
    tags = sorted({t for e in api.catalog.entries() if e.dag is not None for t in e.dag.tags})
    return {"tags": tags, "errors": []}


def validate_spec(api: Api, req: Req) -> dict[str, Any]:
    spec = req.text("spec", required=True)
    name = _override_name(req.text("name"))
    try:
        dag = _load(api, spec, f"{name or 'dag'}.yaml", name=name)
    except DaguError as exc:
        return {"valid": False, "errors": list(spec_errors(exc))}
    return {"valid": True, "dag": dag_details(dag), "errors": []}


def dag_runs(api: Api, req: Req) -> dict[str, Any]:
    entry = _entry(api, req)
    rows = api.runs.list_runs(entry.name, limit=30)
    records = [rec for _, rec in rows]
    steps = [s.name for s in entry.dag.steps] if entry.dag is not None else []
    for rec in records:
        steps += [n.name for n in rec.nodes if n.name not in steps]
    grid = []
    for step in steps:
        history = []
        for rec in records:
            node = next((n for n in rec.nodes if n.name == step), None)
            history.append(int(node.status) if node is not None else 0)
        grid.append({"name": step, "history": history})
    return {"dagRuns": [run_details(r, api.clock, rc.sub_status(api, r)) for r in records], "gridData": grid}


def dag_run(api: Api, req: Req) -> dict[str, Any]:
    entry = _entry(api, req)
    _, _, record = rc.find(api, entry.name, req.path["dagRunId"])
    return {"dagRun": run_details(record, api.clock, rc.sub_status(api, record))}


# -- writing ---------------------------------------------------------------------------


def create_dag(api: Api, req: Req) -> Any:
    name = _new_file_name(req.text("name", required=True))
    spec = req.text("spec")
    if spec is None or not spec.strip():
        spec = STUB_SPEC
    _validate_or_400(api, spec, name)
    api.settings.dags_dir.mkdir(parents=True, exist_ok=True)
    if api.catalog.path_of(name) is not None:
        raise ApiError.conflict(f"DAG {name} already exists")
    _write_new(api.settings.dags_dir / f"{name}.yaml", spec)
    api.catalog.invalidate()
    from web.errors import json_response

    return json_response({"name": name}, 201)


def put_spec(api: Api, req: Req) -> dict[str, Any]:
    entry = _entry(api, req)
    spec = req.text("spec", required=True)
    try:
        _load(api, spec, entry.path.name)
    except DaguError as exc:
        return {"errors": list(spec_errors(exc))}  # not saved: the file keeps its old text
    atomic_write(entry.path, spec.encode())
    api.catalog.invalidate()
    return {"errors": []}


def rename_dag(api: Api, req: Req) -> None:
    entry = _entry(api, req)
    new = _new_file_name(req.text("newFileName", required=True))
    if new == entry.file_name:
        return None
    if api.catalog.path_of(new) is not None:
        raise ApiError.conflict(f"DAG {new} already exists")
    if rc.alive_runs(api, entry.name):
        raise ApiError.bad_request(f"DAG {entry.file_name} is running; stop it before renaming")
    target = entry.path.with_name(new + entry.path.suffix)
    try:
        os.link(entry.path, target)  # no-clobber: a racing create of `new` wins
    except FileExistsError:
        raise ApiError.conflict(f"DAG {new} already exists") from None
    os.unlink(entry.path)
    api.catalog.invalidate()
    old_flag = suspend_flag_path(api.settings.suspend_dir, entry.file_name)
    if old_flag.exists():
        api.settings.suspend_dir.mkdir(parents=True, exist_ok=True)
        os.replace(old_flag, suspend_flag_path(api.settings.suspend_dir, new))
    return None


def delete_dag(api: Api, req: Req) -> Any:
    entry = _entry(api, req)
    with contextlib.suppress(FileNotFoundError):
        entry.path.unlink()
    api.catalog.invalidate()
    with contextlib.suppress(FileNotFoundError):
        suspend_flag_path(api.settings.suspend_dir, entry.file_name).unlink()
    from web.auth import delete_webhook_for

    delete_webhook_for(api.settings, entry.file_name)
    from starlette.responses import Response

    return Response(status_code=204)


def suspend_dag(api: Api, req: Req) -> None:
    entry = _entry(api, req)
    suspend = req.flag("suspend", required=True)
    flag = suspend_flag_path(api.settings.suspend_dir, entry.file_name)
    if suspend:
        flag.parent.mkdir(parents=True, exist_ok=True)
        flag.touch()
    else:
        with contextlib.suppress(FileNotFoundError):
            flag.unlink()
    return None


def start_dag(api: Api, req: Req) -> dict[str, Any]:
    entry = _entry(api, req)
    dag = _valid_dag(entry)
    name = _override_name(req.text("dagName"))
    dag_name = name or dag.name
    run_id = validate_run_id(req.text("dagRunId") or new_run_id())
    params = req.text("params")
    rc.check_new_run(api, dag_name, run_id)
    if req.flag("singleton") and rc.alive_runs(api, dag_name):
        raise ApiError.conflict(f"DAG {dag_name} is already running (singleton mode)")
    rc.start_process(api, entry.path, dag_name, run_id, params=params, name=name)
    return {"dagRunId": run_id}


def enqueue_dag(api: Api, req: Req) -> dict[str, Any]:
    entry = _entry(api, req)
    _valid_dag(entry)
    name = _override_name(req.text("dagName"))
    run_id = validate_run_id(req.text("dagRunId") or new_run_id())
    record = rc.enqueue(api, entry.path, run_id, params=req.text("params"), name=name, queue=req.text("queue"),
                        singleton=req.flag("singleton"))
    return {"dagRunId": record.run_id}


def stop_all(api: Api, req: Req) -> dict[str, Any]:
    entry = _entry(api, req)
    errors = []
    for run_id in rc.alive_runs(api, entry.name):
        try:
            _, attempt, record = rc.find(api, entry.name, run_id)
            rc.request_stop(api, attempt, record)
        except (DaguError, ApiError, OSError) as exc:
            errors.append(f"{run_id}: {exc}")
    return {"errors": errors}


# -- helpers ---------------------------------------------------------------------------


def _entry(api: Api, req: Req) -> CatalogEntry:
    file_name = req.path["fileName"]
    entry = api.catalog.get(file_name)
    if entry is None:
        raise ApiError.not_found(f"DAG {file_name} not found")
    return entry


def _valid_dag(entry: CatalogEntry) -> Dag:
    if entry.dag is None:
        raise ApiError.bad_request("the DAG file is invalid:\n" + "\n".join(entry.errors))
    return entry.dag


def _summary(entry: CatalogEntry) -> dict[str, Any]:
    return dag_summary(entry.dag) if entry.dag is not None else {"name": entry.file_name}


def _details(entry: CatalogEntry) -> dict[str, Any]:
    return dag_details(entry.dag) if entry.dag is not None else {"name": entry.file_name}


def _dag_file(api: Api, entry: CatalogEntry) -> dict[str, Any]:
    record: RunRecord | None = rc.latest_record(api, entry.name, zombies=False)
    return {
        "fileName": entry.file_name,
        "dag": _summary(entry),
        "latestDAGRun": run_summary(record, api.clock) if record else rc.blank_run(entry.name),
        "suspended": is_suspended(api.settings.suspend_dir, entry.file_name),
        "errors": list(entry.errors),
    }


def _next_run_key(entry: CatalogEntry) -> tuple[int, float, str]:
    dag = entry.dag
    if dag is None or not dag.schedule.start:
        return (1, 0.0, entry.name.lower())
    from datetime import UTC, datetime

    from dagu.schedule import host_zone, next_fire_time

    now = datetime.now(UTC)
    fires = []
    for cron in dag.schedule.start:
        with contextlib.suppress(Exception):
            fires.append(next_fire_time(cron, now, host_zone()).timestamp())
    return (0, min(fires), entry.name.lower()) if fires else (1, 0.0, entry.name.lower())


def _load(api: Api, spec: str, file: str, *, name: str | None = None) -> Dag:
    from dagu.spec import load_dag_text

    base = api.settings.base_config if api.settings.base_config.is_file() else None
    return load_dag_text(spec, file, name=name, base_config=base)


def _validate_or_400(api: Api, spec: str, name: str) -> Dag:
    try:
        return _load(api, spec, f"{name}.yaml")
    except DaguError as exc:
        raise ApiError.bad_request("\n".join(spec_errors(exc))) from None


def _new_file_name(name: str | None) -> str:
    name = name or ""
    for suffix in (".yaml", ".yml"):
        name = name.removesuffix(suffix)
    if not FILE_NAME_RE.match(name):
        raise ApiError.bad_request(
            f"invalid DAG name {name!r}: use 1-40 letters, digits, '-', '_' or '.'"
        )
    return name


def _override_name(name: str | None) -> str | None:
    if name is None or name == "":
        return None
    if not FILE_NAME_RE.match(name):
        raise ApiError.bad_request(f"invalid DAG name {name!r}: use 1-40 letters, digits, '-', '_' or '.'")
    return name


def _write_new(path: Path, text: str) -> None:
    """Write a file that must not exist yet: temp file, then a no-clobber link."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{new_run_id()[-8:]}.tmp")
    try:
        atomic_write(tmp, text.encode())
        try:
            os.link(tmp, path)
        except FileExistsError:
            raise ApiError.conflict(f"DAG {path.stem} already exists") from None
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
