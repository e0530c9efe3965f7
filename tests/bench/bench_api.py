"""API benchmarks, ours and the real Dagu binary side by side in the same run:

    python tests/bench/bench_api.py               # list, status, health
    python tests/bench/bench_api.py list status

- list:   `GET /api/v2/dags?perPage=50` over 500 DAG files: median latency, then requests/s
          from 4 client threads for a fixed number of requests (bounded load).
- status: `GET /api/v2/dag-runs/<dag>/<run>` of a finished run: median latency.
- health: `start-all` until `/api/v2/health` answers: seconds after spawning.

Each server gets its own DAGU_HOME with identical DAGs; 127.0.0.1 only. Not run by pytest.
"""

from __future__ import annotations

import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from helpers import ROOT, compile_bytecode, reference_dagu  # noqa: E402

OURS = (sys.executable, "-m", "dagu")
N_DAGS = 500
DAG = "description: bench dag {i}\ntags: [t{t}, bench]\nschedule: \"{m} * * * *\"\nparams: A=1 B=two\nsteps:\n  - name: one\n    command: echo one\n  - name: two\n    command: echo two\n    depends: [one]\n"


def _env(home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DAGU_")}
    env.update({"DAGU_HOME": str(home), "PYTHONPATH": str(ROOT)})
    return env


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _home(root: Path, who: str) -> Path:
    home = root / who
    (home / "dags").mkdir(parents=True)
    for i in range(N_DAGS):
        (home / "dags" / f"dag{i:03d}.yaml").write_text(DAG.format(i=i, t=i % 7, m=i % 60))
    return home


def _spawn(argv: list[str], home: Path) -> subprocess.Popen:
    return subprocess.Popen(argv, env=_env(home), cwd=home, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)


def _stop(proc: subprocess.Popen) -> None:
    try:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=15)
    except (ProcessLookupError, subprocess.TimeoutExpired):
        pass
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def _wait_health(base: str, timeout: float = 30.0) -> float:
    began = time.monotonic()
    while time.monotonic() - began < timeout:
        try:
            if httpx.get(f"{base}/api/v2/health", timeout=1).status_code == 200:
                return time.monotonic() - began
        except httpx.TransportError:
            pass
        time.sleep(0.005)
    raise RuntimeError(f"{base} never became healthy")


def _servers(root: Path, ref: str):
    """(who, base url, process) for ours and Dagu's `server`, each on 500 DAGs."""
    out = []
    for who, argv in (("ours", [*OURS, "server"]), ("dagu", [ref, "server", "-s", "127.0.0.1"])):
        home = _home(root, who)
        port = _free_port()
        proc = _spawn([*argv, "-p", str(port)], home)
        base = f"http://127.0.0.1:{port}"
        _wait_health(base)
        out.append((who, base, proc, home))
    return out


def _median_ms(client: httpx.Client, path: str, n: int, params: dict | None = None) -> float:
    client.get(path, params=params)  # warm caches on both sides
    times = []
    for _ in range(n):
        began = time.perf_counter()
        r = client.get(path, params=params)
        times.append(time.perf_counter() - began)
        r.raise_for_status()
    return statistics.median(times) * 1000


def _throughput(base: str, path: str, total: int = 400, threads: int = 4) -> float:
    per = total // threads

    def worker():
        with httpx.Client(base_url=base, timeout=30) as c:
            for _ in range(per):
                c.get(path).raise_for_status()

    began = time.perf_counter()
    pool = [threading.Thread(target=worker) for _ in range(threads)]
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    return per * threads / (time.perf_counter() - began)


def bench_list(ref: str, root: Path) -> None:
    servers = _servers(root / "list", ref)
    try:
        result = {}
        for who, base, _, _ in servers:
            with httpx.Client(base_url=base, timeout=30) as c:
                assert len(c.get("/api/v2/dags", params={"perPage": 50}).json()["dags"]) == 50
                ms = _median_ms(c, "/api/v2/dags", 60, {"perPage": 50})
            rps = _throughput(base, "/api/v2/dags?perPage=50")
            result[who] = (ms, rps)
            print(f"list {who}: median {ms:.2f} ms, {rps:.0f} req/s (4 threads)", flush=True)
        ours, dagu = result["ours"], result["dagu"]
        print(f"list: our median is {ours[0] / dagu[0]:.2f}x Dagu's (target <= 0.20); "
              f"throughput {ours[1] / dagu[1]:.2f}x (target >= 100 req/s)", flush=True)
    finally:
        for _, _, proc, _ in servers:
            _stop(proc)


def bench_status(ref: str, root: Path) -> None:
    servers = _servers(root / "status", ref)
    try:
        result = {}
        for who, base, _, _ in servers:
            with httpx.Client(base_url=base, timeout=60) as c:
                c.post("/api/v2/dags/dag001/start", json={"dagRunId": "bench1"}).raise_for_status()
                deadline = time.monotonic() + 30
                while time.monotonic() < deadline:
                    doc = c.get("/api/v2/dag-runs/dag001/bench1").json()["dagRunDetails"]
                    if doc["statusLabel"] == "succeeded":
                        break
                    time.sleep(0.05)
                ms = _median_ms(c, "/api/v2/dag-runs/dag001/bench1", 100)
            result[who] = ms
            print(f"status {who}: median {ms:.2f} ms", flush=True)
        print(f"status: our median is {result['ours'] / result['dagu']:.2f}x Dagu's", flush=True)
    finally:
        for _, _, proc, _ in servers:
            _stop(proc)


def bench_health(ref: str, root: Path, rounds: int = 3) -> None:
    result = {}
    for who, argv in (("ours", [*OURS, "start-all"]), ("dagu", [ref, "start-all", "-s", "127.0.0.1"])):
        times = []
        for i in range(rounds):
            home = root / "health" / f"{who}{i}"
            (home / "dags").mkdir(parents=True)
            port = _free_port()
            proc = _spawn([*argv, "-p", str(port)], home)
            try:
                times.append(_wait_health(f"http://127.0.0.1:{port}"))
            finally:
                _stop(proc)
        result[who] = statistics.median(times)
        print(f"start-all {who}: health answers {result[who]:.2f} s after spawn (median of {rounds})", flush=True)
    print(f"health: ours {result['ours']:.2f} s (target <= 0.80 s), {result['ours'] / result['dagu']:.2f}x Dagu's",
          flush=True)


def main(names: list[str]) -> int:
    compile_bytecode()
    ref = reference_dagu()
    if ref is None:
        print("reference Dagu binary not found: npm install @dagu-org/dagu-linux-x64 or set DAGU_REF_BIN", file=sys.stderr)
        return 2
    cases = {"list": bench_list, "status": bench_status, "health": bench_health}
    with tempfile.TemporaryDirectory(prefix="dagu-bench-api-") as tmp:
        for name in names or list(cases):
            cases[name](ref, Path(tmp))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
