"""Tokens, public paths, OIDC role mapping and the audit classifier: pure functions of web.auth."""

from __future__ import annotations

import base64
import time

import jwt
import orjson
import pytest

from dagu.config import OidcSettings
from web.audit import _classify
from web.auth.oidc import role_for
from web.auth.public import is_public, strip_base
from web.auth.tokens import (
    SESSION_AUDIENCE,
    TokenError,
    base58,
    check_secret,
    decode_jwt,
    hash_secret,
    issue_jwt,
    new_api_key,
    new_webhook_token,
)
from web.security import Role

SECRET = "a-test-secret-that-is-long-enough-for-hs256"


class _S:
    def __init__(self, metrics_public: bool = False) -> None:
        self.metrics_public = metrics_public


def test_base58_matches_the_bitcoin_alphabet_vectors():
    assert base58(b"") == ""
    assert base58(b"\x00\x00\x01") == "112"
    assert base58(b"hello world") == "StV1DL6CwTryKyV"


def test_api_keys_and_webhook_tokens_have_their_prefix_and_32_random_bytes():
    key, hook = new_api_key(), new_webhook_token()
    assert key.startswith("dagu_") and not key.startswith("dagu_wh_")
    assert hook.startswith("dagu_wh_")
    assert 40 <= len(key) - len("dagu_") <= 44  # base58 of 32 bytes
    assert len({new_api_key() for _ in range(20)}) == 20


def test_a_bcrypt_hash_checks_only_its_own_secret():
    hashed = hash_secret("correct horse")
    assert hashed.startswith("$2b$12$")
    assert check_secret("correct horse", hashed)
    assert not check_secret("correct horsE", hashed)
    assert not check_secret("x", "not-a-bcrypt-hash")


def test_a_login_token_round_trips_with_its_claims():
    token, exp = issue_jwt({"sub": "u1", "uid": "u1", "username": "ann", "role": "viewer"}, SECRET, 3600)
    claims = decode_jwt(token, SECRET)
    assert claims["sub"] == claims["uid"] == "u1" and claims["role"] == "viewer"
    assert claims["exp"] == exp and claims["exp"] - claims["iat"] == 3600


def test_an_expired_token_is_refused_as_expired():
    token, _ = issue_jwt({"sub": "u1"}, SECRET, 60, now=time.time() - 3600)
    with pytest.raises(TokenError, match="expired"):
        decode_jwt(token, SECRET)


def test_a_token_signed_with_another_secret_is_refused():
    token, _ = issue_jwt({"sub": "u1"}, "another-secret-that-is-also-long-enough", 60)
    with pytest.raises(TokenError, match="Signature"):
        decode_jwt(token, SECRET)


def test_an_unsigned_alg_none_token_is_refused():
    now = int(time.time())
    token = jwt.encode({"sub": "u1", "role": "admin", "iat": now, "exp": now + 60}, None, algorithm="none")
    with pytest.raises(TokenError):
        decode_jwt(token, SECRET)


def test_a_token_whose_payload_was_edited_is_refused():
    token, _ = issue_jwt({"sub": "u1", "role": "viewer"}, SECRET, 60)
    head, payload, sig = token.split(".")
    claims = orjson.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    claims["role"] = "admin"
    forged = base64.urlsafe_b64encode(orjson.dumps(claims)).rstrip(b"=").decode()
    with pytest.raises(TokenError):
        decode_jwt(f"{head}.{forged}.{sig}", SECRET)


@pytest.mark.parametrize("token", ["", "abc", "a.b.c", "eyJhbGciOiJIUzI1NiJ9..", "dagu_xyz"])
def test_malformed_tokens_are_refused(token):
    with pytest.raises(TokenError):
        decode_jwt(token, SECRET)


