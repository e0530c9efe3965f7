"""OIDC login (authorization-code flow with state, nonce and PKCE) and the session cookie.

`GET <base>/oidc/login` sends the browser to the provider; `GET <base>/oidc-callback`
exchanges the code, verifies the ID token against the provider's JWKS (RS256: issuer,
audience, expiry, nonce), maps its claims to a role, and sets the `dagu_session`
cookie, a JWT we sign that the auth middleware accepts on later requests. Nothing is
stored server side.
"""

from __future__ import annotations

import base64
import hashlib
import logging
import secrets
import time
from typing import Any
from urllib.parse import urlencode

import httpx
import jwt
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from dagu.config import OidcSettings, Settings
from web.auth.authenticator import SESSION_COOKIE
from web.auth.tokens import SESSION_AUDIENCE, issue_jwt, same_text
from web.errors import ApiError
from web.security import ROLE_PERMISSIONS, Role

__all__ = ["OidcClient", "oidc_routes", "role_for", "CALLBACK_PATH", "LOGIN_PATH"]

logger = logging.getLogger(__name__)

LOGIN_PATH = "/oidc/login"
CALLBACK_PATH = "/oidc-callback"
LOGOUT_PATH = "/oidc/logout"
_FLOW_COOKIE_AGE_S = 120  # state, nonce and verifier live for one login round trip
_CACHE_S = 300.0  # discovery document and JWKS
_CLOCK_SKEW_S = 30
_FLOW_COOKIES = ("dagu_oidc_state", "dagu_oidc_nonce", "dagu_oidc_verifier", "dagu_oidc_next")


def role_for(claims: dict[str, Any], oidc: OidcSettings) -> Role | None:
    """The strongest role any of the user's groups maps to, else the default role.

    None means the user may not log in (no mapping matched and `defaultRole` is `none`).
    """
    groups = claims.get(oidc.groups_claim)
    if isinstance(groups, str):
        groups = [groups]
    matched = [Role(oidc.role_mapping[g]) for g in groups or () if isinstance(g, str) and g in oidc.role_mapping]
    if matched:
        return max(matched, key=lambda r: len(ROLE_PERMISSIONS[r]))
    if oidc.default_role in ("", "none"):
        return None
    return Role(oidc.default_role)


class OidcClient:
    """Talks to one provider: discovery, code exchange, ID-token verification."""

    def __init__(self, oidc: OidcSettings) -> None:
        self.oidc = oidc
        self._discovery: tuple[float, dict[str, Any]] | None = None
        self._jwks: tuple[float, dict[str, Any]] | None = None

    async def discovery(self) -> dict[str, Any]:
        if self._discovery is None or time.monotonic() - self._discovery[0] > _CACHE_S:
            doc = await self._get_json(f"{self.oidc.issuer}/.well-known/openid-configuration")
            if doc.get("issuer", "").rstrip("/") != self.oidc.issuer:
                raise ApiError(502, "bad_gateway", f"OIDC discovery names issuer {doc.get('issuer')!r}, configured {self.oidc.issuer!r}")
            self._discovery = (time.monotonic(), doc)
        return self._discovery[1]

    async def exchange(self, code: str, redirect_uri: str, verifier: str) -> dict[str, Any]:
        doc = await self.discovery()
        data = {"grant_type": "authorization_code", "code": code, "redirect_uri": redirect_uri, "code_verifier": verifier}
        async with httpx.AsyncClient(timeout=10.0) as client:
            try:
                resp = await client.post(doc["token_endpoint"], data=data, auth=(self.oidc.client_id, self.oidc.client_secret))
            except httpx.HTTPError as exc:
                raise ApiError(502, "bad_gateway", f"OIDC token endpoint unreachable: {exc}") from None
        if resp.status_code != 200:
            raise ApiError(401, "unauthorized", f"OIDC provider refused the code: {resp.status_code} {resp.text[:200]}")
        return resp.json()

    async def verify_id_token(self, id_token: str, nonce: str) -> dict[str, Any]:
        """The claims of a valid ID token for us; 401 otherwise."""
        try:
            header = jwt.get_unverified_header(id_token)
        except jwt.PyJWTError as exc:
            raise ApiError.unauthorized(f"ID token is malformed: {exc}") from None
        key = await self._signing_key(header.get("kid"))
        try:
            claims = jwt.decode(
                id_token,
                key,
                algorithms=["RS256"],
                audience=self.oidc.client_id,
                issuer=self.oidc.issuer,
                leeway=_CLOCK_SKEW_S,
                options={"require": ["exp", "iat", "iss", "aud", "sub"]},
            )
        except jwt.PyJWTError as exc:
            raise ApiError.unauthorized(f"ID token rejected: {exc}") from None
        if not nonce or not same_text(str(claims.get("nonce", "")), nonce):
            raise ApiError.unauthorized("ID token nonce does not match this login")
        return claims

    async def _signing_key(self, kid: str | None) -> Any:
        for attempt in range(2):  # a key rotation: refetch the JWKS once
            keys = [k for k in (await self._keyset(refresh=attempt > 0)).get("keys", []) if k.get("use", "sig") == "sig"]
            # The mock provider signs without `kid`: then the single key is the one.
            chosen = [k for k in keys if k.get("kid") == kid] if kid else keys[:1] if len(keys) == 1 else []
            if chosen:
                return jwt.PyJWK(chosen[0], algorithm="RS256").key
        raise ApiError.unauthorized(f"no JWKS key of the provider matches the ID token (kid={kid!r})")

    async def _keyset(self, refresh: bool) -> dict[str, Any]:
        if refresh or self._jwks is None or time.monotonic() - self._jwks[0] > _CACHE_S:
            doc = await self.discovery()
            self._jwks = (time.monotonic(), await self._get_json(doc["jwks_uri"]))
        return self._jwks[1]

    @staticmethod
    async def _get_json(url: str) -> dict[str, Any]:
        async with httpx.AsyncClient(timeout=10.0) as client:
            try:
                resp = await client.get(url)
                resp.raise_for_status()
                return resp.json()
            except (httpx.HTTPError, ValueError) as exc:
                raise ApiError(502, "bad_gateway", f"OIDC provider at {url} failed: {exc}") from None


