"""The event bus: small JSON datagrams from run processes to servers, over unix sockets.

A server that wants live updates binds one datagram socket in `<data>/events/`
(`EventSubscriber`). A process that changes something (a run process, `dagu enqueue`,
the queue) sends each event to every socket in that folder (`EventPublisher`,
`publish_once`). Nobody polls: the folder is listed only when there is something to
say, and when nobody listens that costs one failed `listdir`.

Sending never raises and never blocks for long: a receiver whose queue stays full
for `wait_s` loses the event (and is sent to without waiting from then on), and a
socket whose owner is gone is removed. The bus carries only notices; the store stays
the source of truth, so a lost event costs a client one refresh, never correctness.

This module owns the wire format and the socket handling, not who listens (`web.events`)
or when a run announces something (`actors.announcer`).
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import struct
import threading
from collections.abc import Iterator, Mapping
from datetime import datetime
from pathlib import Path
from typing import Any

import orjson

from dagu.status import NodeStatus, RunStatus
from dagu.store.records import format_time, utc_now

__all__ = [
    "EVENT_TYPES",
    "EventPublisher",
    "EventSubscriber",
    "events_dir",
    "publish_once",
    "queue_event",
    "run_event",
    "step_event",
]

logger = logging.getLogger(__name__)

EVENT_TYPES = ("run", "step", "queue")
MAX_EVENT_BYTES = 4096  # events are a few hundred bytes; anything bigger is not ours
_SUFFIX = ".sock"
# sun_path holds 108 bytes on Linux (104 on the BSDs); longer paths go through a folder fd.
_MAX_SUN_PATH = 100


def events_dir(data_dir: str | os.PathLike[str]) -> Path:
    """`<data>/events`, where subscribers bind their sockets."""
    return Path(data_dir) / "events"


def run_event(dag_name: str, run_id: str, status: RunStatus, *, root: tuple[str, str] | None = None,
              at: datetime | None = None) -> dict[str, Any]:
    """A run's status changed. `root`: (DAG name, run ID) of the root run, for sub-DAG runs."""
    event = _base("run", dag_name, run_id, at, root)
    event["status"] = int(status)
    event["statusLabel"] = RunStatus(status).label
    return event


def step_event(dag_name: str, run_id: str, step: str, status: NodeStatus, *, root: tuple[str, str] | None = None,
               at: datetime | None = None) -> dict[str, Any]:
    """A step (node) of a run changed status; `status` is a node status."""
    event = _base("step", dag_name, run_id, at, root)
    event["step"] = step
    event["status"] = int(status)
    event["statusLabel"] = NodeStatus(status).label
    return event


def queue_event(dag_name: str, run_id: str, queue: str, action: str, *, at: datetime | None = None) -> dict[str, Any]:
    """A queue item was added (`action` "enqueued", status queued) or removed ("dequeued").

    A removed item says nothing about the run's new status (it may have started or
    been dequeued by hand), so "dequeued" events carry no status; the run's own
    events tell what became of it.
    """
    event = _base("queue", dag_name, run_id, at, None)
    event["queue"] = queue
    event["action"] = action
    if action == "enqueued":
        event["status"] = int(RunStatus.QUEUED)
        event["statusLabel"] = RunStatus.QUEUED.label
    return event


class EventPublisher:
    """Sends events to every subscriber of one events folder; safe to share between threads.

    Args:
        directory: the events folder (`events_dir(settings.data_dir)`).
        wait_s: how long one send may wait for a subscriber whose queue is full
            (the kernel keeps only a few datagrams per socket). 0 never waits.
    """

    def __init__(self, directory: str | os.PathLike[str], *, wait_s: float = 0.2) -> None:
        self.directory = Path(directory)
        self.wait_s = wait_s
        self._sock: socket.socket | None = None
        self._lagging: set[str] = set()  # made us wait in vain: not waited for until a send succeeds
        self._lock = threading.Lock()
        self._closed = False

    def publish(self, event: Mapping[str, Any]) -> int:
        """Send `event` to every subscriber; return how many got it. Never raises."""
        try:
            names = _socket_names(self.directory)
            if not names:
                return 0
            data = orjson.dumps(event)
            with self._lock:
                if self._closed:
                    return 0
                sock = self._socket()
                with _addresses(self.directory, names) as addresses:
                    return sum(self._send(sock, name, addr, data) for name, addr in addresses)
        except Exception:  # the bus must never break a run
            logger.debug("events: publish to %s failed", self.directory, exc_info=True)
            return 0

    def close(self) -> None:
        """Close the sending socket; later publishes do nothing. Safe to call twice."""
        with self._lock:
            self._closed = True
            if self._sock is not None:
                self._sock.close()
                self._sock = None

    def __enter__(self) -> EventPublisher:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _socket(self) -> socket.socket:
        if self._sock is None:
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
            if self.wait_s > 0:
                # A blocking datagram send with SO_SNDTIMEO waits for room in the peer's
                # queue and gives up with EAGAIN; a Python-level timeout would spin instead,
                # since an unconnected socket polls writable whatever the peer's state.
                secs = int(self.wait_s)
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDTIMEO, struct.pack("ll", secs, int((self.wait_s - secs) * 1e6)))
            else:
                sock.setblocking(False)
            self._sock = sock
        return self._sock

    def _send(self, sock: socket.socket, name: str, addr: str, data: bytes) -> int:
        flags = socket.MSG_DONTWAIT if (self.wait_s <= 0 or name in self._lagging) else 0
        try:
            sock.sendto(data, flags, addr)
            self._lagging.discard(name)  # it reads again: worth waiting for next time
            return 1
        except (BlockingIOError, TimeoutError):
            if name not in self._lagging:
                logger.debug("events: subscriber %s is not keeping up; its events may be dropped", name)
                self._lagging.add(name)
        except ConnectionRefusedError:
            # Nobody is bound to it: its server exited without cleaning up.
            with contextlib.suppress(OSError):
                os.unlink(self.directory / name)
        except OSError as exc:  # vanished, not a socket, not ours: skip it
            logger.debug("events: cannot send to %s: %s", name, exc)
        return 0


