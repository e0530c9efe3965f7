"""The Starlette application: the REST API at `<base>/api/v2` and again at `<base>/api/v1`,
with auth, CORS, gzip, metrics, events, and JSON errors for everything that goes wrong.

This module wires the parts together; the routes live in `web.api`, auth in
`web.auth`, serving in `web.server`.
"""

from __future__ import annotations

import logging
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware
from starlette.middleware.gzip import GZipMiddleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Mount, Route

from dagu.config import Settings
from dagu.errors import Conflict, DaguError, InvalidRequest, NotFound, SpecError
from dagu.store import RunStore
from dagu.store.queue import QueueStore
from web.api.common import Api
from web.api.shapes import Clock
from web.catalog import DagCatalog
from web.errors import ApiError, error_response, json_response

__all__ = ["create_app", "API_BASES"]

logger = logging.getLogger(__name__)

API_BASES = ("/api/v2", "/api/v1")  # 1.30.2's main API, and the same shapes where 2.x serves them
CORS_METHODS = ["GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]
CORS_HEADERS = ["Content-Type", "Authorization", "Content-Encoding", "Accept"]


def create_app(settings: Settings) -> Starlette:
    """Build the app for `settings`; nothing is read or started until the first request."""
    from web import auth, events, metrics
    from web.api import api_routes
    from web.ui import ui_routes

    parts = auth.build(settings)
    base = _base_path(settings.base_path)
    api = _api_context(settings)

    async def health(request: Request) -> Response:
        # Always public (Dagu's liveness probe); no permission check by design.
        from web.api.system import health as health_doc

        return json_response(health_doc(request.app.state.api))

    per_base = [
        Route("/health", health, methods=["GET"], name="health"),
        *api_routes(),
        *parts.api_routes,
        *events.api_routes(settings),
        *metrics.api_routes(settings),
    ]
    root = [*metrics.root_routes(settings), *parts.root_routes, *ui_routes(settings)]  # UI pages last
    mounts: list[Any] = [Mount(f"{base}{prefix}", routes=per_base) for prefix in API_BASES]
    mounts += [Mount(base, routes=root)] if base and root else root
    middleware = [
        Middleware(
            CORSMiddleware, allow_origin_regex=".*", allow_credentials=True, allow_methods=CORS_METHODS,
            allow_headers=CORS_HEADERS, max_age=300,
        ),
        Middleware(GZipMiddleware, minimum_size=1024, compresslevel=5),
        *parts.middleware,
    ]
    app = Starlette(routes=mounts, middleware=middleware, exception_handlers=_exception_handlers())
    app.state.api = api
    app.state.settings = settings
    return app


def _api_context(settings: Settings) -> Api:
    return Api(
        settings=settings,
        catalog=DagCatalog(settings.dags_dir, settings.base_config),
        runs=RunStore(settings.data_dir, settings.log_dir),
        queues=QueueStore(settings.queue_dir),
        clock=Clock(_zone(settings.tz)),
    )


def _zone(name: str | None):
    if not name:
        return None
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        logger.warning("unknown time zone %r in settings; showing times in UTC", name)
        return None


def _base_path(text: str) -> str:
    text = (text or "").strip().rstrip("/")
    return "" if not text else ("/" + text.lstrip("/"))


# -- errors ------------------------------------------------------------------------------

_DAGU_STATUS: tuple[tuple[type[DaguError], int, str], ...] = (
    (NotFound, 404, "not_found"),
    (Conflict, 409, "already_exists"),
    (SpecError, 400, "bad_request"),
    (InvalidRequest, 400, "bad_request"),
)


async def _api_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ApiError)
    return error_response(exc.status, exc.code, exc.message, exc.headers or None)


async def _dagu_error(request: Request, exc: Exception) -> Response:
    for kind, status, code in _DAGU_STATUS:
        if isinstance(exc, kind):
            return error_response(status, code, str(exc))
    # Any other user-facing error (params that don't evaluate, bad config value) is the request's fault.
    return error_response(400, "bad_request", str(exc))


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    code = {404: "not_found", 405: "bad_request", 401: "unauthorized", 403: "forbidden"}.get(exc.status_code, "bad_request")
    message = exc.detail if exc.status_code not in (404, 405) else (
        f"no route for {request.url.path}" if exc.status_code == 404
        else f"method {request.method} is not allowed for {request.url.path}"
    )
    if exc.status_code >= 500:
        code = "internal_error"
    return error_response(exc.status_code, code, message, dict(exc.headers) if exc.headers else None)


async def _internal_error(request: Request, exc: Exception) -> Response:
    # ServerErrorMiddleware re-raises after this, so uvicorn logs the traceback.
    return error_response(500, "internal_error", "An unexpected error occurred")


def _exception_handlers() -> dict[Any, Any]:
    return {ApiError: _api_error, DaguError: _dagu_error, HTTPException: _http_error, Exception: _internal_error}
