"""Distributed benchmarks, ours next to the real Dagu 1.30.2 binary (not run by pytest).

    python tests/bench/bench_distributed.py [--runs 500] [--dagu-runs N] [--workers 4] [--latency-samples 20]

About 4 minutes on 2 cores. Each engine gets the same setup on 127.0.0.1: a coordinator, a
scheduler, an API server and 4 workers labelled pool=bench with 8 slots each, and a
one-step DAG (`true`) whose worker selector is pool=bench and whose max active runs is 64
(twice the worker slots; both engines drain faster with 64 than with 32: measured 31 vs 22
runs/s ours, 15 vs 9.5 runs/s Dagu). Both clusters run for the whole benchmark and are fed
and watched the same way from the outside (tests/bench/dagu_ref_cluster.py): runs are
enqueued with `POST /api/v2/dags/bench/enqueue`, so each engine's own scheduler dispatches
them through its own coordinator, and the status records in the coordinator's DAGU_HOME
are polled (every 5 ms while timing one run). Figures:

- dispatch latency: from sending the enqueue request until the run's executing attempt
  holds a status other than queued in the coordinator's store (the worker has started
  the run and it is recorded). Two regimes, because Dagu 1.30.2's queue processor makes
  at most one pass every 3 s (service.md 5.4), so its latency depends on when a run
  arrives: "idle queue" (each enqueue at least 4 s after the engine's previous one, the
  engines taking turns; Dagu lands at a random point of its 3 s cycle) and
  "back-to-back" (the next run is enqueued as soon as the previous one finished, in
  blocks of 5 runs, engines taking turns; Dagu then waits out most of the cycle).
- throughput: --runs runs enqueued one request after the other as fast as the API
  answers, timed from the first request until the last run is seen finished; done in
  two halves in the order ours, Dagu, Dagu, ours so that machine drift hits both.
- idle worker RSS: each worker process, and its whole process group (ours keeps a fork
  server and a resource tracker next to it once it has run something), before and
  after the runs.

Not like for like, and said so in the output: Dagu 1.30.2 workers share the
coordinator's DAGU_HOME (it has no status RPC; shared disk is how 1.30 works), ours get
a home each and stream status to the coordinator. Our figures measured in-process
(RemoteRunner, no scheduler) are in git history; this script measures both engines
only through the queue. Without the Dagu binary (DAGU_REF_BIN or the npm package), or if
its cluster does not come up, it prints why and reports ours alone.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

# tests/ for helpers; this folder is already sys.path[0] when run as a script
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from dagu_ref_cluster import FINISHED, SUCCEEDED, Cluster
from helpers import compile_bytecode, reference_dagu

OURS = (sys.executable, "-m", "dagu")
POLL_S = 0.005
IDLE_GAP_S = 4.0  # > Dagu 1.30.2's 3 s minimum between two queue passes
BLOCK = 5


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=500, help="throughput runs for ours")
    ap.add_argument("--dagu-runs", type=int, default=None, help="throughput runs for Dagu (default: --runs)")
    ap.add_argument("--workers", type=int, default=4)
    ap.add_argument("--per-worker", type=int, default=8)
    ap.add_argument("--max-active-runs", type=int, default=64, help="the bench DAG's limit")
    ap.add_argument("--latency-samples", type=int, default=20, help="per engine and regime")
    opts = ap.parse_args()
    compile_bytecode()
    with tempfile.TemporaryDirectory(prefix="dagu-bench-dist-") as tmp:
        clusters = _start_clusters(Path(tmp), opts)
        try:
            return _bench(clusters, opts)
        finally:
            for c in clusters.values():
                c.stop()


def _start_clusters(tmp: Path, opts) -> dict[str, Cluster]:
    engines = {"ours": OURS}
    ref = reference_dagu()
    if ref is None:
        print("NO DAGU BASELINE: the Dagu 1.30.2 binary was not found (set DAGU_REF_BIN or "
              "npm install @dagu-org/dagu-linux-x64); reporting ours alone", flush=True)
    else:
        engines["dagu"] = (ref,)
    clusters = {}
    for name, argv in engines.items():
        (tmp / name).mkdir()
        cluster = Cluster(name, argv, tmp / name, opts.workers, opts.per_worker, opts.max_active_runs)
        try:
            cluster.start()
        except RuntimeError as exc:
            cluster.stop()
            if name == "ours":
                raise
            print(f"NO DAGU BASELINE: its distributed mode did not come up here: {exc}", flush=True)
            continue
        clusters[name] = cluster
    return clusters


def _bench(clusters: dict[str, Cluster], opts) -> int:
    names = list(clusters)
    time.sleep(3.0)  # let the workers settle after connecting
    rss_before = {n: c.worker_rss_kib() for n, c in clusters.items()}
    for c in clusters.values():  # warm-up: every worker gets work (ours starts its fork server then)
        _run_batch(c, [f"warm{i}" for i in range(2 * opts.workers)])
    idle = _latency_idle(clusters, opts.latency_samples)
    busy = _latency_back_to_back(clusters, opts.latency_samples)
    runs = {"ours": opts.runs, "dagu": opts.dagu_runs or opts.runs}
    elapsed = {n: 0.0 for n in names}
    ids: dict[str, list[str]] = {n: [] for n in names}
    for half, order in enumerate((names, names[::-1])):
        for n in order:
            batch = [f"tp{half}-{i}" for i in range(runs[n] // 2 if half == 0 else runs[n] - runs[n] // 2)]
            elapsed[n] += _run_batch(clusters[n], batch)
            ids[n] += batch
    time.sleep(3.0)
    rss_after = {n: c.worker_rss_kib() for n, c in clusters.items()}
    outcome = {n: _outcome(clusters[n], ids[n]) for n in names}
    _report(names, opts, idle, busy, runs, elapsed, outcome, rss_before, rss_after)
    return 0 if all(bad == 0 for bad, _ in outcome.values()) else 1


def _latency_idle(clusters: dict[str, Cluster], samples: int) -> dict[str, list[float]]:
    """Engines take turns; each enqueue comes at least IDLE_GAP_S after that engine's previous one."""
    out: dict[str, list[float]] = {n: [] for n in clusters}
    last = {n: 0.0 for n in clusters}
    for i in range(samples):
        for n in (list(clusters) if i % 2 == 0 else list(clusters)[::-1]):
            time.sleep(max(0.0, last[n] + IDLE_GAP_S - time.perf_counter()))
            last[n] = time.perf_counter()
            out[n].append(_one_run(clusters[n], f"idle{i}"))
    return out


