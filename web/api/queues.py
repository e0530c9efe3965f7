"""`/queues`: every queue with its running and queued runs, and a summary.

A queue is `global` when declared under `queues.config`, else `dag-based` (a DAG's
`queue:` value or its name) with the DAG's `maxActiveRuns` as its limit.
"""

from __future__ import annotations

import contextlib
from typing import Any

from dagu.errors import DaguError
from dagu.store import read_status
from dagu.store import zombie
from dagu.store.naming import safe_name
from dagu.store.proc import list_alive
from web.api.common import Api, Req, endpoint
from web.api.shapes import run_summary
from web.security import Permission

__all__ = ["routes"]


def routes() -> list[Any]:
    return [endpoint("/queues", "GET", Permission.READ, list_queues)]


def list_queues(api: Api, req: Req) -> dict[str, Any]:
    configured = {q.name: q.max_concurrency for q in api.settings.queues}
    limits = dict(configured)
    names_by_safe: dict[str, str] = {}
    for entry in api.catalog.entries():
        if entry.dag is not None:
            group = entry.dag.queue or entry.dag.name
            limits.setdefault(group, entry.dag.max_active_runs)
            names_by_safe[safe_name(group)] = group
    stale = zombie.stale_after_s(api.settings.zombie_detection_interval_s)
    running: dict[str, list[dict[str, Any]]] = {}
    for proc in list_alive(api.settings.proc_dir, stale_after_s=stale):
        summary = _summary(api, proc.dag_name, proc.run_id)
        if summary is not None:
            running.setdefault(names_by_safe.get(proc.group, proc.group), []).append(summary)
    queued: dict[str, list[dict[str, Any]]] = {}
    for name in api.queues.queue_names():
        with contextlib.suppress(DaguError):
            for item in api.queues.items(name):
                summary = _summary(api, item.dag_name, item.run_id)
                if summary is not None:
                    queued.setdefault(name, []).append(summary)
    queues = []
    for name in sorted(set(configured) | set(running) | set(queued)):
        doc: dict[str, Any] = {
            "name": name,
            "type": "global" if name in configured else "dag-based",
            "running": running.get(name, []),
            "queued": queued.get(name, []),
        }
        if name in limits:
            doc["maxConcurrency"] = limits[name]
        queues.append(doc)
    total_running = sum(len(q["running"]) for q in queues)
    capacity = sum(q.get("maxConcurrency", 0) for q in queues)
    return {
        "queues": queues,
        "summary": {
            "totalQueues": len(queues),
            "totalRunning": total_running,
            "totalQueued": sum(len(q["queued"]) for q in queues),
            "totalCapacity": capacity,
            "utilizationPercentage": round(100.0 * total_running / capacity, 1) if capacity else 0,
        },
    }


def _summary(api: Api, dag_name: str, run_id: str) -> dict[str, Any] | None:
    try:
        run = api.runs.find_run(dag_name, run_id)
        return run_summary(read_status(api.runs.latest_attempt(run).status_path), api.clock)
    except DaguError:
        return None
