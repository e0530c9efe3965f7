"""The ASGI middleware that puts the caller's `Identity` on `scope["state"]["identity"]`
(so `request.state.identity`) or answers 401 itself.

Public paths (`web.auth.public`) pass without credentials; credentials sent to them are
still read, and wrong ones are ignored rather than refused. A browser asking for a
page without a session in OIDC mode is sent to the OIDC login instead of a 401.
"""

from __future__ import annotations

from urllib.parse import quote

from starlette.datastructures import Headers
from starlette.requests import cookie_parser
from starlette.responses import RedirectResponse
from starlette.types import ASGIApp, Receive, Scope, Send

from web.auth.authenticator import SESSION_COOKIE, AuthFailure, Authenticator
from web.auth.public import api_subpath, is_public, strip_base
from web.errors import error_response

__all__ = ["AuthMiddleware"]


class AuthMiddleware:
    """Authenticate every HTTP and WebSocket request before the app sees it."""

    def __init__(self, app: ASGIApp, authenticator: Authenticator) -> None:
        self.app = app
        self.authenticator = authenticator
        self.base_path = authenticator.settings.base_path

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        path = strip_base(scope["path"], self.base_path)
        public = is_public(path, self.authenticator.settings) or scope.get("method") == "OPTIONS"
        headers = Headers(scope=scope)
        session = cookie_parser(headers.get("cookie", "")).get(SESSION_COOKIE)
        try:
            identity = await self.authenticator.identify(headers.get("authorization"), session)
        except AuthFailure as failure:
            # An expired session on a page sends the browser to sign in again, not to a JSON 401.
            if not public and not self._wants_login_page(scope, path, headers):
                await self._refuse(scope, receive, send, failure.code, failure.message, failure.scheme)
                return
            identity = None
        if identity is None and not public:
            if self._wants_login_page(scope, path, headers):
                login = "/oidc/login" if self.authenticator.auth.mode == "oidc" else "/login"  # builtin: the UI's sign-in page
                target = f"{self.base_path}{login}?next={quote(self.base_path + path, safe='/')}"
                await RedirectResponse(target, status_code=302)(scope, receive, send)
                return
            await self._refuse(scope, receive, send, "unauthorized", "Authentication required", self.authenticator.challenge)
            return
        if identity is not None:
            scope.setdefault("state", {})["identity"] = identity
        await self.app(scope, receive, send)

    def _wants_login_page(self, scope: Scope, path: str, headers: Headers) -> bool:
        return (
            self.authenticator.auth.mode in ("oidc", "builtin")
            and scope["type"] == "http"
            and scope["method"] == "GET"
            and api_subpath(path) is None
            and "text/html" in headers.get("accept", "")
        )

    @staticmethod
    async def _refuse(scope: Scope, receive: Receive, send: Send, code: str, message: str, scheme: str) -> None:
        if scope["type"] == "websocket":
            await send({"type": "websocket.close", "code": 4401, "reason": message})
            return
        challenge = f'{scheme} realm="restricted"'
        await error_response(401, code, message, {"WWW-Authenticate": challenge})(scope, receive, send)
