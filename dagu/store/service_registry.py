"""Which long-running services are up: one JSON file per instance under `data/service-registry/<service>/`.

A service registers when it starts, touches its file while it runs (so a crashed
instance goes stale instead of looking alive) and removes the file when it stops.
The API's `/services/*` routes read the folder.
"""

from __future__ import annotations

import contextlib
import os
import socket
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson

from dagu.store.fsutil import atomic_write

__all__ = ["Registration", "register", "instances", "STALE_AFTER_S"]

REFRESH_S = 10.0
STALE_AFTER_S = 30.0  # no touch for this long: the instance is reported inactive


class Registration:
    """This process's entry; `close()` removes it. Touched every REFRESH_S by a daemon thread."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._refresh, name=f"registry-{path.stem}", daemon=True)
        self._thread.start()

    def _refresh(self) -> None:
        while not self._stop.wait(REFRESH_S):
            with contextlib.suppress(OSError):
                os.utime(self.path)

    def close(self) -> None:
        self._stop.set()
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()


def register(data_dir: str | os.PathLike[str], service: str, *, host: str, port: int | None = None) -> Registration:
    """Write this instance's entry (`instanceId`, `host`, `port`, `pid`, `startedAt`) and keep it fresh."""
    instance = f"{socket.gethostname()}-{os.getpid()}"
    folder = Path(data_dir) / "service-registry" / service
    folder.mkdir(parents=True, exist_ok=True)
    doc = {"instanceId": instance, "host": host, "port": port, "pid": os.getpid(),
           "startedAt": datetime.now(UTC).isoformat(timespec="seconds")}
    path = folder / f"{instance}.json"
    atomic_write(path, orjson.dumps(doc))
    return Registration(path)


def instances(data_dir: str | os.PathLike[str], service: str) -> list[dict[str, Any]]:
    """Registered instances of `service`, each with `status` active (fresh) or inactive (stale)."""
    folder = Path(data_dir) / "service-registry" / service
    found = []
    now = time.time()
    for path in sorted(folder.glob("*.json")) if folder.is_dir() else ():
        try:
            doc = orjson.loads(path.read_bytes())
            age = now - path.stat().st_mtime
        except (OSError, orjson.JSONDecodeError):
            continue  # removed while we looked, or not ours
        if isinstance(doc, dict):
            doc["status"] = "active" if age < STALE_AFTER_S else "inactive"
            found.append(doc)
    return found
