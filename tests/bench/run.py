"""Benchmarks: dagu-py next to the real Dagu binary, side by side in one run, as ratios of medians.

    python tests/bench/run.py                 # every benchmark
    python tests/bench/run.py validate hello  # some of them
    DAGU_REF_BIN=/path/to/dagu python tests/bench/run.py

Each case writes its workflow to a temp folder, then alternates the two engines
(ours, theirs, ours, ...) so drift on the machine hits both alike. Wall time is
measured around the whole process; peak memory is the max RSS of the process tree
(ru_maxrss of the waited children). Not run by CI.
"""

from __future__ import annotations

import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from helpers import EXAMPLES, compile_bytecode, reference_dagu  # noqa: E402


def chain(n: int) -> str:
    return "steps:\n" + "".join(f"  - name: s{i}\n    command: \"true\"\n" for i in range(n))


def fan_out(n: int, limit: int = 0) -> str:
    head = "type: graph\n" + (f"maxActiveSteps: {limit}\n" if limit else "") + "steps:\n  - name: start\n    command: \"true\"\n"
    body = "".join(f"  - name: p{i}\n    depends: start\n    command: \"true\"\n" for i in range(n))
    tail = "  - name: join\n    depends: [" + ", ".join(f"p{i}" for i in range(n)) + "]\n    command: \"true\"\n"
    return head + body + tail


CASES: dict[str, tuple[str, Callable[[], str] | Path, int]] = {
    # name: (command, workflow, repetitions)
    "validate": ("validate", EXAMPLES / "hello.yaml", 15),
    "hello": ("start", EXAMPLES / "hello.yaml", 10),
    "chain100": ("start", lambda: chain(100), 5),
    "fanout200": ("start", lambda: fan_out(200), 5),
    "fanout200_limit4": ("start", lambda: fan_out(200, 4), 3),
    "chain1000": ("start", lambda: chain(1000), 3),
}


def measure(argv: list[str], env: dict[str, str], cwd: str) -> tuple[float, float]:
    """(wall seconds, peak RSS MiB of the child) for one run."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    t0 = time.perf_counter()
    proc = subprocess.run(argv, env=env, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    wall = time.perf_counter() - t0
    if proc.returncode not in (0,):
        raise SystemExit(f"{' '.join(argv)} failed ({proc.returncode}):\n{proc.stderr[-2000:]}")
    after = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return wall, max(after, before) / 1024.0


def main(names: list[str]) -> int:
    compile_bytecode()
    ref = reference_dagu()
    if ref is None:
        print("reference Dagu binary not found: npm install @dagu-org/dagu-linux-x64 or set DAGU_REF_BIN", file=sys.stderr)
        return 2
    ours = [sys.executable, "-m", "dagu"]
    rows = []
    with tempfile.TemporaryDirectory(prefix="dagu-bench-") as tmp:
        for name in names or list(CASES):
            command, workflow, reps = CASES[name]
            if callable(workflow):
                path = Path(tmp) / f"{name}.yaml"
                path.write_text(workflow())
            else:
                path = workflow
            times = {"ours": [], "dagu": []}
            for i in range(reps):
                for who, argv0 in (("ours", ours), ("dagu", [ref])):
                    home = Path(tmp) / f"home-{who}-{name}-{i}"
                    env = {k: v for k, v in os.environ.items() if not k.startswith("DAGU_")}
                    env.update({"DAGU_HOME": str(home), "DISABLE_PROGRESS": "1"})
                    argv = [*argv0, command, str(path)] if command == "validate" else [*argv0, command, "-q", str(path)]
                    if who == "dagu" and command == "start":
                        argv = [*argv0, command, str(path)]
                    times[who].append(measure(argv, env, tmp))
            ours_t = statistics.median(t for t, _ in times["ours"])
            dagu_t = statistics.median(t for t, _ in times["dagu"])
            rows.append((name, ours_t, dagu_t, ours_t / dagu_t))
            print(f"{name:18s} ours {ours_t*1000:8.1f} ms   dagu {dagu_t*1000:8.1f} ms   ratio {ours_t/dagu_t:5.2f}x", flush=True)
    mem = _peak_memory_fanout(ours)
    if mem is not None:
        print(f"{'fanout200 peak RSS':18s} ours {mem:8.1f} MiB (run process)")
    return 0


def _peak_memory_fanout(ours: list[str]) -> float | None:
    """Peak RSS of our run process alone on the 1 -> 200 -> 1 fan-out (steps' shells excluded)."""
    with tempfile.TemporaryDirectory(prefix="dagu-mem-") as tmp:
        path = Path(tmp) / "fan.yaml"
        path.write_text(fan_out(200))
        code = (
            "import resource, sys\n"
            "from dagu.cli.main import main\n"
            f"rc = main(['-q', 'start', {str(path)!r}])\n"
            "print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)\n"
        )
        env = {k: v for k, v in os.environ.items() if not k.startswith("DAGU_")}
        env.update({"DAGU_HOME": str(Path(tmp) / "home"), "DISABLE_PROGRESS": "1"})
        out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, cwd=tmp)
        try:
            return int(out.stdout.strip().splitlines()[-1]) / 1024.0
        except (ValueError, IndexError):
            return None


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
