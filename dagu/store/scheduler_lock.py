"""The scheduler's HA lock: only the scheduler holding it fires cron jobs for a data folder (service.md 4.9).

The lock is the directory `<data>/scheduler/locks/.dagu_lock`, made with `mkdir`
(atomic), with an `owner` file naming its holder. The holder touches the
directory's mtime from a thread; a lock untouched for `stale_after_s` belongs to a
dead holder and is taken over. This module does not decide what a holder does;
the SchedulerActor asks `is_held()` before firing.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import socket
import threading
import time
from collections.abc import Callable
from pathlib import Path

__all__ = ["LOCK_NAME", "SchedulerLock", "scheduler_lock_dir"]

logger = logging.getLogger(__name__)

LOCK_NAME = ".dagu_lock"
_OWNER_FILE = "owner"
_MAX_TOUCH_INTERVAL_S = 7.0  # Dagu's holder touches every 7 s


def scheduler_lock_dir(data_dir: str | os.PathLike[str]) -> Path:
    """`<data>/scheduler/locks/.dagu_lock`."""
    return Path(data_dir) / "scheduler" / "locks" / LOCK_NAME


class SchedulerLock:
    """A stale-aware directory lock held by one scheduler process at a time.

    Args:
        path: the lock directory (see `scheduler_lock_dir`).
        stale_after_s: a lock whose mtime is older than this is taken over.
        on_lost: called from the touch thread when the holder finds the lock is
            no longer its own (taken over after this process stalled).
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        stale_after_s: float = 30.0,
        on_lost: Callable[[], None] | None = None,
    ) -> None:
        self.path = Path(path)
        self.stale_after_s = stale_after_s
        self.touch_interval_s = min(_MAX_TOUCH_INTERVAL_S, stale_after_s / 3)
        self.on_lost = on_lost
        self.owner = f"{socket.gethostname()}:{os.getpid()}:{os.urandom(4).hex()}"
        self._guard = self.path.with_name(self.path.name + ".takeover")
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def try_acquire(self) -> bool:
        """Take the lock if it is free or stale; True when this object now holds it."""
        if self._thread is not None and self.is_held():
            return True
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if not self._make() and not self._take_over_if_stale():
            return False
        self._stop.clear()
        self._thread = threading.Thread(target=self._touch_loop, name="scheduler-lock-touch", daemon=True)
        self._thread.start()
        logger.info("scheduler lock %s acquired by %s", self.path, self.owner)
        return True

    def is_held(self) -> bool:
        """Whether the lock directory exists and names this object as its owner."""
        return self.holder() == self.owner

    def holder(self) -> str | None:
        """Who holds the lock (`host:pid:token`), or None when it is free or has no owner yet."""
        try:
            return (self.path / _OWNER_FILE).read_text().strip() or None
        except (FileNotFoundError, NotADirectoryError):
            return None

    def release(self) -> None:
        """Stop touching and remove the lock if it is still ours. Safe to call twice."""
        self._stop_touching()
        if self.is_held():
            self._remove(self.path)
            logger.info("scheduler lock %s released by %s", self.path, self.owner)

    def _make(self) -> bool:
        try:
            os.mkdir(self.path)
        except FileExistsError:
            return False
        # A crash right here leaves a lock without an owner; it goes stale and is taken over.
        (self.path / _OWNER_FILE).write_text(self.owner + "\n")
        return True

    def _take_over_if_stale(self) -> bool:
        """Replace a stale lock with ours, under a short takeover guard.

        Without the guard two contenders could both judge the old lock stale;
        the first renames it away and makes a fresh one, and the second would
        then rename away the *fresh* lock and make its own: two holders. Under
        the guard the second re-checks and finds the fresh lock alive.
        """
        if not self._is_stale(self.path):
            return False
        try:
            os.mkdir(self._guard)
        except FileExistsError:
            # A contender died inside its takeover; clear its guard once it is stale too.
            if self._is_stale(self._guard):
                with contextlib.suppress(OSError):
                    os.rmdir(self._guard)
            return False
        try:
            if not self._is_stale(self.path):
                return self._make()  # taken over and released meanwhile, or ours to make
            logger.warning("scheduler lock %s held by %s is stale; taking it over", self.path, self.holder())
            self._remove(self.path)
            return self._make()
        finally:
            with contextlib.suppress(OSError):
                os.rmdir(self._guard)

    def _is_stale(self, path: Path) -> bool:
        try:
            return time.time() - path.stat().st_mtime > self.stale_after_s
        except FileNotFoundError:
            return False

    def _remove(self, path: Path) -> None:
        # Rename first: the name is free at once, and a half-done rmtree never looks like a lock.
        trash = path.with_name(f"{path.name}.removed.{os.getpid()}.{os.urandom(4).hex()}")
        try:
            os.rename(path, trash)
        except FileNotFoundError:
            return
        shutil.rmtree(trash, ignore_errors=True)

    def _touch_loop(self) -> None:
        while not self._stop.wait(self.touch_interval_s):
            if not self.is_held():
                logger.error("scheduler lock %s was taken over by %s; standing by", self.path, self.holder())
                self._stop.set()
                if self.on_lost is not None:
                    self.on_lost()
                return
            with contextlib.suppress(FileNotFoundError):
                os.utime(self.path)

    def _stop_touching(self) -> None:
        self._stop.set()
        thread, self._thread = self._thread, None
        if thread is not None and thread is not threading.current_thread():
            thread.join()
