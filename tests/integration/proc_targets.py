"""Child targets and the supervisor entry for tests/integration/test_processes.py.

Imported by name in spawned children (`proc_targets:serve`), so it lives on the
children's sys.path: the test sets PYTHONPATH to this folder and the repo root.
Every child appends one line per event to `<dir>/events` with a single O_APPEND
write, so lines from different processes never interleave and their order is the
order of the events.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import sys
import time
from pathlib import Path

__all__ = ["crash", "crash_once", "serve", "supervise"]


def serve(folder: str, name: str, ignore_term: bool = False) -> int:
    """Record the start, then wait for SIGTERM; record it and exit 0 (or ignore it)."""

    def on_term(signum: int, frame: object) -> None:
        _record(folder, "term", name)
        if not ignore_term:
            os._exit(0)

    # The handler before the start record: a test that saw the start may signal at once.
    signal.signal(signal.SIGTERM, on_term)
    _record(folder, "start", name)
    while True:
        signal.pause()


def crash(folder: str, name: str, code: int) -> int:
    """Record the start and exit with `code` at once."""
    _record(folder, "start", name)
    return code


def crash_once(folder: str, name: str, code: int) -> int:
    """Exit with `code` on the first start; serve on every later one."""
    starts = sum(1 for line in _events(folder) if line[:2] == ["start", name])
    if starts == 0:
        return crash(folder, name, code)
    return serve(folder, name)


def supervise(config_json: str) -> None:
    """Run a ProcessSupervisor described by JSON (used as `python -c`), exiting with its code."""
    from actors.processes import ProcessSpec, ProcessSupervisor
    from actors.supervisor import Intensity, Restart

    config = json.loads(config_json)
    logging.basicConfig(stream=sys.stderr, level=logging.DEBUG, format="%(created)f %(levelname)s %(message)s")
    specs = [
        ProcessSpec(
            id=c["id"], target=c["target"], args=tuple(c.get("args", ())),
            restart=Restart(c.get("restart", "permanent")), shutdown_s=c.get("shutdown_s", 5.0),
            title=c.get("title"),
        )
        for c in config["children"]
    ]
    intensity = Intensity(**{k: tuple(v) if k == "backoff_s" else v for k, v in config["intensity"].items()})
    sys.exit(ProcessSupervisor(specs, intensity=intensity, reraise=config.get("reraise", True)).run())


def _record(folder: str, event: str, name: str) -> None:
    line = f"{event} {name} {os.getpid()} {time.monotonic_ns()}\n".encode()
    fd = os.open(Path(folder) / "events", os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, line)
    finally:
        os.close(fd)


def _events(folder: str) -> list[list[str]]:
    path = Path(folder) / "events"
    return [line.split() for line in path.read_text().splitlines()] if path.exists() else []
