"""Watching the DAGs folder: a helper thread that reports each changed workflow file's path.

Owns the OS watch (inotify through watchfiles' Rust backend) and its thread; it
says only *which* `.yaml`/`.yml` file changed. Whether that means added, changed
or removed is for the receiver to find out by looking, since editors save by
rename and a change's kind is not to be trusted.
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

__all__ = ["DagFolderWatcher", "is_dag_file"]

logger = logging.getLogger(__name__)

_DEBOUNCE_MS = 300  # longest a burst of changes is gathered for
_STEP_MS = 50  # how long quiet must last to end a burst; also how fast close() is noticed


def is_dag_file(path: str | os.PathLike[str]) -> bool:
    """A workflow file: `*.yaml` or `*.yml`, not hidden (editors' and atomic writers' temp files are)."""
    p = Path(path)
    return p.suffix in (".yaml", ".yml") and not p.name.startswith(".")


class DagFolderWatcher:
    """Calls `notify(path)` from its own thread for each workflow file changed in `folder`.

    `start()` has the OS watch in place when it returns, so a file written after
    it is never missed: list the folder after `start()`, not before.
    """

    def __init__(self, folder: str | os.PathLike[str], notify: Callable[[str], None]) -> None:
        self.folder = Path(folder)
        self._notify = notify
        self._stop = threading.Event()
        self._backend: Any = None
        self._thread: threading.Thread | None = None

    def start(self) -> DagFolderWatcher:
        # The low-level RustNotify, not `watchfiles.watch`: the generator only sets up
        # its watch on the first `next()`, inside the thread, leaving a window in which
        # a new file would go unseen. Here the watch exists before start() returns.
        from watchfiles._rust_notify import RustNotify

        self._backend = RustNotify([str(self.folder)], False, False, 300, False, False)
        self._thread = threading.Thread(target=self._run, name=f"dag-watcher {self.folder}", daemon=True)
        self._thread.start()
        return self

    def close(self) -> None:
        """Stop watching; returns within about 50 ms. Safe to call twice."""
        self._stop.set()
        thread, self._thread = self._thread, None
        if thread is not None:
            thread.join()

    def _run(self) -> None:
        backend = self._backend
        try:
            while not self._stop.is_set():
                # timeout 0: wait for changes without a timeout; `_stop` is checked every step.
                changes = backend.watch(_DEBOUNCE_MS, _STEP_MS, 0, self._stop)
                if isinstance(changes, str):
                    continue  # "stop", "signal" or "timeout": the loop condition decides
                for path in sorted({p for _, p in changes if is_dag_file(p)}):
                    self._notify(path)
        except Exception:
            logger.exception("watcher of %s failed; DAG file changes are no longer seen", self.folder)
        finally:
            with contextlib.suppress(Exception):
                backend.close()
