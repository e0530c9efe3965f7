"""Mutual TLS between the coordinator and its clients, with a CA and certificates made in the test."""

from __future__ import annotations

import datetime
import ipaddress
from pathlib import Path

import grpc
import pytest
from distributed_cluster import Cluster

from transports.grpc import health_pb2, health_pb2_grpc


def _pki(folder: Path) -> dict[str, str]:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    now = datetime.datetime.now(datetime.UTC)

    def name(cn):
        return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])

    def write(stem, key, cert):
        (folder / f"{stem}.key").write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                                                 serialization.NoEncryption()))
        (folder / f"{stem}.crt").write_bytes(cert.public_bytes(serialization.Encoding.PEM))

    def issue(cn, ca_key, ca_name, usage, san=None):
        key = ec.generate_private_key(ec.SECP256R1())
        b = (x509.CertificateBuilder().subject_name(name(cn)).issuer_name(ca_name).public_key(key.public_key())
             .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(minutes=5))
             .not_valid_after(now + datetime.timedelta(days=1))
             .add_extension(x509.ExtendedKeyUsage([usage]), critical=False))
        if san:
            b = b.add_extension(x509.SubjectAlternativeName(san), critical=False)
        return key, b.sign(ca_key, hashes.SHA256())

    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = (x509.CertificateBuilder().subject_name(name("test-ca")).issuer_name(name("test-ca"))
          .public_key(ca_key.public_key()).serial_number(x509.random_serial_number())
          .not_valid_before(now - datetime.timedelta(minutes=5)).not_valid_after(now + datetime.timedelta(days=1))
          .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True).sign(ca_key, hashes.SHA256()))
    write("ca", ca_key, ca)
    san = [x509.IPAddress(ipaddress.ip_address("127.0.0.1")), x509.DNSName("localhost")]
    write("server", *issue("coordinator", ca_key, ca.subject, ExtendedKeyUsageOID.SERVER_AUTH, san))
    write("client", *issue("worker", ca_key, ca.subject, ExtendedKeyUsageOID.CLIENT_AUTH))
    other_key = ec.generate_private_key(ec.SECP256R1())
    other_ca = (x509.CertificateBuilder().subject_name(name("other-ca")).issuer_name(name("other-ca"))
                .public_key(other_key.public_key()).serial_number(x509.random_serial_number())
                .not_valid_before(now - datetime.timedelta(minutes=5)).not_valid_after(now + datetime.timedelta(days=1))
                .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
                .sign(other_key, hashes.SHA256()))
    write("rogue", *issue("rogue", other_key, other_ca.subject, ExtendedKeyUsageOID.CLIENT_AUTH))
    return {k: str(folder / f"{k}") for k in ("ca", "server", "client", "rogue")}


def _check(port: int, ca: bytes, key: bytes | None = None, cert: bytes | None = None) -> int:
    creds = grpc.ssl_channel_credentials(root_certificates=ca, private_key=key, certificate_chain=cert)
    with grpc.secure_channel(f"127.0.0.1:{port}", creds) as channel:
        return health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=10).status


@pytest.fixture
def cluster(tmp_path):
    c = Cluster(tmp_path)
    yield c
    c.close()


def test_mutual_tls_accepts_the_right_client_certificate_and_refuses_others(cluster, tmp_path):
    p = _pki(tmp_path)
    server_tls = ("--peer-cert-file", p["server"] + ".crt", "--peer-key-file", p["server"] + ".key",
                  "--peer-client-ca-file", p["ca"] + ".crt")
    port = cluster.start_coordinator(tls=server_tls)
    ca = Path(p["ca"] + ".crt").read_bytes()

    def pem(stem, ext):
        return Path(f"{p[stem]}.{ext}").read_bytes()

    assert _check(port, ca, pem("client", "key"), pem("client", "crt")) == health_pb2.HealthCheckResponse.SERVING
    with pytest.raises(grpc.RpcError) as no_cert:
        _check(port, ca)
    assert no_cert.value.code() == grpc.StatusCode.UNAVAILABLE
    with pytest.raises(grpc.RpcError) as wrong_ca:
        _check(port, ca, pem("rogue", "key"), pem("rogue", "crt"))
    assert wrong_ca.value.code() == grpc.StatusCode.UNAVAILABLE
    with grpc.insecure_channel(f"127.0.0.1:{port}") as plain, pytest.raises(grpc.RpcError):
        health_pb2_grpc.HealthStub(plain).Check(health_pb2.HealthCheckRequest(), timeout=5)

    # A real worker and scheduler with the client certificate run a workflow over mTLS.
    client_tls = ("--peer-cert-file", p["client"] + ".crt", "--peer-key-file", p["client"] + ".key",
                  "--peer-client-ca-file", p["ca"] + ".crt")
    cluster.start_worker("secure", "pool=a", tls=client_tls)
    cluster.start_worker("nocert", "pool=a", tls=("--peer-client-ca-file", p["ca"] + ".crt"))
    cluster.wait_registered("secure")
    cluster.tls_env = {"DAGU_PEER_CERT_FILE": p["client"] + ".crt", "DAGU_PEER_KEY_FILE": p["client"] + ".key",
                       "DAGU_PEER_CLIENT_CA_FILE": p["ca"] + ".crt"}
    cluster.start_scheduler()
    cluster.dag("tls", "worker_selector:\n  pool: a\nsteps:\n  - name: hi\n    command: echo over mtls\n")
    for i in range(3):
        cluster.enqueue("tls", f"t{i}")
    for i in range(3):
        assert cluster.wait_status("tls", f"t{i}", "succeeded")["workerId"] == "secure"
    assert "worker nocert registered" not in cluster.coord_logs()
