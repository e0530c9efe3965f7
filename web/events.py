"""Server-sent events: `GET <api>/events` streams run, step and queue events as they happen.

One `EventHub` per app holds one subscriber socket on the event bus (`dagu.events`)
and fans each event out to the connected clients, each through its own bounded
buffer. The socket is bound while at least one client is connected, so publishers
send nothing to a server nobody watches. This module does not make events; run
processes and the queue store publish them.

Wire format, one event per message:

    id: 42
    event: step
    data: {"type":"step","dagName":"etl","dagRunId":"...","step":"load","status":1,...}

plus a `: heartbeat` comment every `heartbeat_s` so proxies keep the connection open.
A client whose buffer fills (it reads slower than events arrive) gets a final
`event: dropped` and is disconnected; reconnecting and refetching is its recovery.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from dagu.events import EVENT_TYPES, EventSubscriber, events_dir
from web.errors import ApiError
from web.security import Permission, require

__all__ = ["api_routes", "EventFilter", "EventHub", "HubSnapshot"]

logger = logging.getLogger(__name__)

HEARTBEAT_S = 15.0
CLIENT_BUFFER = 1024  # events buffered per client before it counts as too slow
_HUB_ATTR = "event_hub"


def api_routes(settings: Any, *, heartbeat_s: float = HEARTBEAT_S, client_buffer: int = CLIENT_BUFFER) -> list[Route]:
    """Routes mounted under each API base: `GET /events` (SSE).

    Every mount of these routes in one app shares the app's `EventHub` (`app.state.event_hub`).
    """
    directory = events_dir(settings.data_dir)

    async def events(request: Request) -> Response:
        require(request, Permission.READ)
        flt = EventFilter.from_query(request.query_params.get("dagName"), request.query_params.get("dagRunId"),
                                     request.query_params.getlist("types"))
        hub = _hub_of(request, lambda: EventHub(directory, client_buffer=client_buffer))
        client = hub.connect(flt)
        return _EventStream(client, hub, heartbeat_s)

    return [Route("/events", events, methods=["GET"])]


@dataclass(frozen=True, slots=True)
class EventFilter:
    """Which events a client wants; None matches anything."""

    dag_name: str | None = None
    run_id: str | None = None  # the run itself, or any sub-DAG run under this root run
    types: frozenset[str] = frozenset(EVENT_TYPES)

    @classmethod
    def from_query(cls, dag_name: str | None, run_id: str | None, types: list[str]) -> EventFilter:
        """Raises: ApiError 400 for an unknown event type."""
        wanted = {t.strip() for value in types for t in value.split(",") if t.strip()}
        unknown = wanted - set(EVENT_TYPES)
        if unknown:
            raise ApiError.bad_request(f"unknown event type(s) {', '.join(sorted(unknown))}; use {', '.join(EVENT_TYPES)}")
        return cls(dag_name or None, run_id or None, frozenset(wanted) if wanted else frozenset(EVENT_TYPES))

    def matches(self, event: dict[str, Any]) -> bool:
        if event.get("type") not in self.types:
            return False
        if self.dag_name is not None and event.get("dagName") != self.dag_name:
            return False
        return self.run_id is None or self.run_id in (event.get("dagRunId"), event.get("rootDagRunId"))


@dataclass(frozen=True, slots=True)
class HubSnapshot:
    clients: int
    subscribed: bool  # the bus socket is bound
    socket_path: str | None
    last_id: int
    dropped_clients: int


class EventHub:
    """The bus socket of one server and its SSE clients; lives on the event loop's thread.

    Args:
        directory: the events folder.
        client_buffer: events one client may have waiting before it is dropped.
    """

    def __init__(self, directory: str | Path, *, client_buffer: int = CLIENT_BUFFER) -> None:
        self.directory = Path(directory)
        self.client_buffer = client_buffer
        self._clients: set[_Client] = set()
        self._subscriber: EventSubscriber | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._last_id = 0  # ids only grow, across reconnects and socket rebinds
        self._dropped = 0

    def connect(self, flt: EventFilter) -> _Client:
        """Register a client; binds the bus socket for the first one."""
        if self._subscriber is None:
            self._open()
        client = _Client(flt, asyncio.Queue(self.client_buffer))
        self._clients.add(client)
        logger.debug("events: client connected (%d now)", len(self._clients))
        return client

    def disconnect(self, client: _Client) -> None:
        """Forget a client; the last one out unbinds the socket. Safe to call twice."""
        if client in self._clients:
            self._clients.discard(client)
            logger.debug("events: client disconnected (%d left)", len(self._clients))
        if not self._clients:
            self._close()

    def snapshot(self) -> HubSnapshot:
        sub = self._subscriber
        return HubSnapshot(len(self._clients), sub is not None, str(sub.path) if sub else None, self._last_id, self._dropped)

    def _open(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._subscriber = EventSubscriber(self.directory)
        self._loop.add_reader(self._subscriber.fileno(), self._on_readable)
        logger.info("events: listening on %s", self._subscriber.path)

    def _close(self) -> None:
        if self._subscriber is None:
            return
        assert self._loop is not None
        self._loop.remove_reader(self._subscriber.fileno())
        self._subscriber.close()
        logger.info("events: stopped listening on %s", self._subscriber.path)
        self._subscriber = None

    def _on_readable(self) -> None:
        if self._subscriber is None:
            return
        for event in self._subscriber.receive():
            self._last_id += 1
            for client in list(self._clients):
                if client.filter.matches(event) and not client.offer(self._last_id, event):
                    self._dropped += 1
                    logger.warning("events: a client fell %d events behind; dropping it", self.client_buffer)
                    self.disconnect(client)


class _Client:
    """One SSE connection's filter and buffer; None in the buffer means "you were dropped"."""

    __slots__ = ("filter", "queue")

    def __init__(self, flt: EventFilter, queue: asyncio.Queue[tuple[int, dict[str, Any]] | None]) -> None:
        self.filter = flt
        self.queue = queue

    def offer(self, event_id: int, event: dict[str, Any]) -> bool:
        """Buffer an event; False (and the buffer swapped for the drop notice) when it is full."""
        try:
            self.queue.put_nowait((event_id, event))
            return True
        except asyncio.QueueFull:
            while not self.queue.empty():
                self.queue.get_nowait()
            self.queue.put_nowait(None)
            return False


