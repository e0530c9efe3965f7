"""Test helper: a coordinator, workers and a scheduler as real `dagu` processes on loopback."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
from pathlib import Path

from helpers import ROOT, run_dagu, wait_for


def free_port(host: str = "127.0.0.1") -> int:
    # NOTE: only for restarts that must reuse a port; fresh servers bind port 0 and report theirs.
    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]


class Cluster:
    """Processes started for one test; `close()` stops them all (SIGTERM, then SIGKILL)."""

    def __init__(self, tmp: Path, *, lost_after_s: float = 3.0):
        self.tmp = tmp
        self.home = tmp / "coord-home"
        (self.home / "dags").mkdir(parents=True, exist_ok=True)
        self.lost_after_s = lost_after_s
        self.procs: list[subprocess.Popen] = []
        self.port: int | None = None
        self.coordinator: subprocess.Popen | None = None
        self.tls: list[str] = []

    def _spawn(self, args: list[str], home: Path, log_name: str, env: dict | None = None,
               netns: str | None = None) -> subprocess.Popen:
        full = {k: v for k, v in os.environ.items() if not k.startswith("DAGU_")}
        full.update({"DAGU_HOME": str(home), "PYTHONPATH": str(ROOT), "DISABLE_PROGRESS": "1"})
        full.update(env or {})
        argv = [sys.executable, "-m", "dagu", *args]
        if netns:
            argv = ["ip", "netns", "exec", netns, *argv]
        log = open(self.tmp / log_name, "ab")
        proc = subprocess.Popen(argv, env=full, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        log.close()
        self.procs.append(proc)
        return proc

    def log(self, name: str) -> str:
        path = self.tmp / name
        return path.read_text(errors="replace") if path.exists() else ""

    def start_coordinator(self, *, port: int = 0, host: str = "127.0.0.1", tls: tuple[str, ...] = (),
                          netns: str | None = None) -> int:
        name = f"coord-{len(self.procs)}.log"
        self.coordinator = self._spawn(
            ["coord", "-H", host, "-P", str(port), "--worker-lost-after", str(self.lost_after_s), *tls],
            self.home, name, netns=netns)
        text = wait_for(lambda: re.search(r"coordinator listening on \S+:(\d+)", self.log(name)) or self._dead(name),
                        "the coordinator to listen", timeout=30)
        self.port = int(text.group(1))
        return self.port

    def start_worker(self, worker_id: str, labels: str, *, max_runs: int = 2, address: str | None = None,
                     tls: tuple[str, ...] = (), netns: str | None = None) -> subprocess.Popen:
        home = self.tmp / f"worker-{worker_id}"
        home.mkdir(exist_ok=True)
        return self._spawn(
            ["worker", "--coordinator", address or f"127.0.0.1:{self.port}", "--labels", labels,
             "--worker-id", worker_id, "-m", str(max_runs), "--heartbeat-interval", "0.3", *tls],
            home, f"worker-{worker_id}.log", netns=netns)

    def start_scheduler(self, *, host: str = "127.0.0.1", netns: str | None = None) -> subprocess.Popen:
        return self._spawn(["scheduler"], self.home, "scheduler.log", netns=netns,
                           env={"DAGU_COORDINATOR_HOST": host, "DAGU_COORDINATOR_PORT": str(self.port), **self._tls_env()})

    def _tls_env(self) -> dict:
        return dict(self.tls_env) if hasattr(self, "tls_env") else {}

    def wait_registered(self, *worker_ids: str, since: int = 0) -> None:
        for wid in worker_ids:
            wait_for(lambda wid=wid: f"worker {wid} registered" in self.coord_logs()[since:],
                     f"worker {wid} to register", timeout=30)

    def coord_logs(self) -> str:
        return "".join(self.log(p.name) for p in sorted(self.tmp.glob("coord-*.log")))

    def _dead(self, name: str):
        if self.coordinator is not None and self.coordinator.poll() is not None:
            raise AssertionError(f"the coordinator exited {self.coordinator.returncode}:\n{self.log(name)}")
        return None

    def dag(self, name: str, text: str) -> None:
        (self.home / "dags" / f"{name}.yaml").write_text(text)

    def enqueue(self, dag: str, run_id: str, *params: str) -> None:
        r = run_dagu("enqueue", "-r", run_id, dag, *(("--", *params) if params else ()), home=self.home)
        assert r.returncode == 0, r.stderr

    def status(self, dag: str, run_id: str) -> dict | None:
        r = run_dagu("status", "--json", "-r", run_id, dag, home=self.home)
        return json.loads(r.stdout) if r.returncode == 0 else None

    def wait_status(self, dag: str, run_id: str, *labels: str, timeout: float = 60) -> dict:
        def done():
            doc = self.status(dag, run_id)
            return doc if doc and doc["statusLabel"] in labels else None

        try:
            return wait_for(done, f"{dag}/{run_id} to become {' or '.join(labels)}", timeout=timeout)
        except AssertionError as exc:
            raise AssertionError(f"{exc}; last status {self.status(dag, run_id)}\n{self.dump()}") from None

    def dump(self) -> str:
        return "\n".join(f"--- {p.name}\n{p.read_text(errors='replace')[-3000:]}" for p in sorted(self.tmp.glob("*.log")))

    def kill(self, proc: subprocess.Popen, sig: int = signal.SIGKILL) -> None:
        os.kill(proc.pid, sig)
        proc.wait(timeout=15)

    def close(self) -> None:
        for proc in reversed(self.procs):
            if proc.poll() is None:
                try:
                    os.killpg(proc.pid, signal.SIGTERM)
                except ProcessLookupError:
                    continue
        for proc in reversed(self.procs):
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=5)
