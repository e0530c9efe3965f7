"""The audit log: one JSON line per mutating API request (and per login attempt), in a file
per UTC day, `<adminLogsDir>/audit/YYYY-MM-DD.jsonl`, and `GET /audit` to read it.

`AuditMiddleware` sits outside the auth middleware, so it also records requests that
auth turned away. It records who (the identity the auth middleware or a route put on
`request.state`), what (method, path, resource, action), the status code, when and
the client IP; never bodies, query strings or headers, so no secret reaches the file.
Routes may add `request.state.audit = {...}` (e.g. the username of a failed login).
"""

from __future__ import annotations

import logging
import os
import re
import threading
import uuid
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import orjson
from starlette.requests import Request
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from web.errors import ApiError, json_response
from web.security import Identity, Permission, require

__all__ = ["AuditLog", "AuditMiddleware", "audit_routes", "MUTATING_METHODS"]

logger = logging.getLogger(__name__)

MUTATING_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
_API_PREFIX = re.compile(r"^/api/v[12](?=/)")
_MAX_LIMIT = 1000
# First path segment -> audit category (2.x categories where one exists).
_CATEGORIES = {
    "dags": "dag", "dag-runs": "dag_run", "dag-runs-inline": "dag_run", "queues": "queue",
    "users": "user", "auth": "user", "api-keys": "api_key", "webhooks": "webhook",
}
_VERBS = {"POST": "create", "PUT": "update", "PATCH": "update", "DELETE": "delete"}


class AuditLog:
    """Appends entries to, and reads them back from, the per-day JSONL files."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self._lock = threading.Lock()

    def append(self, entry: dict[str, Any]) -> None:
        """Write one entry as one line; a single `write` on an O_APPEND file keeps lines whole."""
        day = entry["timestamp"][:10]
        line = orjson.dumps(entry) + b"\n"
        with self._lock:
            self.folder.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.folder / f"{day}.jsonl", os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
            try:
                os.write(fd, line)
            finally:
                os.close(fd)

    def read(self, day: date, *, limit: int = 100, username: str | None = None, category: str | None = None) -> list[dict]:
        """Entries of one UTC day, newest first, filtered; a torn last line is skipped."""
        try:
            data = (self.folder / f"{day:%Y-%m-%d}.jsonl").read_bytes()
        except FileNotFoundError:
            return []
        out = []
        for raw in reversed(data.splitlines()):
            try:
                entry = orjson.loads(raw)
            except orjson.JSONDecodeError:
                continue
            if username and entry.get("username") != username:
                continue
            if category and entry.get("category") != category:
                continue
            out.append(entry)
            if len(out) >= limit:
                break
        return out


class AuditMiddleware:
    """Records every mutating request (and every login) once its handler has finished."""

    def __init__(self, app: ASGIApp, log: AuditLog, base_path: str = "") -> None:
        self.app = app
        self.log = log
        self.base_path = base_path.rstrip("/")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        status = [500]

        async def capture(message: Message) -> None:
            if message["type"] == "http.response.start":
                status[0] = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, capture)
        finally:
            # Reads are not audited, except a login by GET (the OIDC callback marks itself).
            if scope["method"] in MUTATING_METHODS or (scope.get("state") or {}).get("audit"):
                self._write(scope, status[0])

    def _write(self, scope: Scope, status: int) -> None:
        try:
            self.log.append(self._entry(scope, status))
        except OSError:
            logger.exception("audit: cannot write the audit log under %s", self.log.folder)

    def _entry(self, scope: Scope, status: int) -> dict[str, Any]:
        state = scope.get("state") or {}
        identity: Identity | None = state.get("identity")
        extra: dict[str, Any] = dict(state.get("audit") or {})
        path = scope["path"]
        if self.base_path and path.startswith(self.base_path):
            path = path[len(self.base_path):] or "/"
        category, resource_id, action = _classify(scope["method"], path)
        entry = {
            "id": str(uuid.uuid4()),
            "timestamp": datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            "category": category,
            "action": extra.pop("action", action),
            "method": scope["method"],
            "path": path,
            "resource_type": category,
            "resource_id": resource_id,
            "result": "success" if status < 400 else "failure",
            "status": status,
            "user_id": identity.id if identity else "",
            "username": identity.username if identity else extra.pop("username", ""),
            "credential_type": identity.kind if identity else "",
            "ip_address": (scope.get("client") or ("",))[0],
        }
        extra.pop("username", None)
        if extra:
            entry["details"] = extra
        return entry


def audit_routes(log: AuditLog) -> list[Route]:
    """`GET /audit?date=YYYY-MM-DD&limit=N&username=&category=` (AUDIT permission)."""

    async def list_entries(request: Request):
        require(request, Permission.AUDIT)
        q = request.query_params
        try:
            day = date.fromisoformat(q["date"]) if q.get("date") else datetime.now(UTC).date()
        except ValueError:
            raise ApiError.bad_request(f"date: expected YYYY-MM-DD, got {q['date']!r}") from None
        try:
            limit = int(q.get("limit", "100"))
        except ValueError:
            raise ApiError.bad_request(f"limit: expected a whole number, got {q['limit']!r}") from None
        if not 1 <= limit <= _MAX_LIMIT:
            raise ApiError.bad_request(f"limit: expected 1 to {_MAX_LIMIT}, got {limit}")
        entries = log.read(day, limit=limit, username=q.get("username"), category=q.get("category"))
        return json_response({"date": day.isoformat(), "entries": entries})

    return [Route("/audit", list_entries, methods=["GET"])]


def _classify(method: str, path: str) -> tuple[str, str, str]:
    """(category, resource id, action) from an API path such as `/api/v2/dags/etl/start`."""
    m = _API_PREFIX.match(path)
    parts = [p for p in (path[m.end():] if m else path).split("/") if p]
    if not parts:
        return "system", "", _VERBS.get(method, method.lower())
    category = _CATEGORIES.get(parts[0], parts[0].replace("-", "_"))
    resource_id = parts[1] if len(parts) > 1 else ""
    if parts[0] == "auth":
        return category, "", parts[1].replace("-", "_") if len(parts) > 1 else "auth"
    if parts[0] == "webhooks" and method == "POST" and len(parts) == 2:
        return "webhook", resource_id, "trigger"
    action = parts[-1].replace("-", "_") if len(parts) > 2 and method == "POST" else _VERBS.get(method, method.lower())
    if len(parts) > 2 and parts[-1] == "webhook":
        category, action = "webhook", _VERBS.get(method, method.lower())
    return category, resource_id, action
