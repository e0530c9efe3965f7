"""Service benchmarks: queue drain, queue start latency, cron lateness, start-all memory and shutdown.

    python tests/bench/bench_service.py            # everything (about 3 minutes: cron needs real minutes)
    python tests/bench/bench_service.py drain latency memory

Ours and the real Dagu binary (DAGU_REF_BIN or the npm package) run the same DAGs in
separate DAGU_HOMEs; figures are printed side by side. Not run by CI.
"""

from __future__ import annotations

import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from helpers import ROOT, compile_bytecode, reference_dagu  # noqa: E402

from dagu.status import RunStatus  # noqa: E402
from dagu.store import RunStore  # noqa: E402

OURS = (sys.executable, "-m", "dagu")
CONFIG = "queues:\n  enabled: true\n  config:\n    - name: bench\n      maxActiveRuns: 10\n"


def _env(home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DAGU_")}
    env.update({"DAGU_HOME": str(home), "DISABLE_PROGRESS": "1", "PYTHONPATH": str(ROOT)})
    return env


def _home(root: Path, who: str, dag: str) -> Path:
    home = root / who
    (home / "dags").mkdir(parents=True)
    (home / "config.yaml").write_text(CONFIG)
    (home / "dags" / "job.yaml").write_text(dag)
    return home


def _records(home: Path):
    return [rec for _, rec in RunStore(home / "data", home / "logs").list_runs(limit=None)]


def _wait(predicate, timeout: float):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return False


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _service(argv: list[str], home: Path) -> subprocess.Popen:
    return subprocess.Popen(argv, env=_env(home), cwd=home, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)


def _stop(proc: subprocess.Popen) -> float:
    """SIGTERM to the service's main process; seconds until its whole process group is gone."""
    began = time.monotonic()
    try:
        os.kill(proc.pid, signal.SIGTERM)
    except ProcessLookupError:
        return 0.0
    try:
        proc.wait(timeout=15)
    except subprocess.TimeoutExpired:  # reported as "did not stop"; then killed
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        return float("inf")

    def group_gone() -> bool:
        try:
            os.killpg(proc.pid, 0)
        except ProcessLookupError:
            return True
        return False

    _wait(group_gone, 30)
    gone = time.monotonic() - began
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    return gone


def bench_drain(ref: str, root: Path, n: int = 200) -> None:
    """n runs enqueued first, then the scheduler started: time until all succeeded (concurrency 10)."""
    results = {}
    for who, exe in (("ours", list(OURS)), ("dagu", [ref])):
        home = _home(root / "drain", who, "queue: bench\nsteps:\n  - command: \"true\"\n")
        if who == "ours":
            code = (
                "from dagu.config import load_settings\nfrom dagu.spec import load_dag\n"
                "from actors.launch import enqueue_run\n"
                f"s = load_settings(); d = load_dag({str(home / 'dags/job.yaml')!r})\n"
                f"[enqueue_run(d, s) for _ in range({n})]\n"
            )
            subprocess.run([sys.executable, "-c", code], env=_env(home), check=True)
        else:
            for _ in range(n):
                subprocess.run([*exe, "enqueue", str(home / "dags/job.yaml")], env=_env(home), check=True,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        began = time.monotonic()
        proc = _service([*exe, "scheduler"], home)
        done = _wait(lambda: sum(r.status == RunStatus.SUCCEEDED for r in _records(home)) >= n, 900)
        results[who] = time.monotonic() - began if done else float("inf")
        _stop(proc)
    print(f"drain {n} runs, concurrency 10: ours {results['ours']:.1f} s   dagu {results['dagu']:.1f} s   "
          f"speed-up {results['dagu'] / results['ours']:.1f}x", flush=True)


def bench_latency(ref: str, root: Path, n: int = 5) -> None:
    """With the scheduler idle, enqueue one run at a time: startedAt - queuedAt (median)."""
    for who, exe in (("ours", list(OURS)), ("dagu", [ref])):
        home = _home(root / "latency", who, "steps:\n  - command: \"true\"\n")
        proc = _service([*exe, "scheduler"], home)
        time.sleep(2)  # let it take the lock and settle
        gaps = []
        for i in range(n):
            subprocess.run([*exe, "enqueue", str(home / "dags/job.yaml")], env=_env(home), check=True,
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            _wait(lambda: sum(r.status == RunStatus.SUCCEEDED for r in _records(home)) >= i + 1, 120)
        for rec in _records(home):
            if rec.started_at and rec.queued_at:
                gaps.append((rec.started_at - rec.queued_at).total_seconds())
        _stop(proc)
        print(f"queue start latency {who}: median {statistics.median(gaps) * 1000:.0f} ms over {len(gaps)} runs", flush=True)


def bench_cron(ref: str, root: Path, minutes: int = 2) -> None:
    """A `* * * * *` DAG under both schedulers at once: queued/started time minus the slot (median)."""
    procs = {}
    homes = {}
    for who, exe in (("ours", list(OURS)), ("dagu", [ref])):
        homes[who] = _home(root / "cron", who, "schedule: \"* * * * *\"\nsteps:\n  - command: \"true\"\n")
        procs[who] = _service([*exe, "scheduler"], homes[who])
    time.sleep(2 + 60 * minutes - time.time() % 60)
    for who, proc in procs.items():
        _stop(proc)
        late = []
        for rec in _records(homes[who]):
            seen = rec.queued_at or rec.started_at
            if seen is None:
                continue
            slot = seen.replace(second=0, microsecond=0)
            late.append((seen - slot).total_seconds())
        if late:
            print(f"cron lateness {who}: median {statistics.median(late) * 1000:.0f} ms over {len(late)} fires", flush=True)
        else:
            print(f"cron lateness {who}: no fire recorded", flush=True)


def bench_memory(ref: str, root: Path) -> None:
    """start-all idle RSS of the whole process tree, and time until every process is gone after SIGTERM."""
    for who, exe in (("ours", list(OURS)), ("dagu", [ref])):
        home = _home(root / "memory", who, "steps:\n  - command: \"true\"\n")
        proc = _service([*exe, "start-all", "-p", str(_free_port())], home)
        time.sleep(4)
        out = subprocess.run(["ps", "-o", "rss=", "-g", str(proc.pid)], capture_output=True, text=True).stdout
        rss = sum(int(x) for x in out.split()) / 1024
        gone = _stop(proc)
        print(f"start-all {who}: idle RSS {rss:.0f} MiB (process tree), all gone {gone:.2f} s after SIGTERM", flush=True)


def main(names: list[str]) -> int:
    compile_bytecode()
    ref = reference_dagu()
    if ref is None:
        print("reference Dagu binary not found: npm install @dagu-org/dagu-linux-x64 or set DAGU_REF_BIN", file=sys.stderr)
        return 2
    cases = {"drain": bench_drain, "latency": bench_latency, "memory": bench_memory, "cron": bench_cron}
    with tempfile.TemporaryDirectory(prefix="dagu-bench-svc-") as tmp:
        for name in names or list(cases):
            cases[name](ref, Path(tmp))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
