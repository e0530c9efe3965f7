"""Queue items on disk: one small JSON file per queued run (service.md 4.6).

    <data>/queue/<queueName>/item_<high|low>_<YYYYMMDD_HHMMSS>_<nnnnnnnnn>Z_<runId>.json
    {"fileName": "<same name>", "dagRun": {"name": "<dag>", "id": "<runId>"}, "queuedAt": "<RFC3339Nano>"}

An item is only a pointer: the run's `status.jsonl` (status queued) is the source
of truth, and deciding whether and when to start a run is the QueueActor's job,
not this module's. Items are written whole (temp file, then a no-clobber link), so
a reader never sees half an item and two pushes never overwrite each other.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import orjson

from dagu.errors import InvalidRequest
from dagu.store.fsutil import fsync_dir
from dagu.store.naming import validate_run_id

__all__ = ["QueueItem", "QueueStore", "PRIORITIES", "validate_queue_name"]

logger = logging.getLogger(__name__)

PRIORITIES = ("high", "low")  # dispatch order: every high item before any low one

_ITEM_RE = re.compile(r"^item_(high|low)_(\d{8}_\d{6})_(\d{9})Z_([-a-zA-Z0-9_]+)\.json$")
_TEMP_PREFIX = "queue_"
_NS = 1_000_000_000


@dataclass(frozen=True, slots=True)
class QueueItem:
    """One queued run as found on disk."""

    queue: str
    dag_name: str
    run_id: str
    priority: str  # "high" or "low"
    queued_at: datetime  # UTC, from the file name (microseconds kept; the name has ns)
    path: Path

    @property
    def sort_key(self) -> tuple[int, str]:
        """High before low, then FIFO by the nanosecond stamp in the file name."""
        return PRIORITIES.index(self.priority), self.path.name.split("_", 2)[2]


class QueueStore:
    """The queue folder `<data>/queue`: push, list, find and remove items.

    Args:
        queue_dir: `Settings.queue_dir`.
        clock_ns: unix nanoseconds now; injected by tests.
    """

    def __init__(self, queue_dir: str | os.PathLike[str], *, clock_ns: Callable[[], int] = time.time_ns):
        self.queue_dir = Path(queue_dir)
        self._clock_ns = clock_ns
        # Stamps handed out by this store only grow, so two pushes from one process
        # in the same nanosecond keep their order; other processes are kept apart by
        # the no-clobber link in `_publish`.
        self._last_ns = 0
        self._lock = threading.Lock()

    def push(
        self, queue: str, dag_name: str, run_id: str, *, priority: str = "low", now: datetime | int | None = None
    ) -> QueueItem:
        """Write a new item at the tail of `queue` (of its priority class).

        Args:
            now: the enqueue time, a datetime or unix nanoseconds; the clock when None.

        Raises:
            InvalidRequest: bad queue name, run ID or priority.
        """
        validate_queue_name(queue)
        validate_run_id(run_id)
        if priority not in PRIORITIES:
            raise InvalidRequest(f"invalid queue priority {priority!r}: use 'high' or 'low'")
        if not dag_name:
            raise InvalidRequest("a queue item needs a DAG name")
        folder = self.queue_dir / queue
        folder.mkdir(parents=True, exist_ok=True)
        stamp = self._next_ns(now)
        while True:
            name = _item_name(priority, stamp, run_id)
            if self._publish(folder, name, _item_body(name, dag_name, run_id, stamp)):
                break
            stamp += 1  # another process took this nanosecond for the same run ID
        logger.debug("queue %s: pushed %s/%s (%s)", queue, dag_name, run_id, priority)
        item = QueueItem(queue, dag_name, run_id, priority, _ns_to_datetime(stamp), folder / name)
        self._announce(item, "enqueued")
        return item

    def items(self, queue: str) -> list[QueueItem]:
        """Items of `queue` in dispatch order: high first, then low, each FIFO.

        Files that vanish or don't parse are skipped (logged at debug).
        """
        validate_queue_name(queue)
        folder = self.queue_dir / queue
        found = []
        for name in _listdir(folder):
            if _ITEM_RE.match(name) and (item := _read_item(queue, folder / name)) is not None:
                found.append(item)
        found.sort(key=lambda i: i.sort_key)
        return found

    def queue_names(self) -> list[str]:
        """Names of the queue folders that exist (with or without items), sorted."""
        try:
            with os.scandir(self.queue_dir) as it:
                return sorted(e.name for e in it if e.is_dir() and not e.name.startswith("."))
        except (FileNotFoundError, NotADirectoryError):
            return []

    def find(self, queue: str, run_id: str, dag_name: str | None = None) -> QueueItem | None:
        """The item of run `run_id` (of `dag_name` when given) in `queue`, or None."""
        for item in self.items(queue):
            if item.run_id == run_id and (dag_name is None or item.dag_name == dag_name):
                return item
        return None

    def remove(self, item: QueueItem) -> bool:
        """Delete an item; False if it was already gone (someone else removed it)."""
        try:
            os.unlink(item.path)
        except FileNotFoundError:
            return False
        with contextlib.suppress(OSError):
            fsync_dir(item.path.parent)
        self._announce(item, "dequeued")
        return True

    def pop_first(self, queue: str) -> QueueItem | None:
        """Remove and return the head of `queue` (`dagu dequeue` without a run), or None if empty.

        Two callers racing for the head each get a different item: the loser of
        an unlink moves on to the next one.
        """
        for item in self.items(queue):
            if self.remove(item):
                return item
        return None

    # -- private ------------------------------------------------------------------------

    def _announce(self, item: QueueItem, action: str) -> None:
        # The events folder is a sibling of the queue folder (both live in the data folder).
        from dagu.events import publish_once, queue_event

        publish_once(self.queue_dir.parent / "events", queue_event(item.dag_name, item.run_id, item.queue, action))

    def _next_ns(self, now: datetime | int | None) -> int:
        if isinstance(now, datetime):
            stamp = _datetime_to_ns(now)
        elif isinstance(now, int):
            stamp = now
        else:
            stamp = self._clock_ns()
        with self._lock:
            if now is None:
                stamp = max(stamp, self._last_ns + 1)
            self._last_ns = max(self._last_ns, stamp)
        return stamp

    @staticmethod
    def _publish(folder: Path, name: str, body: bytes) -> bool:
        """Write `body` to a temp file and link it in as `name`; False if `name` exists.

        `os.link` fails on an existing name where `os.replace` would silently
        overwrite another run's item.
        """
        tmp = folder / f"{_TEMP_PREFIX}{os.getpid()}_{os.urandom(4).hex()}.tmp"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        try:
            try:
                os.write(fd, body)  # a few hundred bytes: one write
                os.fsync(fd)
            finally:
                os.close(fd)
            try:
                os.link(tmp, folder / name)
            except FileExistsError:
                return False
        finally:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
        fsync_dir(folder)
        return True


def validate_queue_name(queue: str) -> str:
    """Return `queue` if it can be a folder name under the queue dir.

    Raises:
        InvalidRequest: empty, hidden, or holding a path separator.
    """
    if not isinstance(queue, str) or not queue or queue.startswith(".") or any(c in queue for c in "/\\\0"):
        raise InvalidRequest(f"invalid queue name {queue!r}: use a plain name such as 'default' or the DAG's name")
    return queue


def _item_name(priority: str, stamp_ns: int, run_id: str) -> str:
    seconds, nanos = divmod(stamp_ns, _NS)
    moment = datetime.fromtimestamp(seconds, UTC)
    return f"item_{priority}_{moment:%Y%m%d_%H%M%S}_{nanos:09d}Z_{run_id}.json"


def _item_body(name: str, dag_name: str, run_id: str, stamp_ns: int) -> bytes:
    seconds, nanos = divmod(stamp_ns, _NS)
    queued_at = f"{datetime.fromtimestamp(seconds, UTC):%Y-%m-%dT%H:%M:%S}.{nanos:09d}Z"
    return orjson.dumps({"fileName": name, "dagRun": {"name": dag_name, "id": run_id}, "queuedAt": queued_at})


def _read_item(queue: str, path: Path) -> QueueItem | None:
    match = _ITEM_RE.match(path.name)
    try:
        doc = orjson.loads(path.read_bytes())
        dag_name = doc["dagRun"]["name"]
        run_id = doc["dagRun"]["id"]
    except FileNotFoundError:
        return None  # removed while we listed: started or dequeued
    except (OSError, orjson.JSONDecodeError, KeyError, TypeError) as exc:
        logger.debug("queue %s: skipping unreadable item %s: %s", queue, path.name, exc)
        return None
    if not isinstance(dag_name, str) or not dag_name or run_id != match.group(4):
        logger.debug("queue %s: skipping item %s: content does not match its name", queue, path.name)
        return None
    moment = datetime.strptime(match.group(2), "%Y%m%d_%H%M%S").replace(tzinfo=UTC)
    moment = moment.replace(microsecond=int(match.group(3)) // 1000)
    return QueueItem(queue, dag_name, run_id, match.group(1), moment, path)


def _listdir(folder: Path) -> list[str]:
    try:
        with os.scandir(folder) as it:
            return [e.name for e in it]
    except (FileNotFoundError, NotADirectoryError):
        return []


def _datetime_to_ns(moment: datetime) -> int:
    moment = moment.astimezone(UTC)
    return int(moment.replace(microsecond=0).timestamp()) * _NS + moment.microsecond * 1000


def _ns_to_datetime(stamp_ns: int) -> datetime:
    seconds, nanos = divmod(stamp_ns, _NS)
    return datetime.fromtimestamp(seconds, UTC).replace(microsecond=nanos // 1000)
