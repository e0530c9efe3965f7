"""Failures with real processes: a worker killed mid-run, a coordinator restarted while workers wait."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from distributed_cluster import Cluster, free_port

from helpers import wait_for

LONG = "worker_selector:\n  pool: a\nsteps:\n  - name: nap\n    command: sleep 60\n"
SHORT = "worker_selector:\n  pool: a\nsteps:\n  - name: hi\n    command: echo hi\n"


@pytest.fixture
def cluster(tmp_path):
    c = Cluster(tmp_path, lost_after_s=2.0)
    yield c
    c.close()


def test_a_worker_killed_mid_run_gets_its_run_marked_failed_with_the_reason(cluster):
    cluster.start_coordinator()
    worker = cluster.start_worker("w1", "pool=a")
    cluster.wait_registered("w1")
    cluster.start_scheduler()
    cluster.dag("long", LONG)
    cluster.enqueue("long", "k1")
    cluster.wait_status("long", "k1", "running")
    cluster.kill(worker)  # SIGKILL: no goodbye, no final report
    doc = cluster.wait_status("long", "k1", "failed", timeout=30)
    assert "worker w1 was lost: no heartbeat" in doc["error"], doc
    assert doc["nodes"][0]["statusLabel"] == "failed"
    assert "was lost" in doc["nodes"][0]["error"]
    # Nothing of the worker's is left running on its host: no orphan run process, step or fork server.
    home = str(cluster.tmp / "worker-w1")
    wait_for(lambda: not _processes_of(home), f"the processes of {home} to end", 15)


def _processes_of(home: str) -> list[int]:
    """PIDs whose environment has DAGU_HOME=`home` (zombies excluded)."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            environ = Path(f"/proc/{entry}/environ").read_bytes().split(b"\0")
            state = Path(f"/proc/{entry}/stat").read_text().rpartition(")")[2].split()[0]
        except OSError:
            continue
        if state != "Z" and f"DAGU_HOME={home}".encode() in environ:
            found.append(int(entry))
    return found


def test_a_dag_with_a_retry_policy_is_requeued_when_its_worker_is_lost(cluster):
    cluster.start_coordinator()
    worker = cluster.start_worker("w1", "pool=a")
    cluster.wait_registered("w1")
    cluster.start_scheduler()
    mark = cluster.tmp / "first-attempt-ran"
    cluster.dag("again", "worker_selector:\n  pool: a\nretry_policy:\n  limit: 1\nsteps:\n"
                         f"  - name: once\n    command: sh -c 'test -e {mark} || {{ touch {mark}; sleep 60; }}'\n")
    run_id = "rq1"
    cluster.enqueue("again", run_id)
    cluster.wait_status("again", run_id, "running")
    cluster.kill(worker)
    cluster.wait_status("again", run_id, "queued", timeout=30)
    cluster.start_worker("w2", "pool=a")
    doc = cluster.wait_status("again", run_id, "succeeded", timeout=60)
    assert doc["workerId"] == "w2"


def test_workers_re_register_after_a_coordinator_restart_and_the_next_run_works(cluster):
    port = free_port()
    cluster.start_coordinator(port=port)
    cluster.start_worker("w1", "pool=a")
    cluster.start_worker("w2", "pool=b")
    cluster.wait_registered("w1", "w2")
    cluster.start_scheduler()
    cluster.dag("short", SHORT)
    cluster.enqueue("short", "before")
    cluster.wait_status("short", "before", "succeeded")
    first = cluster.coordinator
    mark = len(cluster.coord_logs())
    cluster.kill(first, 15)  # SIGTERM, a clean restart
    cluster.start_coordinator(port=port)
    cluster.wait_registered("w1", "w2", since=mark)
    cluster.enqueue("short", "after")
    doc = cluster.wait_status("short", "after", "succeeded")
    assert doc["workerId"] == "w1"