def _latency_back_to_back(clusters: dict[str, Cluster], samples: int) -> dict[str, list[float]]:
    """Blocks of BLOCK runs per engine, engines taking turns; inside a block, enqueue as soon as the previous run ended."""
    out: dict[str, list[float]] = {n: [] for n in clusters}
    for b in range(0, samples, BLOCK):
        for n in (list(clusters) if (b // BLOCK) % 2 == 0 else list(clusters)[::-1]):
            out[n] += [_one_run(clusters[n], f"b2b{i}") for i in range(b, min(samples, b + BLOCK))]
    return out


def _one_run(cluster: Cluster, run_id: str) -> float:
    """Enqueue one run; milliseconds until it is seen started. Returns once it has finished."""
    t0 = time.perf_counter()
    cluster.enqueue(run_id)
    started = _wait(cluster, run_id, lambda s: s is not None, POLL_S)
    _wait(cluster, run_id, lambda s: s in FINISHED, POLL_S)
    return (started - t0) * 1000


def _run_batch(cluster: Cluster, run_ids: list[str]) -> float:
    """Enqueue all runs back to back; seconds from the first request until the last run is seen finished."""
    t0 = time.perf_counter()
    for rid in run_ids:
        cluster.enqueue(rid)
    done = t0
    for rid in run_ids:  # roughly FIFO, so waiting in order costs few reads
        done = _wait(cluster, rid, lambda s: s in FINISHED, 0.02, timeout=300)
    return done - t0


def _wait(cluster: Cluster, run_id: str, is_done, poll_s: float, timeout: float = 120) -> float:
    deadline = time.monotonic() + timeout
    while True:
        status, _ = cluster.state(run_id)
        if is_done(status):
            return time.perf_counter()
        if time.monotonic() > deadline:
            raise RuntimeError(f"{cluster.engine}: run {run_id} still {status} after {timeout:.0f} s\n"
                               f"{cluster.log_tail()}")
        time.sleep(poll_s)


def _outcome(cluster: Cluster, run_ids: list[str]) -> tuple[int, dict[str, int]]:
    """(runs not succeeded, runs per worker); prints the attempts of the first few that did not succeed."""
    bad, per_worker = 0, {}
    for rid in run_ids:
        status, worker = cluster.state(rid)
        if status != SUCCEEDED:
            bad += 1
            if bad <= 3:
                print(f"{cluster.engine}: not succeeded: {cluster.describe(rid)}", flush=True)
        per_worker[worker or "?"] = per_worker.get(worker or "?", 0) + 1
    return bad, dict(sorted(per_worker.items()))


def _report(names, opts, idle, busy, runs, elapsed, outcome, rss_before, rss_after) -> None:
    has_ref = "dagu" in names
    print(f"\n{opts.workers} workers x {opts.per_worker} slots, DAG max active runs {opts.max_active_runs}; "
          "runs enqueued through the REST API, watched in the coordinator's run records")
    if has_ref:
        print("NOTE: Dagu 1.30.2 workers share the coordinator's DAGU_HOME (its distributed mode needs shared disk); "
              "ours have their own and stream status over gRPC")
    print(f"{'':48}{'ours':>14}{'dagu 1.30.2' if has_ref else '':>14}{'ours/dagu' if has_ref else '':>11}")

    def row(label, ours, dagu, unit, fmt="{:.1f}"):
        cells = f"{fmt.format(ours)} {unit}".rjust(14)
        if has_ref:
            cells += f"{fmt.format(dagu)} {unit}".rjust(14) + f"{ours / dagu:.2f}".rjust(11)
        print(f"{label:48}{cells}")

    def ms(d, n, q):
        xs = sorted(d[n])
        return statistics.median(xs) if q == 50 else xs[max(0, int(len(xs) * q / 100) - 1)]

    for title, d in (("idle queue", idle), ("back-to-back", busy)):
        for q, label in ((50, "median"), (90, "p90")):
            row(f"dispatch latency, {title}, {label} (n={len(d['ours'])})", ms(d, "ours", q),
                ms(d, "dagu", q) if has_ref else 0, "ms", "{:.0f}")
    rate = {n: runs[n] / elapsed[n] for n in names}
    row(f"short runs, {runs['ours']} ours / {runs.get('dagu', 0) if has_ref else '-'} dagu", rate["ours"],
        rate.get("dagu", 0), "runs/s")
    row("  wall time", elapsed["ours"], elapsed.get("dagu", 0), "s")
    for label, rss in (("idle worker RSS, before runs", rss_before), ("idle worker RSS, after runs", rss_after)):
        for part, label2 in ((0, "process"), (1, "process group")):
            mean = {n: statistics.mean(r[part] for r in rss[n]) / 1024 for n in names}
            row(f"{label} ({label2}, mean)", mean["ours"], mean.get("dagu", 0), "MiB")
    for n in names:
        bad, per_worker = outcome[n]
        print(f"{n}: not succeeded {bad}; runs per worker {per_worker}; "
              f"worker RSS after runs (process group) {', '.join(f'{g / 1024:.1f}' for _, g in rss_after[n])} MiB")
    print("ours/dagu: below 1 means ours is lower (better for latency and memory); above 1 for runs/s means ours is faster")


if __name__ == "__main__":
    sys.exit(main())
