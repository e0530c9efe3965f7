"""Heartbeat ("proc") files that tell other processes a run process is alive (service.md 4.7).

    <data>/proc/<group>/<dag>/proc_<YYYYMMDD_HHMMSS>Z_<runId>.proc

The run process creates its file with O_EXCL and rewrites 8 bytes (big-endian
uint64 unix seconds) every `interval_s`; readers call it alive while the file's
mtime or that timestamp is younger than `stale_after_s`. This module does not
decide what to do with a dead run (zombie repair belongs to the scheduler).
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import struct
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from dagu.errors import Conflict
from dagu.store.naming import safe_name, validate_run_id

__all__ = ["Heartbeat", "ProcEntry", "is_alive", "list_alive", "find_heartbeat"]

logger = logging.getLogger(__name__)

DEFAULT_INTERVAL_S = 15.0
DEFAULT_STALE_AFTER_S = 45.0
_MAX_FUTURE_S = 300.0  # a timestamp further ahead than this is garbage, not a live run
_SYNC_EVERY = 2  # fsync every other beat: 30 s with the default interval
_PROC_RE = re.compile(r"^proc_(\d{8}_\d{6})Z_([-a-zA-Z0-9_]+)\.proc$")
_BEAT = struct.Struct(">Q")


@dataclass(frozen=True, slots=True)
class ProcEntry:
    """One heartbeat file found on disk."""

    group: str
    dag_name: str  # the folder name: the DAG's safe name
    run_id: str
    path: Path
    started_at: datetime


class Heartbeat:
    """The heartbeat of one running DAG run; `start()` it, `close()` it when the run ends.

    Args:
        proc_dir: `<data>/proc`.
        group: the proc group (the DAG's queue, else its name).
        clock: unix seconds now; injected by tests.
    """

    def __init__(
        self,
        proc_dir: str | os.PathLike[str],
        group: str,
        dag_name: str,
        run_id: str,
        interval_s: float = DEFAULT_INTERVAL_S,
        *,
        clock: Callable[[], float] = time.time,
    ):
        self.proc_dir = Path(proc_dir)
        self.interval_s = interval_s
        self._clock = clock
        self._dir = self.proc_dir / safe_name(group) / safe_name(dag_name)
        self._run_id = validate_run_id(run_id)
        self.path: Path | None = None
        self._fd: int | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> Heartbeat:
        """Create the file with a first beat and start the beating thread.

        Raises:
            Conflict: a heartbeat file for this run and second already exists.
        """
        now = self._clock()
        self._dir.mkdir(parents=True, exist_ok=True)
        stamp = datetime.fromtimestamp(int(now), UTC)
        path = self._dir / f"proc_{stamp:%Y%m%d_%H%M%S}Z_{self._run_id}.proc"
        try:
            self._fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        except FileExistsError:
            raise Conflict(f"heartbeat {path} already exists; is run {self._run_id} running twice?") from None
        self.path = path
        self._beat(now, sync=True)
        self._thread = threading.Thread(target=self._run, name=f"heartbeat-{self._run_id}", daemon=True)
        self._thread.start()
        return self

    def close(self) -> None:
        """Stop beating, remove the file and any folders left empty. Safe to call twice."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        fd, self._fd = self._fd, None
        if fd is not None:
            os.close(fd)
        if self.path is not None:
            with contextlib.suppress(FileNotFoundError):
                self.path.unlink()
            for folder in (self._dir, self._dir.parent):
                try:
                    folder.rmdir()
                except OSError:
                    break  # not empty: another run of the group is alive

    def __enter__(self) -> Heartbeat:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _run(self) -> None:
        beats = 0
        while not self._stop.wait(self.interval_s):
            beats += 1
            try:
                self._beat(self._clock(), sync=beats % _SYNC_EVERY == 0)
            except OSError as exc:
                # Keep beating: a full disk may clear, and readers still see the mtime.
                logger.warning("heartbeat %s: write failed: %s", self.path, exc)

    def _beat(self, now: float, *, sync: bool) -> None:
        fd = self._fd
        if fd is None:
            return
        os.pwrite(fd, _BEAT.pack(max(0, int(now))), 0)
        if sync:
            os.fsync(fd)


def is_alive(
    path: str | os.PathLike[str], *, stale_after_s: float = DEFAULT_STALE_AFTER_S, now: float | None = None
) -> bool:
    """Whether a heartbeat file shows a live run: its mtime or its timestamp is fresh.

    Missing files, files shorter than 8 bytes and timestamps more than five
    minutes in the future count as dead.
    """
    now = time.time() if now is None else now
    try:
        with open(path, "rb") as f:
            data = f.read(8)
            mtime = os.fstat(f.fileno()).st_mtime
    except (FileNotFoundError, IsADirectoryError):
        return False
    if len(data) < 8:
        return False
    (stamp,) = _BEAT.unpack(data)
    if stamp > now + _MAX_FUTURE_S:
        return False
    return now - mtime < stale_after_s or now - stamp < stale_after_s


def list_alive(
    proc_dir: str | os.PathLike[str],
    group: str | None = None,
    *,
    stale_after_s: float = DEFAULT_STALE_AFTER_S,
    now: float | None = None,
    remove_stale: bool = False,
) -> list[ProcEntry]:
    """Live heartbeats under `proc_dir` (of one group when given), oldest first.

    Args:
        remove_stale: delete stale files found on the way (Dagu does; off by default
            because a run that was merely suspended would then look dead for good).
    """
    root = Path(proc_dir)
    groups = [root / safe_name(group)] if group is not None else _subdirs(root)
    alive: list[ProcEntry] = []
    for group_dir in groups:
        for dag_dir in _subdirs(group_dir):
            for entry in _proc_files(dag_dir):
                if is_alive(entry.path, stale_after_s=stale_after_s, now=now):
                    alive.append(entry)
                elif remove_stale:
                    with contextlib.suppress(FileNotFoundError):
                        entry.path.unlink()
    alive.sort(key=lambda e: (e.started_at, e.run_id))
    return alive


def find_heartbeat(proc_dir: str | os.PathLike[str], dag_name: str, run_id: str) -> Path | None:
    """The heartbeat file of a run, in whatever group, alive or not; None if there is none."""
    validate_run_id(run_id)
    for group_dir in _subdirs(Path(proc_dir)):
        for entry in _proc_files(group_dir / safe_name(dag_name)):
            if entry.run_id == run_id:
                return entry.path
    return None


def _proc_files(dag_dir: Path) -> list[ProcEntry]:
    try:
        with os.scandir(dag_dir) as it:
            names = [e.name for e in it]
    except (FileNotFoundError, NotADirectoryError):
        return []
    entries = []
    for name in names:
        if match := _PROC_RE.match(name):
            started = datetime.strptime(match.group(1), "%Y%m%d_%H%M%S").replace(tzinfo=UTC)
            entries.append(ProcEntry(dag_dir.parent.name, dag_dir.name, match.group(2), dag_dir / name, started))
    return entries


def _subdirs(path: Path) -> list[Path]:
    try:
        with os.scandir(path) as it:
            return [path / e.name for e in it if e.is_dir()]
    except (FileNotFoundError, NotADirectoryError):
        return []
