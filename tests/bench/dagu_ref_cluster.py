"""One engine's distributed setup on 127.0.0.1 for bench_distributed: coordinator, scheduler, API server, N workers.

The same class drives ours (`python -m dagu`) and the real Dagu 1.30.2 binary, so both are
started, fed and watched the same way from the outside: runs are enqueued through the REST
API (`POST /api/v2/dags/bench/enqueue`) and observed by reading the run records
(`data/dag-runs/bench/.../attempt_*/status.jsonl`) in the coordinator's DAGU_HOME. It does
not measure anything itself; bench_distributed.py does.

Differences that are the engines', not the harness's:
- Dagu 1.30.2 workers have no status or log RPC: they must share the coordinator's
  DAGU_HOME (shared disk) and find the coordinator through its file service registry.
  Ours get a DAGU_HOME each and stream status back to the coordinator.
- 1.30.2 reads camelCase keys only (`workerSelector`, `maxActiveRuns`, `skipExamples`);
  ours reads the snake_case spelling.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import time
import urllib.request
from pathlib import Path

__all__ = ["FINISHED", "SUCCEEDED", "Cluster", "free_port"]

ROOT = Path(__file__).resolve().parents[2]
DAG_NAME = "bench"
QUEUED, NOT_STARTED, SUCCEEDED = 5, 0, 4
STARTED_NOT = frozenset({NOT_STARTED, QUEUED})
FINISHED = frozenset({2, 3, 4, 6})  # failed, aborted, succeeded, partially succeeded


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Cluster:
    """Coordinator + scheduler + server + workers of one engine, each in its own process group.

    Args:
        engine: "ours" or "dagu".
        argv: how to call that engine's CLI, e.g. `(sys.executable, "-m", "dagu")` or `(path,)`.
        root: an empty folder for homes and logs.
        workers: number of worker processes, all labelled pool=bench.
        slots: runs each worker executes at once.
        max_active_runs: the bench DAG's limit, i.e. its queue's concurrency.
    """

    def __init__(self, engine: str, argv: tuple[str, ...], root: Path, workers: int, slots: int,
                 max_active_runs: int):
        self.engine, self.argv, self.root = engine, tuple(argv), root
        self.n_workers, self.slots, self.max_active_runs = workers, slots, max_active_runs
        self.home = root / "home"
        self.ports = {k: free_port() for k in ("http", "coord", "sched")}
        self.procs: dict[str, subprocess.Popen] = {}
        self._run_dirs: dict[str, Path] = {}

    # -- life cycle ----------------------------------------------------------------------

    def start(self, timeout: float = 60.0) -> None:
        """Start every process and return once the API answers and all workers are known.

        Raises:
            RuntimeError: a process exited or the cluster was not ready in time (with its log tail).
        """
        self._write_home()
        self._spawn("coordinator", self._coordinator_args(), self.home)
        self._wait(lambda: _port_open(self.ports["coord"]), "coordinator port open", timeout)
        self._spawn("server", ("server",), self.home)
        self._spawn("scheduler", ("scheduler",), self.home)
        for i in range(self.n_workers):
            home = self.home if self.engine == "dagu" else self.root / f"w{i}"
            home.mkdir(exist_ok=True)
            self._spawn(f"w{i}", self._worker_args(i), home)
        self._wait(lambda: self._api_ok("/health"), "API /health", timeout)
        self._wait(lambda: len(self._workers()) >= self.n_workers, f"{self.n_workers} workers in /workers", timeout)

    def stop(self) -> None:
        """SIGTERM every process group, then SIGKILL what is left after 15 s."""
        for p in self.procs.values():
            _signal_group(p, signal.SIGTERM)
        deadline = time.monotonic() + 15
        for p in self.procs.values():
            try:
                p.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                pass
            _signal_group(p, signal.SIGKILL)
            p.wait()

    def log_tail(self, lines: int = 15) -> str:
        """The last lines of every service log, for error messages."""
        out = []
        for name in self.procs:
            text = (self.root / f"{name}.log").read_text(errors="replace").splitlines()[-lines:]
            out.append(f"--- {self.engine} {name}.log\n" + "\n".join(text))
        return "\n".join(out)

    # -- feeding and watching ------------------------------------------------------------

    def enqueue(self, run_id: str) -> None:
        """Queue one run of the bench DAG through the REST API."""
        body = json.dumps({"dagRunId": run_id}).encode()
        req = urllib.request.Request(self._url(f"/dags/{DAG_NAME}/enqueue"), data=body, method="POST",
                                     headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=30) as resp:
            resp.read()

    def state(self, run_id: str) -> tuple[int | None, str]:
        """(status, workerId) of the run's executing attempt; status None while only queued.

        The queued record stays as its own attempt (status 5) in both engines; the run
        counts as started once any attempt holds a status other than queued / not started.
        """
        run_dir = self._run_dir(run_id)
        if run_dir is None:
            return None, ""
        for attempt in sorted((p for p in _listdir(run_dir) if p.name.startswith("attempt_")), reverse=True):
            rec = _read_record(attempt / "status.jsonl")
            if rec and rec.get("status") not in STARTED_NOT:
                return rec["status"], rec.get("workerId") or ""
        return None, ""

    def describe(self, run_id: str) -> str:
        """Every attempt of a run (hidden ones too) with its status and worker, for error messages."""
        run_dir = self._run_dir(run_id)
        if run_dir is None:
            return f"{run_id}: no run folder"
        parts = []
        for attempt in sorted(_listdir(run_dir)):
            rec = _read_record(attempt / "status.jsonl") or {}
            parts.append(f"{attempt.name} status={rec.get('status')} worker={rec.get('workerId')}")
        return f"{run_id}: " + "; ".join(parts)

    def worker_rss_kib(self) -> list[tuple[int, int]]:
        """Per worker: (RSS of the worker process, RSS of its whole process group) in KiB."""
        out = []
        for i in range(self.n_workers):
            p = self.procs[f"w{i}"]
            group = subprocess.run(["ps", "-o", "rss=", "-g", str(p.pid)], check=False, capture_output=True, text=True).stdout
            out.append((_rss_kib(p.pid), sum(int(x) for x in group.split())))
        return out

    # -- private -------------------------------------------------------------------------

    def _write_home(self) -> None:
        (self.home / "dags").mkdir(parents=True)
        (self.root / "tmp").mkdir()
        limit = self.max_active_runs
        if self.engine == "dagu":
            config = (f"host: 127.0.0.1\nport: {self.ports['http']}\nskipExamples: true\n"
                      f"coordinator: {{host: 127.0.0.1, advertise: 127.0.0.1, port: {self.ports['coord']}}}\n"
                      f"scheduler: {{port: {self.ports['sched']}}}\n")
            dag = f"workerSelector:\n  pool: bench\nmaxActiveRuns: {limit}\nsteps:\n  - name: hi\n    command: 'true'\n"
        else:
            config = (f"host: 127.0.0.1\nport: {self.ports['http']}\n"
                      f"coordinator: {{host: 127.0.0.1, port: {self.ports['coord']}}}\n"
                      f"scheduler: {{port: {self.ports['sched']}}}\n")
            dag = f"worker_selector:\n  pool: bench\nmax_active_runs: {limit}\nsteps:\n  - name: hi\n    command: 'true'\n"
        (self.home / "config.yaml").write_text(config)
        (self.home / "dags" / f"{DAG_NAME}.yaml").write_text(dag)

    def _coordinator_args(self) -> tuple[str, ...]:
        if self.engine == "dagu":
            return ("coordinator",)  # host, port and advertise come from config.yaml
        return ("coordinator", "-H", "127.0.0.1", "-P", str(self.ports["coord"]))

    def _worker_args(self, i: int) -> tuple[str, ...]:
        if self.engine == "dagu":  # 1.30.2 finds the coordinator in the shared service registry
            return ("worker", "--worker.id", f"w{i}", "--worker.labels", "pool=bench",
                    "--worker.max-active-runs", str(self.slots))
        return ("worker", "--coordinator", f"127.0.0.1:{self.ports['coord']}", "--labels", "pool=bench",
                "--worker-id", f"w{i}", "-m", str(self.slots))

    def _spawn(self, name: str, args: tuple[str, ...], home: Path) -> None:
        env = {k: v for k, v in os.environ.items() if not k.startswith("DAGU_")}
        env.update({"DAGU_HOME": str(home), "PYTHONPATH": str(ROOT), "DISABLE_PROGRESS": "1",
                    "TMPDIR": str(self.root / "tmp")})
        quiet = ("-q",) if self.engine == "ours" else ()
        with open(self.root / f"{name}.log", "ab") as log:
            self.procs[name] = subprocess.Popen([*self.argv, *quiet, *args], env=env, cwd=home, stdout=log,
                                                stderr=subprocess.STDOUT, start_new_session=True)

    def _wait(self, predicate, what: str, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            dead = [n for n, p in self.procs.items() if p.poll() is not None]
            if dead:
                raise RuntimeError(f"{self.engine}: {', '.join(dead)} exited while waiting for {what}\n{self.log_tail()}")
            if predicate():
                return
            time.sleep(0.1)
        raise RuntimeError(f"{self.engine}: no {what} after {timeout:.0f} s\n{self.log_tail()}")

    def _url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.ports['http']}/api/v2{path}"

    def _api_ok(self, path: str) -> bool:
        try:
            with urllib.request.urlopen(self._url(path), timeout=5) as resp:
                return resp.status == 200
        except OSError:
            return False

    def _workers(self) -> list:
        try:
            with urllib.request.urlopen(self._url("/workers"), timeout=5) as resp:
                return json.loads(resp.read()).get("workers") or []
        except (OSError, ValueError):
            return []

    def _run_dir(self, run_id: str) -> Path | None:
        if run_id not in self._run_dirs:
            base = self.home / "data" / "dag-runs" / DAG_NAME / "dag-runs"
            found = sorted(base.glob(f"2*/*/*/dag-run_*Z_{run_id}"))
            if not found:
                return None
            self._run_dirs[run_id] = found[-1]
        return self._run_dirs[run_id]


def _read_record(path: Path) -> dict | None:
    """The run-level fields of a status.jsonl as they stand now, for either engine.

    Dagu 1.30.2 appends whole snapshots (the last one wins). Ours appends a snapshot
    `{"t": "snapshot", "run": {...}}` and then changes (`{"t": "run", "set": {...}}`;
    node changes don't matter here), so they are replayed on top of the snapshot.
    Lines that don't parse (still being written) are skipped.
    """
    try:
        lines = path.read_bytes().splitlines()
    except OSError:
        return None
    rec: dict | None = None
    for line in lines:
        try:
            item = json.loads(line)
        except ValueError:
            continue
        if not isinstance(item, dict):
            continue
        kind = item.get("t")
        if kind is None or kind == "snapshot":
            rec = dict(item.get("run", item))
        elif kind == "run" and rec is not None:
            rec.update(item.get("set") or {})
    return rec


def _listdir(path: Path) -> list[Path]:
    try:
        return list(path.iterdir())
    except OSError:
        return []


def _port_open(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex(("127.0.0.1", port)) == 0


def _rss_kib(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def _signal_group(proc: subprocess.Popen, sig: int) -> None:
    try:
        os.killpg(proc.pid, sig)
    except ProcessLookupError:
        pass
