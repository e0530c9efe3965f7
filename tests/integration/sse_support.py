"""A real uvicorn on 127.0.0.1 serving the events and metrics routes, and an SSE reader, for the tests.

The app is the smallest one that mounts `web.events` and `web.metrics` the way
`web.app` does (under `/api/v2` and `/api/v1`, metrics also at the root), with the
auth middleware and the ApiError handler.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx
import orjson
from starlette.applications import Starlette
from starlette.routing import Mount

from apiserver import serve_app as serve
from web import auth, events, metrics
from web.errors import ApiError, error_response

__all__ = ["serve", "SseReader", "SseEvent", "build_app"]


def build_app(settings: Any, *, heartbeat_s: float = 15.0, client_buffer: int = 1024) -> Starlette:
    parts = auth.build(settings)

    def api() -> list:
        return [*events.api_routes(settings, heartbeat_s=heartbeat_s, client_buffer=client_buffer), *metrics.api_routes(settings)]

    async def on_api_error(request, exc: ApiError):
        return error_response(exc.status, exc.code, exc.message, exc.headers)

    return Starlette(
        routes=[Mount("/api/v2", routes=api()), Mount("/api/v1", routes=api()), *metrics.root_routes(settings)],
        middleware=parts.middleware,
        exception_handlers={ApiError: on_api_error},
    )


@dataclass(frozen=True)
class SseEvent:
    id: int | None
    event: str
    data: dict[str, Any]


class SseReader:
    """Reads one SSE stream in a thread and keeps what arrives.

    The stream must send heartbeats more often than `read_timeout_s`; the reader
    checks for `close()` between frames.
    """

    def __init__(self, url: str, params: dict[str, str] | None = None, read_timeout_s: float = 10.0) -> None:
        self.events: list[SseEvent] = []
        self.comments: list[str] = []
        self.status_code: int | None = None
        self.headers: httpx.Headers = httpx.Headers()
        self.ended = threading.Event()
        self._connected = threading.Event()
        self._stop = threading.Event()
        self._cond = threading.Condition()
        self._client = httpx.Client(timeout=httpx.Timeout(5.0, read=read_timeout_s))
        self._thread = threading.Thread(target=self._run, args=(url, params), name="sse-reader", daemon=True)
        self._thread.start()
        if not self._connected.wait(20):
            raise AssertionError(f"no answer from {url}")

    def _run(self, url: str, params: dict[str, str] | None) -> None:
        try:
            with self._client.stream("GET", url, params=params) as resp:
                self.status_code = resp.status_code
                self.headers = resp.headers
                if resp.status_code != 200:
                    resp.read()
                    self.body = resp.content
                    self._connected.set()
                    return
                fields: dict[str, str] = {}
                for line in resp.iter_lines():
                    if self._stop.is_set():
                        return
                    if line.startswith(":"):
                        with self._cond:
                            self.comments.append(line[1:].strip())
                            self._cond.notify_all()
                        self._connected.set()
                    elif line:
                        key, _, value = line.partition(":")
                        fields[key] = value.removeprefix(" ")
                    elif "data" in fields:
                        event = SseEvent(int(fields["id"]) if "id" in fields else None, fields.get("event", "message"),
                                         orjson.loads(fields["data"]))
                        with self._cond:
                            self.events.append(event)
                            self._cond.notify_all()
                        fields = {}
        except httpx.HTTPError:
            pass
        finally:
            self.ended.set()
            self._connected.set()

    def wait_for(self, predicate: Callable[[list[SseEvent]], bool], what: str, timeout: float = 30.0) -> list[SseEvent]:
        """Block until `predicate(events)` holds; return the events so far."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while not predicate(self.events):
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"timed out after {timeout}s waiting for {what}; got {[e.data for e in self.events]}")
                self._cond.wait(left)
            return list(self.events)

    def wait_comment(self, text: str, timeout: float = 10.0) -> None:
        deadline = time.monotonic() + timeout
        with self._cond:
            while text not in self.comments:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"no ': {text}' comment within {timeout}s; got {self.comments}")
                self._cond.wait(left)

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=15)
        self._client.close()

    def __enter__(self) -> SseReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
