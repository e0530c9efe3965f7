"""Secrets and signed tokens: bcrypt hashes, `dagu_` API keys, `dagu_wh_` webhook tokens and
HS256 JWTs (builtin login tokens and OIDC session cookies).

This module holds no state and reads no config; callers pass the secret and the TTL.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import time

import bcrypt
import jwt

from dagu.resolve.outputs import (
    base58_encode as base58,  # API keys and webhook tokens use the same alphabet
)

__all__ = [
    "API_KEY_PREFIX",
    "WEBHOOK_TOKEN_PREFIX",
    "BCRYPT_COST",
    "TokenError",
    "base58",
    "new_api_key",
    "new_webhook_token",
    "hash_secret",
    "check_secret",
    "check_nothing",
    "same_text",
    "issue_jwt",
    "decode_jwt",
    "SESSION_AUDIENCE",
]

API_KEY_PREFIX = "dagu_"
WEBHOOK_TOKEN_PREFIX = "dagu_wh_"
BCRYPT_COST = 12  # Dagu's cost; about a quarter second per hash
SESSION_AUDIENCE = "dagu-oidc-session"  # marks our OIDC session JWTs apart from login tokens
# A real hash to compare against when the user does not exist, so a login for an
# unknown name costs as much as one with a wrong password (no user enumeration by timing).
_DUMMY_HASH = b"$2b$12$obRlBZFbpKqnyZpNNCgG1eWE66QDZZl3hT5i0kG4eW/8kxYctxdS."


class TokenError(Exception):
    """A bearer token or session cookie that we cannot accept; `str()` says why."""


def new_api_key() -> str:
    """`dagu_` + base58 of 32 random bytes."""
    return API_KEY_PREFIX + base58(os.urandom(32))


def new_webhook_token() -> str:
    """`dagu_wh_` + base58 of 32 random bytes."""
    return WEBHOOK_TOKEN_PREFIX + base58(os.urandom(32))


def hash_secret(secret: str) -> str:
    """bcrypt hash (cost 12) of a password, API key or webhook token."""
    return bcrypt.hashpw(secret.encode(), bcrypt.gensalt(BCRYPT_COST)).decode()


def check_secret(secret: str, hashed: str) -> bool:
    """True if `secret` matches the bcrypt `hashed`; False for a malformed hash too."""
    try:
        return bcrypt.checkpw(secret.encode(), hashed.encode())
    except ValueError:
        return False


def check_nothing(secret: str) -> None:
    """Spend the time of one bcrypt check; used when there is nothing to compare against."""
    bcrypt.checkpw(secret.encode(), _DUMMY_HASH)


def same_text(a: str, b: str) -> bool:
    """Constant-time string equality (static token, basic credentials)."""
    return hmac.compare_digest(a.encode(), b.encode())


def issue_jwt(claims: dict, secret: str, ttl_s: float, *, now: float | None = None) -> tuple[str, int]:
    """An HS256 JWT with `iat` and `exp` added; returns (token, exp as unix seconds)."""
    iat = int(time.time() if now is None else now)
    exp = iat + int(ttl_s)
    return jwt.encode({**claims, "iat": iat, "exp": exp}, _hmac_key(secret), algorithm="HS256"), exp


def decode_jwt(token: str, secret: str, *, audience: str | None = None) -> dict:
    """The claims of an HS256 JWT signed with `secret`.

    Only HS256 is accepted, so `alg: none` and algorithm-confusion tokens fail;
    `exp`, `iat` and `sub` must be present.

    Raises:
        TokenError: malformed, wrong signature, wrong audience or expired.
    """
    try:
        return jwt.decode(
            token,
            _hmac_key(secret),
            algorithms=["HS256"],
            audience=audience,
            options={"require": ["exp", "iat", "sub"]},
        )
    except jwt.ExpiredSignatureError:
        raise TokenError("Token has expired") from None
    except jwt.PyJWTError as exc:
        raise TokenError(f"Invalid token: {exc}") from None


def _hmac_key(secret: str) -> bytes:
    """The HS256 key: the secret itself when it has the 32 bytes RFC 7518 asks for, else a
    SHA-256 of it (PyJWT warns about short keys on every call; the derived key carries the
    same entropy). Only long secrets give tokens a Dagu server with that secret accepts."""
    raw = secret.encode()
    return raw if len(raw) >= 32 else hashlib.sha256(b"dagu-jwt-key:" + raw).digest()
