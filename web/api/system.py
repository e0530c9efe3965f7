"""`/health`, `/services/*` and `/workers`: what the server knows about itself and its peers."""

from __future__ import annotations

import contextlib
import os
import socket
import time
from datetime import UTC, datetime
from typing import Any

from web.api.common import Api, Req, endpoint
from web.errors import ApiError
from web.security import Permission

__all__ = ["routes", "list_workers", "health"]

NO_COORDINATOR = "Coordinator service not configured"


def routes() -> list[Any]:
    R = Permission.READ
    return [
        endpoint("/services/scheduler", "GET", R, schedulers),
        endpoint("/services/coordinator", "GET", R, coordinators),
        endpoint("/services/resources/history", "GET", R, resource_history),
        endpoint("/workers", "GET", R, workers),
    ]


def health(api: Api) -> dict[str, Any]:
    """The health document (served without auth by `web.app`)."""
    from dagu import __version__

    return {
        "status": "healthy",
        "version": __version__,
        "uptime": int(time.monotonic() - api.started_monotonic),
        "timestamp": api.clock.fmt(datetime.now(UTC)),
    }


def schedulers(api: Api, req: Req) -> dict[str, Any]:
    """The scheduler holding the HA lock, read from the lock folder's `owner` file."""
    from dagu.store.scheduler_lock import scheduler_lock_dir

    lock = scheduler_lock_dir(api.settings.data_dir)
    try:
        st = lock.stat()
    except OSError:
        return {"schedulers": []}
    owner = ""
    with contextlib.suppress(OSError):
        owner = (lock / "owner").read_text().strip()
    host, _, rest = owner.partition(":")
    pid = rest.partition(":")[0]
    fresh = time.time() - st.st_mtime < api.settings.lock_stale_threshold_s
    return {
        "schedulers": [{
            "instanceId": f"{host or socket.gethostname()}-{pid or '0'}",
            "host": host or socket.gethostname(),
            "status": "active" if fresh else "inactive",
            "startedAt": api.clock.fmt(datetime.fromtimestamp(os.stat(lock).st_ctime, UTC)),
        }]
    }


def coordinators(api: Api, req: Req) -> dict[str, Any]:
    """Coordinators registered in the data dir (they refresh their entry while they run)."""
    from dagu.store.service_registry import instances

    out = []
    for doc in instances(api.settings.data_dir, "coordinator"):
        started = ""
        with contextlib.suppress(TypeError, ValueError):
            started = api.clock.fmt(datetime.fromisoformat(doc.get("startedAt")))
        out.append({"instanceId": str(doc.get("instanceId", "")), "host": str(doc.get("host", "")),
                    "port": doc.get("port") if isinstance(doc.get("port"), int) else 0,
                    "status": doc["status"], "startedAt": started})
    return {"coordinators": out}


def resource_history(api: Api, req: Req) -> dict[str, Any]:
    return {"cpu": [], "memory": [], "disk": [], "load": []}


def workers(api: Api, req: Req) -> dict[str, Any]:
    found, errors = list_workers(api)
    return {"workers": found, "errors": errors}


def list_workers(api: Api) -> tuple[list[dict[str, Any]], list[str]]:
    """(workers, errors) as the coordinator reports them; the one place to ask it.

    Without a configured coordinator this says so (as Dagu does); an unreachable
    one is a 503 with the reason.
    """
    from transports.grpc.options import coordinator_configured

    if not coordinator_configured(api.settings):
        return [], [NO_COORDINATOR]
    from transports.grpc.client import list_workers as ask_coordinator

    try:
        found = ask_coordinator(api.settings)
    except ConnectionError as exc:
        raise ApiError(503, "internal_error", f"coordinator unavailable: {exc}") from exc
    for w in found:
        w["lastHeartbeatAt"] = api.clock.fmt(datetime.fromtimestamp(w["lastHeartbeatAt"], UTC)) if w["lastHeartbeatAt"] else ""
    return found, []