def publish_once(directory: str | os.PathLike[str], event: Mapping[str, Any]) -> int:
    """Publish one event without keeping a socket (for rare events: queue changes). Never raises."""
    if not _socket_names(Path(directory)):
        return 0
    with EventPublisher(directory, wait_s=0.05) as publisher:
        return publisher.publish(event)


class EventSubscriber:
    """One bound datagram socket in the events folder; read it when `fileno()` is readable.

    The socket is non-blocking. `close()` removes its file, so publishers stop sending.
    """

    def __init__(self, directory: str | os.PathLike[str]) -> None:
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self.name = f"{os.getpid()}-{os.urandom(3).hex()}{_SUFFIX}"
        self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        try:
            self._sock.setblocking(False)
            with _addresses(self.directory, [self.name]) as [(_, addr)]:
                self._sock.bind(addr)
        except BaseException:
            self._sock.close()
            raise
        self.path = self.directory / self.name

    def fileno(self) -> int:
        return self._sock.fileno()

    def receive(self, limit: int = 256) -> list[dict[str, Any]]:
        """Events waiting on the socket (at most `limit`), oldest first; [] when none.

        Datagrams that are not a JSON object with a known `type` are skipped.
        """
        events = []
        for _ in range(limit):
            try:
                data = self._sock.recv(MAX_EVENT_BYTES)
            except (BlockingIOError, InterruptedError):
                break
            try:
                event = orjson.loads(data)
            except orjson.JSONDecodeError:
                continue
            if isinstance(event, dict) and event.get("type") in EVENT_TYPES:
                events.append(event)
        return events

    def wake(self) -> None:
        """Make a thread waiting in select() on this subscriber return (an empty datagram, skipped by `receive`)."""
        with contextlib.suppress(OSError), socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
            with _addresses(self.directory, [self.name]) as [(_, addr)]:
                sock.sendto(b"", socket.MSG_DONTWAIT, addr)

    def close(self) -> None:
        """Unbind: remove the socket file, then close. Safe to call twice."""
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.path)
        self._sock.close()

    def __enter__(self) -> EventSubscriber:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


# -- helpers ---------------------------------------------------------------------------


def _base(kind: str, dag_name: str, run_id: str, at: datetime | None, root: tuple[str, str] | None) -> dict[str, Any]:
    event: dict[str, Any] = {"type": kind, "dagName": dag_name, "dagRunId": run_id}
    if root is not None and root != (dag_name, run_id):
        event["rootDagName"], event["rootDagRunId"] = root
    event["at"] = format_time(at or utc_now())
    return event


def _socket_names(directory: Path) -> list[str]:
    try:
        return [n for n in os.listdir(directory) if n.endswith(_SUFFIX)]
    except (FileNotFoundError, NotADirectoryError):
        return []


@contextlib.contextmanager
def _addresses(directory: Path, names: list[str]) -> Iterator[list[tuple[str, str]]]:
    """(name, address) pairs for sockets in `directory`, short enough for `sun_path`.

    A deep data folder (a long temp path) would overflow `sun_path`; on Linux the
    folder is then reached through `/proc/self/fd/<fd>`, which resolves like the path.
    """
    longest = len(os.fsencode(directory)) + 1 + max(len(n) for n in names)
    if longest <= _MAX_SUN_PATH or not os.path.isdir("/proc/self/fd"):
        yield [(n, str(directory / n)) for n in names]
        return
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        yield [(n, f"/proc/self/fd/{fd}/{n}") for n in names]
    finally:
        os.close(fd)
