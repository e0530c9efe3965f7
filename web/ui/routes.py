"""The UI's page routes: each reads what it shows and renders a template.

Pages are server-rendered from the same shapes the REST API returns (`web.api.shapes`)
so the JavaScript that refreshes them live works on one format. Pages that are
thin tables over an admin API (users, API keys, webhooks, audit, queues, workers)
render a shell and let their script fetch the API, which also enforces who may see
them. A page request without an identity (auth on, no session) goes to `/login`.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from dagu.errors import NotFound
from dagu.status import RunStatus
from web.security import identity_of
from web.ui import data
from web.ui.graph import layout
from web.ui.views import render

__all__ = ["ui_routes"]

STATIC = Path(__file__).parent / "static"
PER_PAGE = 50
GRAPH_MAX_STEPS = 400  # past this the run page shows the table and timeline only


def ui_routes(settings: Any) -> list[Any]:
    """The UI's routes, mounted at the base path after the API."""
    return [
        Route("/", _page(dashboard), name="ui:dashboard"),
        Route("/dags", _page(dag_list), name="ui:dags"),
        Route("/dags/{file}", _page(dag_page), name="ui:dag"),
        Route("/dag-runs/{name}/{run_id}", _page(run_page), name="ui:run"),
        Route("/dag-runs/{name}/{run_id}/sub/{sub_id}", _page(run_page), name="ui:subrun"),
        Route("/queues", _page(_shell("queues.html", "Queues")), name="ui:queues"),
        Route("/workers", _page(_shell("workers.html", "Workers")), name="ui:workers"),
        Route("/users", _page(_shell("users.html", "Users")), name="ui:users"),
        Route("/api-keys", _page(_shell("api_keys.html", "API keys")), name="ui:api-keys"),
        Route("/webhooks", _page(_shell("webhooks.html", "Webhooks")), name="ui:webhooks"),
        Route("/audit", _page(_shell("audit.html", "Audit log")), name="ui:audit"),
        Route("/login", login_page, name="ui:login"),
        Mount("/static", StaticFiles(directory=STATIC), name="static"),
    ]


# --- pages ------------------------------------------------------------------------------


def dashboard(request: Request, api: Any) -> dict[str, Any]:
    now = datetime.now(UTC)
    today = data.today_runs(api.runs, now=now)
    counts: dict[str, int] = {}
    for r in today:
        counts[r.status.label] = counts.get(r.status.label, 0) + 1
    recent = data.recent_runs(api.runs, hours=24, limit=300)
    active = [r for r in recent if r.status in (RunStatus.RUNNING, RunStatus.WAITING)]
    queued = [r for r in recent if r.status == RunStatus.QUEUED]
    failures = [r for r in recent if r.status in (RunStatus.FAILED, RunStatus.REJECTED)][:10]
    return {
        "template": "dashboard.html",
        "title": "Dashboard",
        "counts": counts,
        "total_today": len(today),
        "running": [_summary(api, r) for r in active],
        "queued": [_summary(api, r) for r in queued],
        "failures": [_summary(api, r) for r in failures],
        "timeline": _timeline(recent, now),
    }


