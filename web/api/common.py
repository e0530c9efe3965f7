"""What every API module shares: the per-app context, the route decorator and input checks.

`endpoint()` wraps a plain function `fn(api, req) -> dict | Response | None` into a
Starlette endpoint that checks the caller's permission, reads the JSON body (bad
JSON is a 400; `null` fields count as absent), runs `fn` in a worker thread (file
access blocks) and renders the result with orjson.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import orjson
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from dagu.config import Settings
from dagu.store import RunStore
from dagu.store.queue import QueueStore
from web.catalog import DagCatalog
from web.errors import ApiError, json_response
from web.security import Permission, require

__all__ = ["Api", "Req", "Endpoint", "endpoint", "group_routes", "MAX_BODY_BYTES"]

MAX_BODY_BYTES = 4 * 1024 * 1024  # a DAG spec is text; anything bigger is a mistake


@dataclass
class Api:
    """Per-app state the handlers share: settings, the DAG catalog, the stores, the clock."""

    settings: Settings
    catalog: DagCatalog
    runs: RunStore
    queues: QueueStore
    clock: Any  # web.api.shapes.Clock
    started_monotonic: float = field(default_factory=time.monotonic)


@dataclass(frozen=True, slots=True)
class Req:
    """A request as a handler sees it: path params, query params and the JSON body."""

    path: Mapping[str, str]
    query: Mapping[str, str]
    body: Mapping[str, Any]

    def text(self, name: str, default: str | None = None, *, required: bool = False) -> str | None:
        """A string body field; 400 if it has another type or is missing when required."""
        value = self.body.get(name)
        if value is None:
            if required:
                raise ApiError.bad_request(f"field '{name}' is required")
            return default
        if not isinstance(value, str):
            raise ApiError.bad_request(f"field '{name}' must be a string, got {_type_name(value)}")
        return value

    def flag(self, name: str, default: bool = False, *, required: bool = False) -> bool:
        value = self.body.get(name)
        if value is None:
            if required:
                raise ApiError.bad_request(f"field '{name}' is required")
            return default
        if not isinstance(value, bool):
            raise ApiError.bad_request(f"field '{name}' must be true or false, got {_type_name(value)}")
        return value

    def integer(self, name: str, *, required: bool = False) -> int | None:
        value = self.body.get(name)
        if value is None:
            if required:
                raise ApiError.bad_request(f"field '{name}' is required")
            return None
        if not isinstance(value, int) or isinstance(value, bool):
            raise ApiError.bad_request(f"field '{name}' must be an integer, got {_type_name(value)}")
        return value

    def qint(self, name: str, default: int | None = None, *, low: int | None = None, high: int | None = None) -> int | None:
        """An integer query parameter within [low, high]; 400 if it is not one."""
        raw = self.query.get(name)
        if raw is None:
            return default
        try:
            value = int(raw)
        except ValueError:
            raise ApiError.bad_request(f"query parameter '{name}' must be an integer, got {raw!r}") from None
        if (low is not None and value < low) or (high is not None and value > high):
            bounds = f"between {low} and {high}" if high is not None else f"at least {low}"
            raise ApiError.bad_request(f"query parameter '{name}' must be {bounds}, got {value}")
        return value


Handler = Callable[[Api, Req], Any]


@dataclass(frozen=True, slots=True)
class Endpoint:
    """One method of one path; `group_routes` turns these into Starlette routes."""

    path: str
    method: str
    call: Callable[[Request], Any]


def endpoint(path: str, method: str, permission: Permission, fn: Handler, *, body: bool = False) -> Endpoint:
    """An endpoint for `fn`, gated by `permission`, reading a JSON object body when `body`."""

    async def call(request: Request) -> Response:
        require(request, permission)
        data = await _read_body(request) if body else {}
        req = Req(request.path_params, request.query_params, data)
        result = await run_in_threadpool(fn, request.app.state.api, req)
        if isinstance(result, Response):
            return result
        if result is None:
            return Response(status_code=200)
        return _render(result)

    call.__name__ = fn.__name__
    return Endpoint(path, method, call)


def group_routes(endpoints: list[Any]) -> list[Any]:
    """One Route per path serving all of its methods, so a 405 lists every allowed method.

    Plain Starlette routes pass through unchanged.

    Raises:
        ValueError: two endpoints claim the same method of the same path (a wiring mistake).
    """
    by_path: dict[str, dict[str, Callable[[Request], Any]]] = {}
    out: list[Any] = []
    for item in endpoints:
        if not isinstance(item, Endpoint):
            out.append(item)
            continue
        methods = by_path.setdefault(item.path, {})
        if item.method in methods:
            raise ValueError(f"{item.method} {item.path} is defined twice")
        if not methods:
            out.append(item.path)  # placeholder keeps the declaration order
        methods[item.method] = item.call
    return [_route(x, by_path[x]) if isinstance(x, str) else x for x in out]


def _route(path: str, methods: dict[str, Callable[[Request], Any]]) -> Route:
    async def dispatch(request: Request) -> Response:
        method = "GET" if request.method == "HEAD" else request.method
        return await methods[method](request)

    return Route(path, dispatch, methods=list(methods), name=path)


def _render(data: Any) -> Response:
    try:
        return json_response(data)
    except TypeError:
        # orjson stops at 64-bit integers; a spec may hold bigger ones (`timeout_sec: 1e30` as int).
        import json

        return Response(json.dumps(data, ensure_ascii=False, default=str), media_type="application/json")


async def _read_body(request: Request) -> dict[str, Any]:
    raw = await request.body()
    if len(raw) > MAX_BODY_BYTES:
        raise ApiError(413, "bad_request", f"request body is larger than {MAX_BODY_BYTES} bytes")
    if not raw.strip():
        return {}
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise ApiError.bad_request(f"request body is not valid JSON: {exc}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ApiError.bad_request(f"request body must be a JSON object, got {_type_name(data)}")
    # pydagu sends every key, unset ones as null: null means "not given".
    return {k: v for k, v in data.items() if v is not None}


def _type_name(value: Any) -> str:
    return {dict: "an object", list: "an array", str: "a string", bool: "a boolean", int: "a number",
            float: "a number"}.get(type(value), type(value).__name__)
