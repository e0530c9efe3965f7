"""Crash-safe file primitives for the store: atomic whole-file writes, folder fsync, folder locks.

This module knows nothing about runs or formats; it only makes sure that a reader
never sees half a file and that a rename survives a power cut.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Iterator
from pathlib import Path

from dagu.errors import Conflict

__all__ = ["atomic_write", "fsync_dir", "dir_lock", "TEMP_SUFFIX"]

TEMP_SUFFIX = ".tmp"


def atomic_write(path: str | os.PathLike[str], data: bytes, *, mode: int = 0o644) -> None:
    """Replace `path` with `data` so readers see the old file or the new one, never a mix.

    The bytes go to a hidden temp file in the same folder (rename is only atomic
    within one file system), which is fsynced, renamed over `path`, and then the
    folder is fsynced so the rename itself is durable.
    """
    target = Path(path)
    tmp = target.with_name(f".{target.name}.{os.getpid()}.{os.urandom(4).hex()}{TEMP_SUFFIX}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    try:
        try:
            _write_all(fd, data)
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    fsync_dir(target.parent)


def fsync_dir(path: str | os.PathLike[str]) -> None:
    """Flush a folder's entries (new, renamed or removed names) to disk."""
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@contextlib.contextmanager
def dir_lock(
    path: str | os.PathLike[str],
    *,
    stale_s: float = 30.0,
    retry_s: float = 0.05,
    timeout_s: float = 10.0,
) -> Iterator[None]:
    """Hold a lock that is a directory (`mkdir` is atomic); Dagu's `.dagu_lock` primitive.

    A lock directory older than `stale_s` is taken to belong to a dead holder and
    is removed, so a crash while holding it blocks others for at most `stale_s`.

    Raises:
        Conflict: the lock stayed held for `timeout_s`.
    """
    lock = Path(path)
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            os.mkdir(lock)
            break
        except FileExistsError:
            _remove_if_stale(lock, stale_s)
            if time.monotonic() >= deadline:
                raise Conflict(f"lock {lock} is held by another process; try again later") from None
            time.sleep(retry_s)
    try:
        yield
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.rmdir(lock)


def _remove_if_stale(lock: Path, stale_s: float) -> None:
    try:
        age = time.time() - lock.stat().st_mtime
        if age > stale_s:
            os.rmdir(lock)
    except (FileNotFoundError, OSError):
        # Someone else released or removed it between our stat and rmdir; just retry.
        pass


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        view = view[written:]