def dag_list(request: Request, api: Any) -> dict[str, Any]:
    q = request.query_params
    query, tag = q.get("q", ""), q.get("tag", "")
    page = _int(q.get("page"), 1, low=1)
    every = api.catalog.entries()  # one folder scan per request
    entries, total = data.page_of(every, query=query, tag=tag, page=page, per_page=PER_PAGE)
    tz = _tz(api)
    rows = []
    for e in entries:
        latest = data.latest_record(api.runs, e.name)
        rows.append({
            "entry": e,
            "dag": e.dag,
            "latest": _summary(api, latest) if latest else None,
            "suspended": data.suspended(api.settings, e.file_name),
            "next_run": data.next_run_at(e.dag, tz),
        })
    pages = max(1, -(-total // PER_PAGE))
    return {
        "template": "dags.html", "title": "DAGs", "rows": rows, "total": total, "page": page, "pages": pages,
        "query": query, "tag": tag, "tags": data.all_tags(every),
    }


def dag_page(request: Request, api: Any) -> dict[str, Any]:
    from web.api import shapes

    file = request.path_params["file"]
    entry = api.catalog.get(file)
    if entry is None:
        raise NotFound(f"DAG {file} not found")
    tab = request.query_params.get("tab", "graph")
    dag = entry.dag
    latest = data.latest_record(api.runs, entry.name)
    latest_doc = shapes.run_details(latest, api.clock) if latest else None
    graph = _graph(dag.steps if dag else (), latest_doc)
    ctx: dict[str, Any] = {
        "template": "dag.html", "title": entry.name, "entry": entry, "dag": dag, "tab": tab,
        "dag_doc": shapes.dag_details(dag) if dag else None, "latest": latest_doc,
        "suspended": data.suspended(api.settings, file), "graph": graph,
        "next_run": data.next_run_at(dag, _tz(api)),
    }
    if tab == "history":
        ctx["history"] = _history(api, entry.name)
    return ctx


def run_page(request: Request, api: Any) -> dict[str, Any]:
    from web.api import shapes

    p = request.path_params
    view = data.find_run(api.runs, p["name"], p["run_id"], p.get("sub_id"))
    doc = shapes.run_details(view.record, api.clock, _sub_status(api, view))
    steps = [n["step"] for n in doc["nodes"]]
    big = len(steps) > GRAPH_MAX_STEPS
    graph = None if big else _graph_from_docs(steps, doc)
    nodes = []
    for node_doc, record in zip(doc["nodes"], view.record.nodes):
        nodes.append({"doc": node_doc, "exit_code": record.exit_code, "outputs": _outputs(record.output_variables),
                      "started": record.started_at, "finished": record.finished_at})  # ms precision for durations
    handlers = [(k, doc[k]) for k in ("onSuccess", "onFailure", "onCancel", "onExit") if k in doc]
    root = view.record.root
    return {
        "template": "run.html", "title": f"{view.dag_name} / {view.run_id}", "run": doc, "nodes": nodes,
        "handlers": handlers, "graph": graph, "big": big,
        "root_name": p["name"], "root_id": view.record.root.id if p.get("sub_id") and root else p["run_id"],
        "sub_id": p.get("sub_id") or "", "gantt": _gantt(doc["nodes"]),
        "file_name": _file_of(api, view.dag_name),
        "run_started": view.record.started_at, "run_finished": view.record.finished_at,
    }


async def login_page(request: Request) -> Response:
    settings = getattr(request.app.state, "settings", None)
    mode = getattr(getattr(settings, "auth", None), "mode", "none")
    next_url = request.query_params.get("next", "/")
    if not next_url.startswith("/") or next_url.startswith("//"):
        next_url = "/"
    return render(request, "login.html", settings=settings, title="Sign in", next_url=next_url, mode=mode)


# --- plumbing -----------------------------------------------------------------------------


def _page(build):
    """Wrap `build(request, api) -> context` into an endpoint: login redirect, thread, 404 page."""

    async def endpoint(request: Request) -> Response:
        settings = getattr(request.app.state, "settings", None)
        if identity_of(request) is None:
            base = (getattr(settings, "base_path", "") or "").rstrip("/")
            target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
            return RedirectResponse(f"{base}/login?next={target}", status_code=303)
        api = request.app.state.api
        try:
            ctx = await run_in_threadpool(build, request, api)
        except NotFound as exc:
            return render(request, "error.html", 404, settings=settings, title="Not found", message=str(exc))
        return render(request, ctx.pop("template"), settings=settings, **ctx)

    endpoint.__name__ = getattr(build, "__name__", "page")
    return endpoint


def _shell(template: str, title: str):
    def build(request: Request, api: Any) -> dict[str, Any]:
        return {"template": template, "title": title}

    build.__name__ = template.removesuffix(".html")
    return build


def _summary(api: Any, record: Any) -> dict[str, Any]:
    from web.api import shapes

    return shapes.run_summary(record, api.clock)


def _tz(api: Any):
    from dagu.schedule import host_zone, resolve_zone

    tz = getattr(api.settings, "tz", None)
    return resolve_zone(tz) if tz else host_zone()


def _int(text: str | None, default: int, *, low: int) -> int:
    try:
        return max(low, int(text)) if text else default
    except ValueError:
        return default


def _graph(steps: Any, latest_doc: dict[str, Any] | None) -> dict[str, Any] | None:
    """The layout of a DAG's steps, coloured by the latest run when it ran the same steps."""
    if not steps:
        return None
    names = [s.name for s in steps]
    lay = layout(names, {s.name: s.depends for s in steps})
    status = {}
    if latest_doc:
        status = {n["step"]["name"]: n["statusLabel"] for n in latest_doc["nodes"]}
    return {"layout": lay, "status": status, "kind": {s.name: s.type for s in steps}}


def _graph_from_docs(steps: list[dict[str, Any]], run_doc: dict[str, Any]) -> dict[str, Any] | None:
    if not steps:
        return None
    lay = layout([s["name"] for s in steps], {s["name"]: s.get("depends") or () for s in steps})
    status = {n["step"]["name"]: n["statusLabel"] for n in run_doc["nodes"]}
    return {"layout": lay, "status": status, "kind": {}}


def _history(api: Any, dag_name: str, limit: int = 30) -> dict[str, Any]:
    """Runs (newest first) x steps: the grid of node statuses of the last `limit` runs."""
    runs = [record for _, record in api.runs.list_runs(dag_name, limit=limit)]
    order: list[str] = []
    seen = set()
    for record in runs:
        for node in record.nodes:
            if node.name not in seen:
                seen.add(node.name)
                order.append(node.name)
    grid = []
    for name in order:
        cells = []
        for record in runs:
            node = next((n for n in record.nodes if n.name == name), None)
            cells.append(node.status.label if node else None)
        grid.append({"name": name, "cells": cells})
    return {"runs": [_summary(api, r) for r in runs], "grid": grid}


def _timeline(records: list[Any], now: datetime, hours: int = 24, rows: int = 16) -> dict[str, Any]:
    """Recent runs as bars on a shared time axis, one row per DAG (busiest rows first)."""
    start = now - timedelta(hours=hours)
    span = (now - start).total_seconds()
    by_dag: dict[str, list[dict[str, Any]]] = {}
    for r in records:
        begin = r.started_at or r.queued_at or r.created_at
        if begin is None:
            continue
        end = r.finished_at or now
        width = min(100.0, max(0.5, (min(end, now) - max(begin, start)).total_seconds() / span * 100))
        left = min(max(0.0, (begin - start).total_seconds() / span * 100), 100 - width)  # a run just now stays visible
        by_dag.setdefault(r.name, []).append({
            "left": round(left, 3), "width": round(width, 3), "status": r.status.label,
            "run_id": r.run_id, "name": r.name, "started": begin, "finished": r.finished_at,
        })
    busiest = sorted(by_dag.items(), key=lambda kv: (-len(kv[1]), kv[0]))[:rows]
    ticks = [(start + timedelta(hours=h)) for h in range(0, hours + 1, 6)]
    return {"rows": busiest, "ticks": ticks}


def _gantt(nodes: list[dict[str, Any]]) -> dict[str, Any] | None:
    """Each step's span on the run's time axis, as percentages."""
    from web.ui.views import _moment

    spans = [(n, _moment(n["startedAt"]), _moment(n["finishedAt"])) for n in nodes]
    started = [s for _, s, _ in spans if s]
    if not started:
        return None
    now = datetime.now(UTC)
    t0 = min(started)
    t1 = max([e or now for _, s, e in spans if s] + [t0 + timedelta(seconds=1)])
    total = (t1 - t0).total_seconds()
    rows = []
    for node, s, e in spans:
        if s is None:
            rows.append({"name": node["step"]["name"], "status": node["statusLabel"], "left": 0, "width": 0})
            continue
        left = (s - t0).total_seconds() / total * 100
        width = ((e or now) - s).total_seconds() / total * 100
        rows.append({"name": node["step"]["name"], "status": node["statusLabel"], "left": round(left, 3),
                     "width": round(max(width, 0.2), 3), "start": s, "end": e})
    return {"rows": rows, "t0": t0, "t1": t1, "total_s": total}


def _outputs(variables: dict[str, str]) -> list[tuple[str, str]]:
    out = []
    for name, text in variables.items():
        _, _, value = str(text).partition("=")
        out.append((name, value))
    return out


def _sub_status(api: Any, view: data.RunView):
    root = view.record.root

    def lookup(child_dag: str, sub_id: str) -> tuple[int, str]:
        try:
            sub = data.find_run(api.runs, root.name, root.id, sub_id)
        except (NotFound, OSError, ValueError):
            return 0, "not_started"
        return int(sub.record.status), sub.record.status.label

    return lookup


def _file_of(api: Any, dag_name: str) -> str:
    """The DAG file stem for a DAG name (they usually match; `name:` can differ)."""
    if api.catalog.get(dag_name) is not None:
        return dag_name
    for e in api.catalog.entries():
        if e.name == dag_name:
            return e.file_name
    return ""


