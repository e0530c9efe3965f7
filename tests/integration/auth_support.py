"""What the auth tests share: a temp home with a config, the app served by a real uvicorn,
an httpx client per caller, and a real OIDC provider (`oidc-provider-mock`) subprocess.

The app is `web.app`'s when that module exists; otherwise the smallest app that mounts
the auth parts the way `web.app` does (under `/api/v2` and `/api/v1`, OIDC at the root).
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import Any

import httpx
import yaml

from apiserver import serve_app
from dagu.config import Settings, load_settings

__all__ = ["make_settings", "make_app", "serve", "Provider", "oidc_provider", "write_dag"]


def make_settings(home: Path, config: dict[str, Any]) -> Settings:
    """Settings of a fresh home whose config.yaml is `config` (the process env is ignored)."""
    home.mkdir(parents=True, exist_ok=True)
    (home / "config.yaml").write_text(yaml.safe_dump(config))
    settings = load_settings(dagu_home=str(home), environ={})
    settings.ensure_dirs()
    return settings


def write_dag(settings: Settings, name: str, body: str = "steps:\n  - name: s\n    command: echo ${WEBHOOK_PAYLOAD}\n") -> Path:
    path = settings.dags_dir / f"{name}.yaml"
    path.write_text(textwrap.dedent(body))
    return path


def make_app(settings: Settings) -> Any:
    try:
        from web import app as web_app
    except ImportError:
        web_app = None
    factory = next((getattr(web_app, n) for n in ("create_app", "build_app", "make_app") if hasattr(web_app, n)), None)
    if factory is not None:
        return factory(settings)
    return _minimal_app(settings)


def _minimal_app(settings: Settings) -> Any:
    from starlette.applications import Starlette
    from starlette.routing import Mount

    from web import auth
    from web.errors import ApiError, error_response

    parts = auth.build(settings)

    async def on_api_error(request, exc: ApiError):
        return error_response(exc.status, exc.code, exc.message, exc.headers)

    app = Starlette(
        routes=[Mount("/api/v2", routes=parts.api_routes), Mount("/api/v1", routes=parts.api_routes), *parts.root_routes],
        middleware=parts.middleware,
        exception_handlers={ApiError: on_api_error},
    )
    app.state.settings = settings
    return app


def serve(app: Any) -> AbstractContextManager[str]:
    """Serve `app` (with its lifespan) on a free 127.0.0.1 port in a thread; yields its base URL."""
    return serve_app(app, lifespan="on")


class Provider:
    """A running oidc-provider-mock: its issuer URL and a way to set a user's claims."""

    def __init__(self, issuer: str) -> None:
        self.issuer = issuer

    def set_user(self, sub: str, claims: dict[str, Any]) -> None:
        resp = httpx.put(f"{self.issuer}/users/{sub}", json=claims, timeout=10)
        assert resp.status_code == 204, resp.text


_LAUNCH = """
import os, sys, warnings
warnings.simplefilter("ignore")
os.environ["AUTHLIB_INSECURE_TRANSPORT"] = "1"
import uvicorn
from oidc_provider_mock import app
uvicorn.run(app(require_nonce=True), interface="wsgi", fd=int(sys.argv[1]), log_level="warning")
"""


@contextmanager
def oidc_provider() -> Iterator[Provider]:
    """A private oidc-provider-mock on a socket we bound, so no port race; skips if it cannot start."""
    import pytest

    if shutil.which("oidc-provider-mock") is None:
        pytest.skip("oidc-provider-mock is not installed (pip install 'oidc-provider-mock<0.4')")
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    sock.listen(64)
    issuer = f"http://127.0.0.1:{sock.getsockname()[1]}"
    proc = subprocess.Popen(
        [sys.executable, "-c", _LAUNCH, str(sock.fileno())],
        pass_fds=[sock.fileno()], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
        env={k: v for k, v in os.environ.items() if not k.startswith("DAGU_")},
    )
    sock.close()  # the child has its own copy
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(f"{issuer}/.well-known/openid-configuration", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                err = proc.stderr.read().decode(errors="replace")[-2000:] if proc.poll() is not None else ""
                pytest.skip(f"oidc-provider-mock did not start: {err or 'no answer within 30 s'}")
            time.sleep(0.05)
        yield Provider(issuer)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        proc.stderr.close()
