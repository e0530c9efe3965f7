"""Credentials for the coordinator's gRPC server and its clients: plaintext, TLS or mutual TLS.

Server: `peer.cert_file` + `peer.key_file` turn TLS on; `peer.client_ca_file`
then also requires every client to present a certificate signed by that CA.
Client: `peer.client_ca_file` is the CA that signed the server's certificate;
`peer.cert_file` + `peer.key_file` are the client certificate for mutual TLS.
"""

from __future__ import annotations

from pathlib import Path

import grpc

from dagu.config import ConfigError
from transports.grpc.options import PeerOptions

__all__ = ["add_port", "open_channel", "CHANNEL_OPTIONS"]

# Keepalive lets both ends notice a dead peer (a killed worker, a partitioned
# network) while a long poll is parked, instead of waiting for TCP's timeout.
CHANNEL_OPTIONS = (
    ("grpc.keepalive_time_ms", 10_000),
    ("grpc.keepalive_timeout_ms", 5_000),
    ("grpc.keepalive_permit_without_calls", 1),
    ("grpc.http2.max_pings_without_data", 0),
    ("grpc.max_receive_message_length", 64 * 1024 * 1024),
    ("grpc.max_send_message_length", 64 * 1024 * 1024),
)
SERVER_OPTIONS = (
    ("grpc.keepalive_time_ms", 10_000),
    ("grpc.keepalive_timeout_ms", 5_000),
    ("grpc.keepalive_permit_without_calls", 1),
    ("grpc.http2.min_ping_interval_without_data_ms", 5_000),
    ("grpc.http2.max_ping_strikes", 0),
    ("grpc.max_receive_message_length", 64 * 1024 * 1024),
    ("grpc.so_reuseport", 0),
)


def add_port(server: grpc.Server, address: str, peer: PeerOptions) -> int:
    """Bind `server` to `address` (plaintext or TLS per `peer`) and return the bound port.

    Raises:
        ConfigError: a certificate file is missing, or TLS is asked for without a key pair.
        OSError: the address cannot be bound.
    """
    if not peer.uses_tls:
        port = server.add_insecure_port(address)
    else:
        if not (peer.cert_file and peer.key_file):
            raise ConfigError("peer: TLS needs both peer.cert_file and peer.key_file on the coordinator "
                              "(or set peer.insecure: true for plaintext)")
        ca = _read(peer.client_ca_file, "peer.client_ca_file") if peer.client_ca_file else None
        creds = grpc.ssl_server_credentials(
            [(_read(peer.key_file, "peer.key_file"), _read(peer.cert_file, "peer.cert_file"))],
            root_certificates=ca,
            require_client_auth=ca is not None,
        )
        port = server.add_secure_port(address, creds)
    if port == 0:
        raise OSError(f"cannot bind the coordinator to {address}: the address is in use or not local")
    return port


def open_channel(address: str, peer: PeerOptions) -> grpc.Channel:
    """A channel to the coordinator at `host:port`, plaintext or TLS per `peer`.

    Raises:
        ConfigError: TLS is asked for but a file is missing, or skip_tls_verify is set.
    """
    if not peer.uses_tls:
        return grpc.insecure_channel(address, options=CHANNEL_OPTIONS)
    if peer.skip_tls_verify:
        raise ConfigError("peer.skip_tls_verify is not supported by dagu-py; give the server's CA in peer.client_ca_file")
    ca = _read(peer.client_ca_file, "peer.client_ca_file") if peer.client_ca_file else None
    key = _read(peer.key_file, "peer.key_file") if peer.key_file else None
    cert = _read(peer.cert_file, "peer.cert_file") if peer.cert_file else None
    if (key is None) != (cert is None):
        raise ConfigError("peer: a client certificate needs both peer.cert_file and peer.key_file")
    creds = grpc.ssl_channel_credentials(root_certificates=ca, private_key=key, certificate_chain=cert)
    return grpc.secure_channel(address, creds, options=CHANNEL_OPTIONS)


def _read(path: str | None, key: str) -> bytes:
    try:
        return Path(path or "").read_bytes()
    except OSError as exc:
        raise ConfigError(f"{key}: cannot read {path!r}: {exc.strerror or exc}") from exc
