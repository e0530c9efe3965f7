"""Turning the credentials on a request into an `Identity`, in Dagu's order (service.md 6.1):
builtin JWT, API key, static token, HTTP Basic, then the session cookie.

Knows the auth settings and the record stores; knows nothing of ASGI (the middleware
hands it header values). Slow checks (bcrypt) run in a worker thread.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import logging
import time

from starlette.concurrency import run_in_threadpool

from dagu.config import Settings
from web.auth.store import ApiKey, Stores, now_text
from web.auth.tokens import (
    API_KEY_PREFIX,
    SESSION_AUDIENCE,
    WEBHOOK_TOKEN_PREFIX,
    TokenError,
    check_secret,
    decode_jwt,
    same_text,
)
from web.security import ANONYMOUS_ADMIN, Identity, Role

__all__ = ["AuthFailure", "Authenticator", "SESSION_COOKIE"]

logger = logging.getLogger(__name__)

SESSION_COOKIE = "dagu_session"  # an OIDC session JWT (oidc mode) or a login JWT (builtin mode)
_LAST_USED_EVERY_S = 60.0  # rewrite an API key's last_used_at at most this often


class AuthFailure(Exception):
    """Credentials were sent but cannot be accepted: a 401 with this message."""

    def __init__(self, code: str, message: str, scheme: str = "Bearer") -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.scheme = scheme  # the WWW-Authenticate challenge to send back


class Authenticator:
    """Identifies callers for one server (one settings, one data dir)."""

    def __init__(self, settings: Settings, stores: Stores, session_secret: str) -> None:
        self.settings = settings
        self.auth = settings.auth
        self.stores = stores
        self.session_secret = session_secret
        # sha256(key) -> (key id, key hash it was verified against); saves a bcrypt per request.
        self._verified_keys: dict[bytes, tuple[str, str]] = {}

    @property
    def is_required(self) -> bool:
        """False only in mode `none` without basic credentials or a static token."""
        return self.auth.mode != "none" or self.has_basic or bool(self.auth.token)

    @property
    def has_basic(self) -> bool:
        return bool(self.auth.basic_username and self.auth.basic_password)

    @property
    def challenge(self) -> str:
        """The scheme to name in WWW-Authenticate when no credentials came."""
        return "Basic" if self.has_basic and self.auth.mode in ("none", "basic") else "Bearer"

    async def identify(self, authorization: str | None, session: str | None) -> Identity | None:
        """The caller's identity; None when no credentials came and none are needed or given.

        Raises:
            AuthFailure: credentials were sent and are wrong, expired or forged.
        """
        if not self.is_required:
            return ANONYMOUS_ADMIN  # mode none, nothing configured: headers are ignored
        if authorization:
            scheme, _, value = authorization.strip().partition(" ")
            value = value.strip()
            if scheme.lower() == "bearer" and value:
                return await self._bearer(value)
            if scheme.lower() == "basic" and value:
                return self._basic(value)
            raise AuthFailure("unauthorized", "Malformed Authorization header", self.challenge)
        if session:
            return self._session(session)
        return None

    def user_identity(self, claims: dict) -> Identity:
        """The identity of a builtin login JWT: the user must still exist; their stored role wins."""
        user = self.stores.users.get(str(claims.get("uid") or claims.get("sub")))
        if user is None:
            raise AuthFailure("auth.token_invalid", "User no longer exists")
        try:
            role = Role(user.role)
        except ValueError:
            raise AuthFailure("auth.token_invalid", f"User {user.username} has an unknown role {user.role!r}") from None
        return Identity(id=user.id, username=user.username, role=role, kind="user")

    # -- the credential kinds -------------------------------------------------------

    async def _bearer(self, token: str) -> Identity:
        if self.auth.token and same_text(token, self.auth.token):
            return Identity(id="token", username="token", role=Role.ADMIN, kind="token")
        if token.startswith(WEBHOOK_TOKEN_PREFIX):
            raise AuthFailure("auth.token_invalid", "Webhook tokens only trigger webhooks")
        if token.startswith(API_KEY_PREFIX) and self.auth.mode == "builtin":
            return await self._api_key(token)
        if self.auth.mode == "builtin":
            try:
                claims = decode_jwt(token, self.auth.token_secret)
            except TokenError as exc:
                raise AuthFailure("auth.token_invalid", str(exc)) from None
            return self.user_identity(claims)
        raise AuthFailure("auth.token_invalid", "Invalid token")

    async def _api_key(self, key: str) -> Identity:
        digest = hashlib.sha256(key.encode()).digest()
        record = self._cached_key(digest)
        if record is None:
            record = await run_in_threadpool(self._find_key, key)
            if record is None:
                raise AuthFailure("auth.token_invalid", "Invalid API key")
            self._verified_keys[digest] = (record.id, record.key_hash)
        self._touch_key(record)
        return Identity(id=f"apikey:{record.id}", username=f"apikey:{record.name}", role=Role(record.role), kind="apikey")

    def _cached_key(self, digest: bytes) -> ApiKey | None:
        """The key a previous request verified, if it still exists with the same hash."""
        known = self._verified_keys.get(digest)
        if known is None:
            return None
        record = self.stores.api_keys.get(known[0])
        if record is not None and record.key_hash == known[1]:
            return record
        self._verified_keys.pop(digest, None)  # deleted since
        return None

    def _find_key(self, key: str) -> ApiKey | None:
        candidates = [k for k in self.stores.api_keys.all() if key.startswith(k.key_prefix)]
        return next((k for k in candidates if check_secret(key, k.key_hash)), None)

    def _touch_key(self, record: ApiKey) -> None:
        if record.last_used_at and time.time() - _parse_ts(record.last_used_at) < _LAST_USED_EVERY_S:
            return
        with self.stores.api_keys.lock:
            current = self.stores.api_keys.get(record.id)
            if current is not None:
                self.stores.api_keys.update(current, last_used_at=now_text())

    def _basic(self, value: str) -> Identity:
        try:
            user, sep, password = base64.b64decode(value, validate=True).decode().partition(":")
        except (binascii.Error, UnicodeDecodeError):
            user, sep, password = "", "", ""
        ok = (
            self.has_basic
            and sep == ":"
            and same_text(user, self.auth.basic_username)
            & same_text(password, self.auth.basic_password)  # `&`: compare both, always
        )
        if not ok:
            raise AuthFailure("unauthorized", "Invalid username or password", "Basic")
        return Identity(id=f"basic:{user}", username=user, role=Role.ADMIN, kind="basic")

    def _session(self, token: str) -> Identity | None:
        if self.auth.mode == "oidc":
            try:
                claims = decode_jwt(token, self.session_secret, audience=SESSION_AUDIENCE)
                return Identity(id=str(claims["sub"]), username=str(claims.get("username", "")), role=Role(claims["role"]), kind="oidc")
            except (TokenError, KeyError, ValueError) as exc:
                raise AuthFailure("auth.token_invalid", f"Invalid session: {exc}") from None
        if self.auth.mode == "builtin":
            try:
                return self.user_identity(decode_jwt(token, self.auth.token_secret))
            except TokenError as exc:
                raise AuthFailure("auth.token_invalid", str(exc)) from None
        return None


def _parse_ts(text: str) -> float:
    from dagu.store import parse_time

    moment = parse_time(text)
    return moment.timestamp() if moment else 0.0
