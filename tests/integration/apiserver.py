"""A real uvicorn server for the API, auth, events and browser tests: an app on a socket bound to
127.0.0.1 port 0, served from a thread of the test process (uvicorn skips signal handling off
the main thread), and `live_server`, the whole app for a temp DAGU_HOME whose runs are real
`dagu` processes.
"""

from __future__ import annotations

import dataclasses
import os
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from dagu.config import Settings, load_settings
from helpers import ROOT, wait_for

__all__ = ["LiveServer", "live_server", "serve_app", "run_process_env", "wait_processes_gone"]

_SHUTDOWN_GRACE_S = 2  # open streams (SSE) are cut after this at shutdown


@dataclass
class LiveServer:
    home: Path
    settings: Settings
    url: str  # API base, e.g. http://127.0.0.1:1234/api/v2
    client: httpx.Client

    def dag(self, name: str, text: str) -> Path:
        path = self.home / "dags" / f"{name}.yaml"
        path.write_text(text)
        return path

    def run_status(self, name: str, run_id: str) -> dict | None:
        r = self.client.get(f"/dag-runs/{name}/{run_id}")
        return r.json()["dagRunDetails"] if r.status_code == 200 else None

    def wait_status(self, name: str, run_id: str, labels: set[str], timeout: float = 30) -> dict:
        def done():
            doc = self.run_status(name, run_id)
            return doc if doc and doc["statusLabel"] in labels else None

        return wait_for(done, f"run {name}/{run_id} to become one of {sorted(labels)}", timeout)


@contextmanager
def live_server(home: Path, *, base_path: str = "", env: dict[str, str] | None = None) -> Iterator[LiveServer]:
    """Serve the app for `home` until the block ends; yields a LiveServer."""
    from web.app import create_app

    (home / "dags").mkdir(parents=True, exist_ok=True)
    environ = {k: v for k, v in os.environ.items() if not k.startswith("DAGU_")}
    environ.update({"DAGU_HOME": str(home), **(env or {})})
    settings = load_settings(environ=environ)
    if base_path:
        settings = dataclasses.replace(settings, base_path=base_path)
    with run_process_env(home), serve_app(create_app(settings)) as root:
        url = f"{root}{base_path}/api/v2"
        with httpx.Client(base_url=url, timeout=30) as client:
            yield LiveServer(home, settings, url, client)


@contextmanager
def serve_app(app: Any, *, lifespan: str = "off", name: str = "uvicorn") -> Iterator[str]:
    """Serve `app` with uvicorn in a thread until the block ends; yield its base URL.

    The socket is bound to 127.0.0.1 port 0 before uvicorn gets it, so parallel tests
    cannot race for a port.
    """
    import uvicorn

    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    config = uvicorn.Config(app, lifespan=lifespan, log_level="warning", access_log=False, timeout_graceful_shutdown=_SHUTDOWN_GRACE_S)
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, name=name, daemon=True)
    thread.start()
    try:
        wait_for(lambda: server.started or not thread.is_alive(), "uvicorn to start", 20)
        assert server.started, "uvicorn exited before it started serving"
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()


@contextmanager
def run_process_env(home: Path) -> Iterator[None]:
    """Point the `dagu` run processes a server spawns at `home` and this source tree (ROOT first
    on PYTHONPATH) until the block ends."""
    saved = {k: os.environ.get(k) for k in ("DAGU_HOME", "PYTHONPATH")}
    os.environ["DAGU_HOME"] = str(home)
    os.environ["PYTHONPATH"] = str(ROOT) + (os.pathsep + saved["PYTHONPATH"] if saved["PYTHONPATH"] else "")
    try:
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def wait_processes_gone(home: Path, timeout: float = 30) -> None:
    """Wait until no run process of `home` holds a heartbeat (the runs a test started ended)."""
    proc_dir = home / "data" / "proc"

    def none_left():
        try:
            return not any(p.suffix == ".proc" for p in proc_dir.rglob("*.proc")) if proc_dir.exists() else True
        except FileNotFoundError:  # a run removed its folder while we walked it: look again
            return False

    wait_for(none_left, "run processes to finish", timeout)