def test_a_session_token_is_not_a_login_token_and_back():
    session, _ = issue_jwt({"sub": "oidc:alice", "aud": SESSION_AUDIENCE}, SECRET, 60)
    login, _ = issue_jwt({"sub": "u1"}, SECRET, 60)
    with pytest.raises(TokenError):
        decode_jwt(session, SECRET)  # no audience expected: a session cookie is no bearer token
    with pytest.raises(TokenError):
        decode_jwt(login, SECRET, audience=SESSION_AUDIENCE)
    assert decode_jwt(session, SECRET, audience=SESSION_AUDIENCE)["sub"] == "oidc:alice"


def test_a_short_secret_still_signs_without_a_warning():
    # NOTE: filterwarnings=error turns PyJWT's InsecureKeyLengthWarning into a failure here.
    token, _ = issue_jwt({"sub": "u1"}, "short", 60)
    assert decode_jwt(token, "short")["sub"] == "u1"


@pytest.mark.parametrize(
    ("path", "public"),
    [
        ("/api/v2/health", True),
        ("/api/v1/health", True),
        ("/api/v2/auth/login", True),
        ("/api/v2/webhooks/etl", True),
        ("/api/v2/webhooks", False),
        ("/api/v2/auth/me", False),
        ("/api/v2/dags", False),
        ("/api/v2/metrics", False),
        ("/metrics", False),
        ("/oidc/login", True),
        ("/oidc-callback", True),
        ("/assets/app.js", True),
        ("/dags", False),
    ],
)
def test_public_paths(path, public):
    assert is_public(path, _S()) is public


def test_metrics_are_public_only_when_configured():
    assert is_public("/api/v2/metrics", _S(metrics_public=True))
    assert is_public("/metrics", _S(metrics_public=True))


def test_the_base_path_is_stripped_before_the_rule():
    assert strip_base("/dagu/api/v2/health", "/dagu") == "/api/v2/health"
    assert strip_base("/daguX/api", "/dagu") == "/daguX/api"
    assert strip_base("/dagu", "/dagu/") == "/"


def test_the_strongest_mapped_group_wins_and_others_get_the_default_role():
    oidc = OidcSettings(role_mapping={"ops": "operator", "admins": "admin", "devs": "developer"}, default_role="viewer")
    assert role_for({"groups": ["ops", "admins"]}, oidc) is Role.ADMIN
    assert role_for({"groups": ["devs", "ops"]}, oidc) is Role.DEVELOPER
    assert role_for({"groups": "ops"}, oidc) is Role.OPERATOR
    assert role_for({"groups": ["other"]}, oidc) is Role.VIEWER
    assert role_for({}, oidc) is Role.VIEWER


def test_default_role_none_refuses_unmapped_users():
    oidc = OidcSettings(groups_claim="roles", role_mapping={"admins": "admin"}, default_role="none")
    assert role_for({"groups": ["admins"]}, oidc) is None  # another claim name
    assert role_for({"roles": ["admins"]}, oidc) is Role.ADMIN


@pytest.mark.parametrize(
    ("method", "path", "expected"),
    [
        ("POST", "/api/v2/dags", ("dag", "", "create")),
        ("POST", "/api/v2/dags/etl/start", ("dag", "etl", "start")),
        ("DELETE", "/api/v2/dags/etl", ("dag", "etl", "delete")),
        ("PUT", "/api/v2/dags/etl/spec", ("dag", "etl", "update")),
        ("POST", "/api/v2/dags/etl/webhook", ("webhook", "etl", "create")),
        ("POST", "/api/v2/webhooks/etl", ("webhook", "etl", "trigger")),
        ("POST", "/api/v2/auth/login", ("user", "", "login")),
        ("PATCH", "/api/v2/users/u1", ("user", "u1", "update")),
        ("POST", "/api/v2/dag-runs/etl/r1/stop", ("dag_run", "etl", "stop")),
    ],
)
def test_audit_entries_name_the_resource_and_action(method, path, expected):
    assert _classify(method, path) == expected
