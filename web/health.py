"""A minimal HTTP service for the `dagu: server` process until the full API lands:
`GET /api/v2/health` (and `/api/v1/health`) answer like Dagu; everything else is a JSON 404.

Standard library only, so `start-all` works with the base install.
"""

from __future__ import annotations

import logging
import signal
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import orjson

__all__ = ["serve"]

logger = logging.getLogger(__name__)


def serve(host: str = "127.0.0.1", port: int = 8080) -> int:
    """Serve until SIGTERM/SIGINT; returns the process exit code."""
    from dagu import __version__

    started = time.monotonic()

    class Handler(BaseHTTPRequestHandler):
        server_version = f"dagu-py/{__version__}"

        def do_GET(self) -> None:  # noqa: N802 (the stdlib's name)
            path = self.path.split("?", 1)[0].rstrip("/")
            if path in ("/api/v2/health", "/api/v1/health", "/health"):
                body = {
                    "status": "healthy",
                    "timestamp": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                    "uptime": int(time.monotonic() - started),
                    "version": __version__,
                }
                self._send(200, body)
            else:
                self._send(404, {"code": "not_found", "message": f"{path or '/'} is not served yet (only /api/v2/health)"})

        def _send(self, code: int, body: dict) -> None:
            data = orjson.dumps(body)
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, format: str, *args) -> None:  # noqa: A002 (stdlib signature)
            logger.debug("%s %s", self.address_string(), format % args)

    httpd = ThreadingHTTPServer((host, port), Handler)
    httpd.daemon_threads = True
    stop = threading.Event()

    def on_signal(signum, frame) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    thread = threading.Thread(target=httpd.serve_forever, name="http", daemon=True)
    thread.start()
    logger.info("server listening on http://%s:%d (health only until the API lands)", host, httpd.server_address[1])
    stop.wait()
    httpd.shutdown()
    httpd.server_close()
    return 0
