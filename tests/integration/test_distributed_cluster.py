"""Coordinator, three labelled workers and a scheduler as real processes: routing, fidelity, waiting, stopping."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from distributed_cluster import Cluster

from helpers import run_dagu, wait_for

GREET = """\
worker_selector:
  pool: {pool}
params: NAME=bob
steps:
  - name: greet
    command: echo hello ${{NAME}}
    output: GREETING
  - name: second
    command: sh -c 'echo "second $GREETING"; echo to-stderr >&2'
    depends: greet
  - name: third
    command: sh -c 'exit 3'
    depends: second
    continue_on:
      failure: true
"""


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    c = Cluster(tmp_path_factory.mktemp("cluster"))
    try:
        c.start_coordinator()
        for wid, labels in (("wa", "pool=a"), ("wb", "pool=b"), ("wc", "pool=c,gpu=true")):
            c.start_worker(wid, labels)
        c.wait_registered("wa", "wb", "wc")
        c.start_scheduler()
        yield c
    finally:
        c.close()


def test_runs_are_routed_to_the_workers_whose_labels_match(cluster):
    for pool in "abc":
        cluster.dag(f"route_{pool}", GREET.format(pool=pool))
    for pool in "abc":
        for i in range(2):
            cluster.enqueue(f"route_{pool}", f"r{pool}{i}")
    for pool in "abc":
        for i in range(2):
            doc = cluster.wait_status(f"route_{pool}", f"r{pool}{i}", "partially_succeeded", "succeeded", "failed")
            assert doc["workerId"] == f"w{pool}", doc


def test_a_workflow_gives_the_same_statuses_outputs_and_logs_standalone_and_distributed(cluster, tmp_path):
    cluster.dag("same", GREET.format(pool="b"))
    cluster.enqueue("same", "dist1", "NAME=alice")
    remote = cluster.wait_status("same", "dist1", "partially_succeeded", "succeeded", "failed")
    local_home = tmp_path / "standalone"
    (local_home / "dags").mkdir(parents=True)
    (local_home / "dags" / "same.yaml").write_text(GREET.format(pool="b"))
    run_dagu("start", "-r", "loc1", "same", "--", "NAME=alice", home=local_home)
    local = json.loads(run_dagu("status", "--json", "-r", "loc1", "same", home=local_home).stdout)

    assert remote["workerId"] == "wb" and local["workerId"] == "local"
    assert remote["statusLabel"] == local["statusLabel"] == "partially_succeeded"
    assert remote["paramsList"] == local["paramsList"] == ["NAME=alice"]
    for r, lo in zip(remote["nodes"], local["nodes"], strict=True):
        assert (r["step"]["name"], r["statusLabel"], r["exitCode"], r["outputs"]) == \
               (lo["step"]["name"], lo["statusLabel"], lo["exitCode"], lo["outputs"])
        for stream in ("stdout", "stderr"):
            # The remote run's logs live on the coordinator's disk, under its own log folder.
            assert r[stream].startswith(str(cluster.home / "logs")), r[stream]
            assert _read(r[stream]) == _read(lo[stream])
    assert remote["nodes"][1]["outputs"] == {} and remote["nodes"][0]["outputs"] == {"GREETING": "hello alice"}
    assert _read(remote["nodes"][1]["stderr"]) == "to-stderr\n"
    shown = run_dagu("status", "-r", "dist1", "same", home=cluster.home).stdout
    assert "second hello alice" in shown


def test_a_run_without_an_eligible_worker_waits_queued_with_the_reason(cluster):
    cluster.dag("nowhere", GREET.format(pool="zzz"))
    cluster.enqueue("nowhere", "w1")
    doc = wait_for(lambda: (d := cluster.status("nowhere", "w1")) and "no connected worker matches" in d.get("error", "")
                   and d, "the waiting reason in the queued record", timeout=30)
    assert doc["statusLabel"] == "queued"
    assert "pool=zzz" in doc["error"]
    run_dagu("dequeue", "nowhere", "--dag-run=nowhere:w1", home=cluster.home)


def test_stopping_a_remote_run_stops_it_on_its_worker(cluster):
    cluster.dag("long", "worker_selector:\n  pool: a\nsteps:\n  - name: nap\n    command: sleep 60\n")
    cluster.enqueue("long", "stop1")
    cluster.wait_status("long", "stop1", "running")
    r = run_dagu("stop", "-r", "stop1", "long", home=cluster.home, timeout=60)
    assert r.returncode == 0, r.stderr
    doc = cluster.wait_status("long", "stop1", "aborted", timeout=30)
    assert doc["nodes"][0]["statusLabel"] == "aborted"


def _read(path: str) -> str:
    return Path(path).read_text()


def _coordinator_config(home: Path, port: int) -> Path:
    home.mkdir(parents=True, exist_ok=True)
    (home / "config.yaml").write_text(f"coordinator:\n  host: 127.0.0.1\n  port: {port}\n")
    return home


def test_the_api_lists_the_connected_workers_with_their_labels(cluster, tmp_path):
    from apiserver import live_server

    with live_server(_coordinator_config(tmp_path / "server", cluster.port)) as srv:
        doc = srv.client.get("/workers").json()
    assert doc["errors"] == []
    by_id = {w["id"]: w for w in doc["workers"]}
    assert set(by_id) == {"wa", "wb", "wc"}
    assert by_id["wc"]["labels"] == {"pool": "c", "gpu": "true"}
    assert by_id["wa"]["healthStatus"] == "healthy"
    assert by_id["wa"]["lastHeartbeatAt"].endswith("Z") or "+" in by_id["wa"]["lastHeartbeatAt"]


def test_the_api_says_so_when_the_coordinator_is_unreachable(tmp_path):
    from apiserver import live_server
    from distributed_cluster import free_port

    with live_server(_coordinator_config(tmp_path / "server", free_port())) as srv:
        r = srv.client.get("/workers")
    assert r.status_code == 503
    assert "coordinator unavailable" in r.json()["message"]


def test_changes_of_a_remote_run_reach_the_coordinators_event_bus(cluster):
    import select
    import time

    from dagu.events import EventSubscriber, events_dir

    cluster.dag("announced", GREET.format(pool="a"))
    seen: list[dict] = []
    with EventSubscriber(events_dir(cluster.home / "data")) as sub:
        cluster.enqueue("announced", "ev1")
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if select.select([sub], [], [], 0.5)[0]:
                seen += [e for e in sub.receive() if e.get("dagRunId") == "ev1"]
            if any(e["type"] == "run" and e["statusLabel"] in ("partially_succeeded", "failed", "succeeded") for e in seen):
                break
    steps = {(e["step"], e["statusLabel"]) for e in seen if e["type"] == "step"}
    assert {("greet", "succeeded"), ("second", "succeeded"), ("third", "failed")} <= steps, seen
    runs = [e["statusLabel"] for e in seen if e["type"] == "run"]
    assert runs[-1] == "partially_succeeded", seen


def test_the_api_lists_the_running_coordinator_from_the_service_registry(cluster):
    from apiserver import live_server

    with live_server(cluster.home) as srv:
        doc = srv.client.get("/services/coordinator").json()
    [coord] = doc["coordinators"]
    assert coord["port"] == cluster.port and coord["status"] == "active" and coord["host"] == "127.0.0.1"
    assert coord["startedAt"]
