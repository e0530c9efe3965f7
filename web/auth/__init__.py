"""Authentication for the API and UI (stub until the auth work lands: every caller is admin).

Contract with `web.app`: `build(settings)` returns the middleware that sets
`request.state.identity`, routes mounted under each API base (`/api/v2`, `/api/v1`),
and routes mounted at the root of the base path (OIDC login and callback).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from starlette.middleware import Middleware
from starlette.types import ASGIApp, Receive, Scope, Send

from web.security import ANONYMOUS_ADMIN

__all__ = ["AuthParts", "build"]


@dataclass
class AuthParts:
    middleware: list[Middleware] = field(default_factory=list)
    api_routes: list[Any] = field(default_factory=list)  # mounted under /api/v2 and /api/v1
    root_routes: list[Any] = field(default_factory=list)  # mounted at the base path


class _Anonymous:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] in ("http", "websocket"):
            scope.setdefault("state", {})["identity"] = ANONYMOUS_ADMIN
        await self.app(scope, receive, send)


def build(settings: Any) -> AuthParts:
    return AuthParts(middleware=[Middleware(_Anonymous)])