def oidc_routes(settings: Settings, session_secret: str) -> list[Route]:
    """Login, callback and logout, mounted at the base path."""
    client = OidcClient(settings.auth.oidc)
    base = settings.base_path.rstrip("/")
    oidc = settings.auth.oidc

    def redirect_uri(request: Request) -> str:
        root = oidc.client_url or str(request.base_url).rstrip("/") + base
        return root + CALLBACK_PATH

    async def login(request: Request) -> Response:
        doc = await client.discovery()
        state, nonce, verifier = (secrets.token_urlsafe(32) for _ in range(3))
        challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
        query = urlencode({
            "response_type": "code", "client_id": oidc.client_id, "redirect_uri": redirect_uri(request),
            "scope": " ".join(oidc.scopes), "state": state, "nonce": nonce,
            "code_challenge": challenge, "code_challenge_method": "S256",
        })
        resp = RedirectResponse(f"{doc['authorization_endpoint']}?{query}", status_code=302)
        next_path = _safe_next(request.query_params.get("next"), base)
        for name, value in zip(_FLOW_COOKIES, (state, nonce, verifier, next_path)):
            _set_cookie(resp, request, name, value, _FLOW_COOKIE_AGE_S, base)
        return resp

    async def callback(request: Request) -> Response:
        q = request.query_params
        if q.get("error"):
            raise ApiError.unauthorized(f"OIDC login failed: {q['error']} {q.get('error_description', '')}".strip())
        state = request.cookies.get("dagu_oidc_state", "")
        if not state or not same_text(q.get("state", ""), state):
            raise ApiError.bad_request("OIDC state does not match this browser's login; start again at " + base + LOGIN_PATH)
        if not q.get("code"):
            raise ApiError.bad_request("OIDC callback without a code")
        tokens = await client.exchange(q["code"], redirect_uri(request), request.cookies.get("dagu_oidc_verifier", ""))
        if not isinstance(tokens.get("id_token"), str):
            raise ApiError(502, "bad_gateway", "OIDC token response has no id_token")
        claims = await client.verify_id_token(tokens["id_token"], request.cookies.get("dagu_oidc_nonce", ""))
        email = str(claims.get("email") or "")
        if oidc.whitelist and email.lower() not in {w.lower() for w in oidc.whitelist}:
            raise ApiError.forbidden(f"{email or claims['sub']} is not on the OIDC whitelist")
        role = role_for(claims, oidc)
        if role is None:
            raise ApiError.forbidden("none of your groups is mapped to a role")
        username = str(claims.get("preferred_username") or email or claims["sub"])
        session, _ = issue_jwt(
            {"sub": f"oidc:{claims['sub']}", "username": username, "role": role.value, "aud": SESSION_AUDIENCE},
            session_secret, settings.auth.token_ttl_s,
        )
        request.state.audit = {"action": "login", "username": username}
        logger.info("OIDC login: %s as %s", username, role.value)
        resp = RedirectResponse(request.cookies.get("dagu_oidc_next") or base + "/", status_code=302)
        _set_cookie(resp, request, SESSION_COOKIE, session, int(settings.auth.token_ttl_s), base)
        for name in _FLOW_COOKIES:
            resp.delete_cookie(name, path=base or "/")
        return resp

    async def logout(request: Request) -> Response:
        resp = RedirectResponse(base + "/", status_code=302)
        resp.delete_cookie(SESSION_COOKIE, path=base or "/")
        return resp

    return [
        Route(LOGIN_PATH, login, methods=["GET"]),
        Route("/oidc-login", login, methods=["GET"]),  # the spelling the UI's login page links to
        Route(CALLBACK_PATH, callback, methods=["GET"]),
        Route(LOGOUT_PATH, logout, methods=["GET", "POST"]),
    ]


def _safe_next(value: str | None, base: str) -> str:
    """Only a local absolute path may be a post-login target (no open redirect)."""
    if value and value.startswith("/") and not value.startswith("//") and "\\" not in value:
        return value
    return base + "/"


def _set_cookie(resp: Response, request: Request, name: str, value: str, max_age: int, base: str) -> None:
    resp.set_cookie(
        name, value, max_age=max_age, path=base or "/", httponly=True,
        secure=request.url.scheme == "https", samesite="lax",
    )
