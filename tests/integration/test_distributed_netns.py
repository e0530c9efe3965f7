"""Coordinator and worker in two network namespaces joined by a veth pair (127.77.0.1 <-> 127.77.0.2)."""

from __future__ import annotations

import subprocess
import uuid
from pathlib import Path

import pytest
from distributed_cluster import Cluster


def _ip(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(["ip", *args], capture_output=True, text=True, timeout=30)


def _sh(ns: str, *args: str) -> None:
    r = subprocess.run(["ip", "netns", "exec", ns, *args], capture_output=True, text=True, timeout=30)
    assert r.returncode == 0, f"{args}: {r.stderr}"


@pytest.fixture
def namespaces(request):
    tag = uuid.uuid4().hex[:6]
    ns_c, ns_w = f"dagu-c-{tag}", f"dagu-w-{tag}"
    veth_c, veth_w = f"vc{tag}", f"vw{tag}"
    made = []

    def cleanup():
        for ns in made:
            _ip("netns", "del", ns)  # takes its end of the veth pair (and the pair) along

    request.addfinalizer(cleanup)
    for ns in (ns_c, ns_w):
        r = _ip("netns", "add", ns)
        if r.returncode != 0:
            pytest.skip(f"cannot create a network namespace (`ip netns add` failed: {r.stderr.strip()})")
        made.append(ns)
    r = _ip("link", "add", veth_c, "netns", ns_c, "type", "veth", "peer", "name", veth_w, "netns", ns_w)
    assert r.returncode == 0, r.stderr
    for ns, veth, addr in ((ns_c, veth_c, "127.77.0.1/24"), (ns_w, veth_w, "127.77.0.2/24")):
        # 127/8 is "martian" on a non-loopback link unless route_localnet allows it, in both namespaces.
        _sh(ns, "sysctl", "-qw", "net.ipv4.conf.all.route_localnet=1")
        _sh(ns, "sysctl", "-qw", f"net.ipv4.conf.{veth}.route_localnet=1")
        _sh(ns, "ip", "addr", "add", addr, "dev", veth)
        _sh(ns, "ip", "link", "set", veth, "up")
        _sh(ns, "ip", "link", "set", "lo", "up")
    return ns_c, ns_w


def test_a_worker_in_another_network_namespace_runs_what_the_coordinator_hands_it(namespaces, tmp_path):
    ns_c, ns_w = namespaces
    cluster = Cluster(tmp_path)
    try:
        cluster.start_coordinator(host="127.77.0.1", netns=ns_c)
        cluster.start_worker("far", "site=remote", address=f"127.77.0.1:{cluster.port}", netns=ns_w)
        cluster.wait_registered("far")
        cluster.start_scheduler(host="127.77.0.1", netns=ns_c)
        cluster.dag("far", "worker_selector:\n  site: remote\nsteps:\n  - name: where\n    command: hostname -I\n")
        cluster.enqueue("far", "n1")
        doc = cluster.wait_status("far", "n1", "succeeded")
        assert doc["workerId"] == "far"
        # The step ran in the worker's namespace: it sees only the worker's address.
        assert "127.77.0.2" in Path(doc["nodes"][0]["stdout"]).read_text()
    finally:
        cluster.close()