class _EventStream(StreamingResponse):
    """The SSE response; whichever way it ends (done, dropped, client gone), the client leaves the hub."""

    def __init__(self, client: _Client, hub: EventHub, heartbeat_s: float) -> None:
        self._client = client
        self._hub = hub
        self._body = _frames(client, heartbeat_s)
        super().__init__(self._body, media_type="text/event-stream",
                         headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        # A disconnect cancels the send in progress, which can leave the generator
        # suspended at a `yield`; close it here rather than whenever it is collected.
        try:
            await super().__call__(scope, receive, send)
        finally:
            self._hub.disconnect(self._client)
            await self._body.aclose()


async def _frames(client: _Client, heartbeat_s: float) -> AsyncIterator[bytes]:
    # The first frame goes out at once: when a client sees it, the hub is subscribed.
    yield b"retry: 3000\n: connected\n\n"
    while True:
        try:
            item = await asyncio.wait_for(client.queue.get(), heartbeat_s)
        except TimeoutError:
            yield b": heartbeat\n\n"
            continue
        if item is None:
            yield b'event: dropped\ndata: {"reason":"the client read too slowly; reconnect and refetch"}\n\n'
            return
        event_id, event = item
        yield b"id: %d\nevent: %s\ndata: %s\n\n" % (event_id, event["type"].encode(), orjson.dumps(event))


def _hub_of(request: Request, make: Callable[[], EventHub]) -> EventHub:
    state = request.app.state
    hub = getattr(state, _HUB_ATTR, None)
    if hub is None:
        hub = make()
        setattr(state, _HUB_ATTR, hub)
    return hub
