"""Health, services, workers, queues config, CORS, JSON 404/405, base path and the OpenAPI
document on a live server; `dagu server` over TLS and `start-all` serving the real API."""

from __future__ import annotations

import datetime
import os
import signal
import socket
import ssl
import subprocess
import sys

import httpx
import pytest
from apiserver import live_server
from helpers import ROOT, wait_for


@pytest.fixture
def srv(tmp_path):
    with live_server(tmp_path / "home") as s:
        yield s


def test_health_at_both_api_bases(srv):
    root = srv.url.removesuffix("/api/v2")
    for base in ("/api/v2", "/api/v1"):
        doc = httpx.get(f"{root}{base}/health").json()
        assert doc["status"] == "healthy" and isinstance(doc["uptime"], int) and doc["version"]
        assert doc["timestamp"].endswith("Z")
    assert httpx.get(f"{root}/api/v1/dags").json()["dags"] == []


def test_unknown_routes_and_methods_are_json(srv):
    r = srv.client.get("/no/such/route")
    assert r.status_code == 404 and r.json()["code"] == "not_found" and r.json()["message"]
    r = srv.client.delete("/health")
    assert r.status_code == 405 and r.json()["code"] == "bad_request" and "GET" in r.headers["allow"]
    r = httpx.get(srv.url.removesuffix("/api/v2") + "/nothing-here")
    assert r.status_code == 404 and r.headers["content-type"] == "application/json"


def test_cors_preflight_and_simple_requests(srv):
    r = srv.client.options("/dags", headers={
        "Origin": "http://ui.example", "Access-Control-Request-Method": "PATCH",
        "Access-Control-Request-Headers": "Authorization, Content-Type"})
    assert r.status_code == 200
    assert r.headers["access-control-allow-origin"] == "http://ui.example"
    assert r.headers["access-control-allow-credentials"] == "true"
    assert "PATCH" in r.headers["access-control-allow-methods"] and r.headers["access-control-max-age"] == "300"
    r = srv.client.get("/health", headers={"Origin": "http://ui.example"})
    assert r.headers["access-control-allow-origin"] == "http://ui.example"


def test_workers_services_and_empty_queues(srv):
    c = srv.client
    assert c.get("/workers").json() == {"workers": [], "errors": ["Coordinator service not configured"]}
    assert c.get("/services/scheduler").json() == {"schedulers": []}
    assert c.get("/services/coordinator").json() == {"coordinators": []}
    assert set(c.get("/services/resources/history").json()) == {"cpu", "memory", "disk", "load"}
    assert c.get("/queues").json() == {"queues": [], "summary": {
        "totalQueues": 0, "totalRunning": 0, "totalQueued": 0, "totalCapacity": 0, "utilizationPercentage": 0}}


def test_configured_queues_are_global(tmp_path):
    home = tmp_path / "home"
    home.mkdir()
    (home / "config.yaml").write_text("queues:\n  enabled: true\n  config:\n    - {name: shared, maxConcurrency: 2}\n")
    with live_server(home) as s:
        doc = s.client.get("/queues").json()
        assert doc["queues"] == [{"name": "shared", "type": "global", "running": [], "queued": [], "maxConcurrency": 2}]
        assert doc["summary"]["totalCapacity"] == 2


def test_scheduler_service_is_read_from_its_lock(srv):
    lock = srv.home / "data" / "scheduler" / "locks" / ".dagu_lock"
    lock.mkdir(parents=True)
    (lock / "owner").write_text("box1:4242:abcd")
    doc = srv.client.get("/services/scheduler").json()
    assert doc["schedulers"][0]["host"] == "box1" and doc["schedulers"][0]["status"] == "active"


def test_base_path_prefixes_every_route(tmp_path):
    with live_server(tmp_path / "home", base_path="/dagu") as s:
        assert s.client.get("/health").status_code == 200
        root = s.url.removesuffix("/dagu/api/v2")
        assert httpx.get(f"{root}/api/v2/health").status_code == 404


def test_openapi_document_lists_the_served_operations(srv):
    doc = srv.client.get("/openapi.json").json()
    assert doc["openapi"].startswith("3.") and doc["servers"] == [{"url": "/api/v2"}]
    assert {"/dags", "/dags/{fileName}/start", "/dag-runs/{name}/{dagRunId}", "/queues"} <= set(doc["paths"])
    v1 = httpx.get(srv.url.replace("/api/v2", "/api/v1") + "/openapi.json").json()
    assert v1["servers"] == [{"url": "/api/v1"}]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _self_signed(tmp_path):
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.UTC)
    import ipaddress

    cert = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
        .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(minutes=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_path, key_path


def _spawn(args, home, extra_env, log):
    env = {k: v for k, v in os.environ.items() if not k.startswith("DAGU_")}
    env.update({"DAGU_HOME": str(home), "PYTHONPATH": str(ROOT), **extra_env})
    return subprocess.Popen([sys.executable, "-m", "dagu", *args], env=env, cwd=ROOT, stdout=log,
                            stderr=subprocess.STDOUT, start_new_session=True)


def _get(url, **kw):
    try:
        return httpx.get(url, timeout=2, **kw)
    except httpx.TransportError:
        return None


def test_dagu_server_serves_health_over_tls_and_stops_on_sigterm(tmp_path):
    cert, key = _self_signed(tmp_path)
    home = tmp_path / "home"
    (home / "dags").mkdir(parents=True)
    port = _free_port()
    with open(tmp_path / "server.log", "wb") as log:
        proc = _spawn(["server", "-p", str(port)], home, {"DAGU_CERT_FILE": str(cert), "DAGU_KEY_FILE": str(key)}, log)
    try:
        url = f"https://127.0.0.1:{port}/api/v2/health"
        trust = ssl.create_default_context(cafile=str(cert))
        r = wait_for(lambda: _get(url, verify=trust), "the TLS health endpoint", 20)
        assert r.json()["status"] == "healthy"
        with pytest.raises(httpx.TransportError):
            httpx.get(f"http://127.0.0.1:{port}/api/v2/health", timeout=2).raise_for_status()
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=10) in (0, -signal.SIGTERM)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)


def test_dagu_server_refuses_half_a_tls_config(tmp_path):
    cert, _ = _self_signed(tmp_path)
    home = tmp_path / "home"
    home.mkdir()
    with open(tmp_path / "server.log", "wb") as log:
        proc = _spawn(["server", "-p", str(_free_port())], home, {"DAGU_CERT_FILE": str(cert)}, log)
    assert proc.wait(timeout=20) == 1
    assert b"TLS needs both" in (tmp_path / "server.log").read_bytes()


def test_start_all_serves_the_real_api(tmp_path):
    home = tmp_path / "home"
    (home / "dags").mkdir(parents=True)
    (home / "dags" / "hello.yaml").write_text("steps:\n  - command: echo hi\n")
    port = _free_port()
    with open(tmp_path / "start-all.log", "wb") as log:
        proc = _spawn(["start-all", "-p", str(port)], home, {}, log)
    try:
        base = f"http://127.0.0.1:{port}/api/v2"
        wait_for(lambda: _get(f"{base}/health"), "start-all health", 30)
        assert [d["fileName"] for d in httpx.get(f"{base}/dags").json()["dags"]] == ["hello"]
        r = httpx.post(f"{base}/dags/hello/start", json={"dagRunId": "sa1"}, timeout=30)
        assert r.status_code == 200

        def finished():
            d = httpx.get(f"{base}/dag-runs/hello/sa1").json()["dagRunDetails"]
            return d["statusLabel"] == "succeeded"

        wait_for(finished, "the run started through start-all to succeed", 30)
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=10)
        finally:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
