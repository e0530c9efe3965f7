"""The append-only status file of one run attempt (`status.jsonl`): writing and replaying it.

Line formats (one JSON object per line, each ending in a newline):

    {"t":"snapshot","run":{...RunRecord.to_json()...}}
    {"t":"node","key":3,"set":{"status":4,"finishedAt":"2026-11-24T18:07:36.437Z"}}
    {"t":"node","key":"onExit","set":{...}}
    {"t":"run","set":{"status":4,"finishedAt":"..."}}

The writer puts a snapshot first, then one small record per change (the changed
fields only, in their JSON form), and a last snapshot on close, after which the
file is compacted to that one line. Every line is one `os.write` on an O_APPEND
descriptor, so a killed writer leaves at worst a missing last newline, never a
torn line in the middle. `read_status` replays the last complete snapshot and
the complete change lines after it; lines that don't parse are skipped. A line
without `"t"` is read as a whole Dagu 1.30 status snapshot, so old files load.

This module does not decide *what* changed; the DagRunActor does.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import orjson

from dagu.errors import NotFound
from dagu.status import NodeStatus, RunStatus
from dagu.store.fsutil import atomic_write
from dagu.store.records import HANDLER_KEYS, NodeRecord, RunRecord, encode_node_fields, encode_run_fields

__all__ = ["StatusWriter", "read_status", "rewrite_status", "encode_snapshot"]

_SNAPSHOT_PREFIX = b'{"t":"snapshot"'
_NL = 0x0A


class StatusWriter:
    """Appends the status of one attempt to its `status.jsonl`; owned by one thread (the DagRunActor's).

    Typical use: `open(record)`, then `update_node(...)`/`update_run(...)` per change,
    then `close(record)`. A change is on disk (fsynced when terminal) before the
    call returns, so it is safe to announce it afterwards.
    """

    def __init__(self, path: str | os.PathLike[str]):
        self.path = Path(path)
        self._fd: int | None = None

    @property
    def is_open(self) -> bool:
        return self._fd is not None

    def open(self, record: RunRecord) -> None:
        """Write a full, fsynced snapshot of `record`: a new file, or appended to an existing one."""
        if self._fd is not None:
            raise RuntimeError(f"{self.path} is already open")
        snapshot = encode_snapshot(record)
        if not self.path.exists():
            # Born whole: a crash can't leave a status file without a snapshot.
            atomic_write(self.path, snapshot)
            snapshot = b""
        self._fd = os.open(self.path, os.O_RDWR | os.O_APPEND)  # RDWR: to check the last byte
        try:
            if snapshot:
                self._end_torn_line()
                self._append(snapshot, durable=True)
        except BaseException:
            self.release()
            raise

    def update_node(
        self, record: RunRecord, key: int | str, *, durable: bool | None = None, **fields: Any
    ) -> NodeRecord:
        """Write a change of node `key` (index or handler name), then apply it to `record`.

        Args:
            record: the working copy; the node is updated only after the write succeeded.
            key: index into `record.nodes`, or `"onExit"`-style handler name.
            durable: fsync before returning; by default only when `status` becomes final.
            fields: NodeRecord attributes and their new values.

        Returns:
            The updated node.

        Raises:
            KeyError: `record` has no such node.
            ValueError: an unknown field name.
        """
        node = record.node(key)
        encoded = encode_node_fields(fields)
        if durable is None:
            durable = "status" in fields and NodeStatus(fields["status"]).is_done
        self.append_change({"t": "node", "key": key, "set": encoded}, durable=durable)
        for attr, value in fields.items():
            setattr(node, attr, value)
        return node

    def update_run(self, record: RunRecord, *, durable: bool | None = None, **fields: Any) -> RunRecord:
        """Write a change of run-level fields, then apply it to `record`.

        `durable` defaults to True when `status` becomes a final run status.

        Raises:
            ValueError: an unknown field, or `nodes`/handler nodes (use `update_node`).
        """
        encoded = encode_run_fields(fields)
        if durable is None:
            durable = "status" in fields and _is_final_run_status(RunStatus(fields["status"]))
        self.append_change({"t": "run", "set": encoded}, durable=durable)
        for attr, value in fields.items():
            setattr(record, attr, value)
        return record

    def append_change(self, change: Mapping[str, Any], *, durable: bool = False) -> None:
        """Append one already-encoded change line (`{"t":"node"|"run", ...}`)."""
        self._append(orjson.dumps(change, default=_json_default) + b"\n", durable=durable)

    def close(self, record: RunRecord) -> None:
        """Write the final snapshot, then compact the file to that single line.

        The snapshot is appended (and fsynced) first, so a crash during compaction
        still leaves the final state readable; the compaction itself is a temp
        file + fsync + rename + folder fsync.
        """
        line = encode_snapshot(record)
        self._append(line, durable=True)
        self.release()
        atomic_write(self.path, line)

    def release(self) -> None:
        """Close the descriptor without a final snapshot; the file stays readable as it is."""
        fd, self._fd = self._fd, None
        if fd is not None:
            os.close(fd)

    def __enter__(self) -> StatusWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()

    def _append(self, line: bytes, *, durable: bool) -> None:
        if self._fd is None:
            raise RuntimeError(f"{self.path} is not open")
        # One write() per line: on an O_APPEND fd the kernel places it at the end in
        # one piece, so a kill -9 can't interleave or tear lines. A short write only
        # happens on a full disk; finishing it keeps the line whole if space returns.
        written = os.write(self._fd, line)
        while written < len(line):
            written += os.write(self._fd, line[written:])
        if durable:
            _fdatasync(self._fd)

    def _end_torn_line(self) -> None:
        # A previous writer killed mid-line (or a foreign tool) may have left no
        # trailing newline; start ours on a fresh line so it can't be glued on.
        size = os.fstat(self._fd).st_size
        if size and os.pread(self._fd, 1, size - 1) != b"\n":
            os.write(self._fd, b"\n")


def encode_snapshot(record: RunRecord) -> bytes:
    """The snapshot line for `record`, newline included."""
    return orjson.dumps({"t": "snapshot", "run": record.to_json()}, default=_json_default) + b"\n"


def rewrite_status(path: str | os.PathLike[str], record: RunRecord) -> None:
    """Replace the status file with one snapshot of `record`, atomically.

    For writers that are not the run's owner (zombie repair, queue records).
    """
    atomic_write(path, encode_snapshot(record))


def read_status(path: str | os.PathLike[str]) -> RunRecord:
    """Rebuild the latest state from a status file, tolerating a crash at any point.

    Only complete lines count: bytes after the last newline (a write cut short) are
    ignored, and so are lines that are not valid JSON or don't have a known shape.

    Raises:
        NotFound: the file is missing or holds no complete snapshot.
    """
    try:
        data = Path(path).read_bytes()
    except FileNotFoundError:
        raise NotFound(f"status file {path} does not exist") from None
    end = data.rfind(b"\n") + 1
    found = _last_snapshot(data, end) or _last_legacy_snapshot(data, end)
    if found is None:
        raise NotFound(f"status file {path} holds no complete status record")
    run, after = found
    if after < end:
        for line in data[after:end].split(b"\n"):
            if line:
                _apply_change(run, line)
    return RunRecord.from_json(run)


def _last_snapshot(data: bytes, end: int) -> tuple[dict[str, Any], int] | None:
    """(run dict, offset after its line) of the last snapshot line that parses."""
    pos = end
    while (start := data.rfind(_SNAPSHOT_PREFIX, 0, pos)) >= 0:
        pos = start
        if start and data[start - 1] != _NL:
            continue  # the prefix inside some other line's text
        stop = data.index(b"\n", start)
        run = _loads(data[start:stop])
        if isinstance(run, dict) and isinstance(run.get("run"), dict):
            return run["run"], stop + 1
    return None


def _last_legacy_snapshot(data: bytes, end: int) -> tuple[dict[str, Any], int] | None:
    stop = end
    while stop > 0:
        start = data.rfind(b"\n", 0, stop - 1) + 1
        run = _loads(data[start : stop - 1])
        if isinstance(run, dict) and "t" not in run and "dagRunId" in run:
            return run, stop
        stop = start
    return None


def _apply_change(run: dict[str, Any], line: bytes) -> None:
    change = _loads(line)
    if not isinstance(change, dict) or not isinstance(fields := change.get("set"), dict):
        return
    kind = change.get("t")
    if kind == "run":
        fields.pop("nodes", None)
        run.update(fields)
    elif kind == "node":
        node = _node_dict(run, change.get("key"))
        if node is not None:
            node.update(fields)
    elif kind == "snapshot" and isinstance(change.get("run"), dict):
        # Only reachable if a snapshot line failed the prefix test (it can't, as we
        # write it); keep the replay correct anyway.
        run.clear()
        run.update(change["run"])


def _node_dict(run: dict[str, Any], key: Any) -> dict[str, Any] | None:
    if isinstance(key, str):
        if key not in HANDLER_KEYS:
            return None
        node = run.get(key)
        if not isinstance(node, dict):
            node = run[key] = {}
        return node
    nodes = run.get("nodes")
    if not isinstance(key, int) or isinstance(key, bool) or not isinstance(nodes, list):
        return None
    if 0 <= key < len(nodes) and isinstance(nodes[key], dict):
        return nodes[key]
    return None


def _loads(line: bytes) -> Any:
    try:
        return orjson.loads(line)
    except orjson.JSONDecodeError:
        return None


def _is_final_run_status(status: RunStatus) -> bool:
    return status not in (RunStatus.NOT_STARTED, RunStatus.RUNNING, RunStatus.QUEUED, RunStatus.WAITING)


def _json_default(value: Any) -> Any:
    # Step dicts may arrive with read-only mappings or sets from the frozen model.
    if isinstance(value, Mapping):
        return dict(value)
    if isinstance(value, (set, frozenset)):
        return sorted(value)
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    raise TypeError(f"cannot store {type(value).__name__} in a status record")


def _fdatasync(fd: int) -> None:
    # fdatasync skips the inode's timestamps; enough for appended data on Linux.
    getattr(os, "fdatasync", os.fsync)(fd)
