"""Serving the app with uvicorn: bind address, TLS files and graceful shutdown on SIGTERM/SIGINT.

`dagu server` and the `dagu: server` process of `start-all` both call `serve()`.
Uvicorn handles the signals itself: it stops accepting, finishes in-flight
requests, then re-raises the signal so the parent sees the true cause.
"""

from __future__ import annotations

import logging
import os
import socket
from collections.abc import Mapping
from pathlib import Path

from dagu.config import ConfigError, Settings

__all__ = ["serve", "tls_files", "build_server"]

logger = logging.getLogger(__name__)


def tls_files(settings: Settings, environ: Mapping[str, str] | None = None) -> tuple[str, str] | None:
    """(cert, key) from `DAGU_CERT_FILE`/`DAGU_KEY_FILE` or `tls.certFile`/`tls.keyFile`; None for plain HTTP.

    Raises:
        ConfigError: only one of the two is set, or a file is missing.
    """
    env = os.environ if environ is None else environ
    tls = settings.raw.get("tls") if isinstance(settings.raw.get("tls"), Mapping) else {}
    cert = env.get("DAGU_CERT_FILE") or tls.get("certFile") or tls.get("cert_file")
    key = env.get("DAGU_KEY_FILE") or tls.get("keyFile") or tls.get("key_file")
    if not cert and not key:
        return None
    if not cert or not key:
        raise ConfigError("TLS needs both a certificate and a key: set tls.certFile and tls.keyFile "
                          "(or DAGU_CERT_FILE and DAGU_KEY_FILE)")
    paths = []
    for what, value in (("certificate", cert), ("key", key)):
        path = Path(str(value)).expanduser()
        if not path.is_absolute():
            path = settings.config_file.parent / path
        if not path.is_file():
            raise ConfigError(f"TLS {what} file {path} does not exist")
        paths.append(str(path))
    return paths[0], paths[1]


def build_server(settings: Settings, *, sock: socket.socket | None = None):
    """A configured `uvicorn.Server` for the app (not started)."""
    import uvicorn

    from web.app import create_app

    tls = tls_files(settings)
    config = uvicorn.Config(
        create_app(settings),
        host=settings.host,
        port=settings.port,
        ssl_certfile=tls[0] if tls else None,
        ssl_keyfile=tls[1] if tls else None,
        lifespan="off",
        log_config=None,  # dagu.cli configured logging already
        access_log=settings.debug,
        server_header=False,
        timeout_graceful_shutdown=5,
    )
    server = uvicorn.Server(config)
    server.dagu_sock = sock  # type: ignore[attr-defined]
    return server


def serve(settings: Settings, *, sock: socket.socket | None = None) -> int:
    """Serve until SIGTERM/SIGINT; returns the exit code (0 after a clean shutdown).

    Args:
        sock: an already bound listening socket (tests bind port 0 first); else bind host:port.
    """
    server = build_server(settings, sock=sock)
    scheme = "https" if server.config.ssl_certfile else "http"
    logger.info("server listening on %s://%s:%d%s", scheme, settings.host, settings.port, settings.base_path or "")
    server.run(sockets=[sock] if sock is not None else None)
    return 0 if server.started else 1
