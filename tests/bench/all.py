"""Every benchmark, one after the other (not run by CI; about 15 minutes on 2 cores):

    python tests/bench/all.py            # all suites
    python tests/bench/all.py api ui     # some of them

Each suite is its own script and can be run alone; this only runs them in turn
and says which ones failed.
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
SUITES = {
    "engine": "run.py",  # CLI start-up, chains and fan-outs next to the Dagu binary
    "service": "bench_service.py",  # queue drain and latency, cron lateness, start-all memory
    "api": "bench_api.py",  # DAG list with 500 DAGs, run status, start-all health time
    "ui": "bench_ui.py",  # DAG list page with 2,000 DAGs, 1,000-step run page in Chromium
    "distributed": "bench_distributed.py",  # dispatch latency, 500 runs on 4 workers, worker memory
}


def main(names: list[str]) -> int:
    unknown = [n for n in names if n not in SUITES]
    if unknown:
        print(f"unknown suite(s) {', '.join(unknown)}; choose from {', '.join(SUITES)}", file=sys.stderr)
        return 2
    failed = []
    for name in names or list(SUITES):
        print(f"\n=== {name} ({SUITES[name]}) ===", flush=True)
        t0 = time.monotonic()
        code = subprocess.call([sys.executable, str(HERE / SUITES[name])])
        print(f"=== {name}: {'ok' if code == 0 else f'exit {code}'} in {time.monotonic() - t0:.0f} s", flush=True)
        if code != 0:
            failed.append(name)
    if failed:
        print(f"\nfailed: {', '.join(failed)}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
