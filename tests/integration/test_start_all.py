"""`dagu start-all` as a user runs it: the process tree, health, a queued run executed, clean shutdown."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request

from helpers import ROOT, run_dagu, wait_for


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]




def _children_titles(pid: int) -> list[str]:
    out = subprocess.run(["ps", "-o", "args=", "--ppid", str(pid)], capture_output=True, text=True).stdout
    # NOTE: multiprocessing's resource tracker is a child too; only our services carry a title.
    return sorted(line.strip() for line in out.splitlines() if line.strip().startswith("dagu:"))


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split()[2] != "Z"
    except FileNotFoundError:
        return False


def _health(port: int):
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/v2/health", timeout=1) as r:
            return json.loads(r.read())
    except OSError:
        return None


def test_start_all_serves_health_runs_queued_work_and_stops_on_sigterm(tmp_path):
    home = tmp_path / "home"
    (home / "dags").mkdir(parents=True)
    (home / "dags" / "job.yaml").write_text("steps:\n  - command: echo from-the-queue\n    output: OUT\n")
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("DAGU_")}
    env.update({"DAGU_HOME": str(home), "PYTHONPATH": str(ROOT)})
    log = open(tmp_path / "start-all.log", "wb")
    proc = subprocess.Popen([sys.executable, "-m", "dagu", "start-all", "-p", str(port)], env=env, cwd=ROOT,
                            stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        assert wait_for(lambda: _health(port), "the health endpoint")["status"] == "healthy"
        assert _children_titles(proc.pid) == ["dagu: scheduler", "dagu: server"]
        assert run_dagu("enqueue", "-r", "from-queue", "job", home=home).returncode == 0

        def finished():
            r = run_dagu("status", "--json", "job", home=home)
            return r.returncode == 0 and json.loads(r.stdout)["statusLabel"] == "succeeded" and json.loads(r.stdout)

        doc = wait_for(finished, "the queued run to succeed")
        assert doc["dagRunId"] == "from-queue" and doc["nodes"][0]["outputs"] == {"OUT": "from-the-queue"}
        out = subprocess.run(["ps", "-o", "pid=,args=", "--ppid", str(proc.pid)], capture_output=True, text=True).stdout
        # NOTE: only our services; multiprocessing's resource tracker leaves once every holder of its pipe has.
        children = [int(line.split()[0]) for line in out.splitlines() if "dagu:" in line]
        assert len(children) == 2
        began = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=10) == -signal.SIGTERM
        assert time.monotonic() - began <= 2.0
        assert not [pid for pid in children if _alive(pid)]
        assert not (home / "data" / "scheduler" / "locks" / ".dagu_lock").exists()
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)  # the whole tree, so nothing outlives a failed test
            proc.wait()
        log.close()
