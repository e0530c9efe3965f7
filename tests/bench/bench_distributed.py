"""Distributed benchmarks (not run by pytest): dispatch latency, 500 short runs on 4 workers, idle worker RSS.

    python tests/bench/bench_distributed.py [--runs 500] [--workers 4] [--latency-samples 40]

A real coordinator and workers run as `dagu` processes on 127.0.0.1; this process
plays the scheduler: it creates queued runs (`enqueue_run`, as `dagu enqueue` and the
SchedulerActor do) and starts them through the same RemoteRunner the scheduler's
QueueActor uses, with a probe actor receiving RunStarted / RunEnded.
Dispatch latency = from the enqueue call to RunStarted, i.e. the worker has forked
the run process, the run wrote its first status, and the coordinator recorded it.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

import pykka  # noqa: E402

from actors.messages import RunEnded, RunStarted  # noqa: E402

DAG = "worker_selector:\n  pool: bench\nmax_active_runs: 64\nsteps:\n  - name: hi\n    command: 'true'\n"


class Book:
    """Arrival times of RunStarted / RunEnded per run, shared with the probe's thread."""

    def __init__(self):
        self.events: dict[str, dict[str, float]] = {}
        self.cond = threading.Condition()


class Probe(pykka.ThreadingActor):
    def __init__(self, book: Book):
        super().__init__()
        self.book = book

    def on_receive(self, message):
        now = time.perf_counter()
        kind = "started" if isinstance(message, RunStarted) else "ended" if isinstance(message, RunEnded) else None
        if kind:
            with self.book.cond:
                self.book.events.setdefault(message.run_id, {})[kind] = now
                self.book.cond.notify_all()


def spawn(args, home, log, env=None):
    full = {k: v for k, v in os.environ.items() if not k.startswith("DAGU_")}
    full.update({"DAGU_HOME": str(home), "PYTHONPATH": str(ROOT)}, **(env or {}))
    return subprocess.Popen([sys.executable, "-m", "dagu", "-q", *args], env=full, stdout=log, stderr=subprocess.STDOUT,
                            start_new_session=True)


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def children(pid: int) -> list[int]:
    out = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True).stdout.split()
    return [int(p) for p in out]


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=500)
    ap.add_argument("--workers", type=int, default=4)
    ap.add_argument("--per-worker", type=int, default=8)
    ap.add_argument("--latency-samples", type=int, default=40)
    opts = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="dagu-bench-dist-"))
    home = tmp / "coord"
    (home / "dags").mkdir(parents=True)
    (home / "dags" / "bench.yaml").write_text(DAG)
    os.environ["DAGU_HOME"] = str(home)
    log = open(tmp / "services.log", "ab")
    procs = []
    try:
        coord = spawn(["coord", "-P", "0"], home, log)
        procs.append(coord)
        port = None
        for _ in range(200):
            m = re.search(r"coordinator listening on \S+:(\d+)", (tmp / "services.log").read_text())
            if m:
                port = int(m.group(1))
                break
            time.sleep(0.05)
        assert port, "coordinator did not start"
        workers = []
        for i in range(opts.workers):
            (tmp / f"w{i}").mkdir()
            workers.append(spawn(["worker", "--coordinator", f"127.0.0.1:{port}", "--labels", "pool=bench",
                                  "--worker-id", f"w{i}", "-m", str(opts.per_worker)], tmp / f"w{i}", log))
        procs += workers
        time.sleep(3.0)
        idle = [rss_kib(w.pid) for w in workers]
        fork_servers = [rss_kib(c) for w in workers for c in children(w.pid)]

        from actors.launch import RunRequest, enqueue_run
        from dagu.config import load_settings
        from dagu.spec import load_dag
        from transports.grpc.client import RemoteRunner
        from transports.grpc.options import coordinator_options

        settings = load_settings(dagu_home=str(home))
        runner = RemoteRunner(settings, coordinator_options(settings, port=port))
        dag = load_dag(home / "dags" / "bench.yaml")
        actor = Book()
        probe = Probe.start(actor)

        def wait(run_id, kind, timeout=60):
            deadline = time.monotonic() + timeout
            with actor.cond:
                while kind not in actor.events.get(run_id, {}):
                    left = deadline - time.monotonic()
                    assert left > 0, f"{run_id} never {kind}"
                    actor.cond.wait(left)

        # 1. dispatch latency, one run at a time (workers idle)
        lat = []
        for i in range(opts.latency_samples + 3):
            rid = f"lat{i}"
            t0 = time.perf_counter()
            enqueue_run(dag, settings, RunRequest(run_id=rid))
            runner.start(rid, "bench", dag.file, "bench", probe)
            wait(rid, "started")
            if i >= 3:  # warm-up: fork servers start on first use
                lat.append((actor.events[rid]["started"] - t0) * 1000)
            wait(rid, "ended")

        # 2. throughput: N runs, up to workers * per_worker in flight
        limit = opts.workers * opts.per_worker
        t0 = time.perf_counter()
        inflight: list[str] = []
        for i in range(opts.runs):
            rid = f"tp{i}"
            while len(inflight) >= limit:
                wait(inflight.pop(0), "ended", timeout=120)
            enqueue_run(dag, settings, RunRequest(run_id=rid))
            runner.start(rid, "bench", dag.file, "bench", probe)
            inflight.append(rid)
        for rid in inflight:
            wait(rid, "ended", timeout=120)
        elapsed = time.perf_counter() - t0
        from dagu.store import RunStore

        store = RunStore(settings.data_dir, settings.log_dir)
        by_worker: dict[str, int] = {}
        bad = 0
        for i in range(opts.runs):
            rec = store.read_latest(store.find_run("bench", f"tp{i}"))
            by_worker[rec.worker_id] = by_worker.get(rec.worker_id, 0) + 1
            bad += rec.status.label != "succeeded"
        probe.stop()
        runner.close()

        lat.sort()
        print(f"dispatch latency (enqueue -> run started on a worker and recorded), n={len(lat)}: "
              f"median {statistics.median(lat):.1f} ms, p90 {lat[int(len(lat) * 0.9) - 1]:.1f} ms, max {lat[-1]:.1f} ms")
        print(f"{opts.runs} short runs on {opts.workers} workers ({opts.per_worker} slots each): {elapsed:.1f} s, "
              f"{opts.runs / elapsed:.1f} runs/s; not succeeded: {bad}; per worker {dict(sorted(by_worker.items()))}")
        print(f"idle worker RSS: {', '.join(f'{k / 1024:.1f}' for k in idle)} MiB "
              f"(its fork server, once started: {', '.join(f'{k / 1024:.1f}' for k in fork_servers) or 'not yet'} MiB)")
        return 0
    finally:
        for p in procs:
            if p.poll() is None:
                os.killpg(p.pid, signal.SIGTERM)
        for p in procs:
            try:
                p.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(p.pid, signal.SIGKILL)
        log.close()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
