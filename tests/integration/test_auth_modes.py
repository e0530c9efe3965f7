"""Modes none and basic, the static token, public paths and metrics, against a real uvicorn."""

from __future__ import annotations

import httpx
import pytest
from auth_support import make_app, make_settings, serve

from dagu.config import ConfigError
from web.auth import build


@pytest.fixture
def none_mode(tmp_path):
    with serve(make_app(make_settings(tmp_path, {}))) as url:
        yield url


def test_mode_none_makes_everyone_an_admin_and_ignores_credentials(none_mode):
    for headers in ({}, {"Authorization": "Bearer whatever"}, {"Authorization": "Basic Zm9vOmJhcg=="}):
        assert httpx.get(f"{none_mode}/api/v2/dags", headers=headers).status_code == 200
        assert httpx.get(f"{none_mode}/api/v2/audit", headers=headers).status_code == 200


def test_mode_none_has_no_users_or_logins(none_mode):
    login = httpx.post(f"{none_mode}/api/v2/auth/login", json={"username": "a", "password": "b"})
    assert login.status_code == 401 and login.json() == {"code": "unauthorized", "message": "Authentication is not enabled"}
    users = httpx.get(f"{none_mode}/api/v2/users")
    assert users.status_code == 401 and users.json()["message"] == "User management is not enabled"
    keys = httpx.get(f"{none_mode}/api/v2/api-keys")
    assert keys.status_code == 403 and keys.json()["message"] == "API key management is not available"
    assert httpx.get(f"{none_mode}/api/v2/auth/me").status_code == 401


@pytest.fixture(params=[{"auth": {"basic": {"username": "ops", "password": "s3cret-pw"}, "token": {"value": "static-tok"}}},
                        {"auth": {"mode": "basic", "basic": {"username": "ops", "password": "s3cret-pw"}, "token": {"value": "static-tok"}}}],
                ids=["none+credentials", "basic"])
def basic_mode(request, tmp_path):
    with serve(make_app(make_settings(tmp_path, request.param))) as url:
        yield url


def test_basic_credentials_are_required_once_configured(basic_mode):
    resp = httpx.get(f"{basic_mode}/api/v2/dags")
    assert resp.status_code == 401 and resp.headers["www-authenticate"] == 'Basic realm="restricted"'
    assert resp.json() == {"code": "unauthorized", "message": "Authentication required"}
    wrong = httpx.get(f"{basic_mode}/api/v2/dags", auth=("ops", "wrong"))
    assert wrong.status_code == 401 and wrong.headers["www-authenticate"] == 'Basic realm="restricted"'
    assert httpx.get(f"{basic_mode}/api/v2/dags", auth=("ops", "s3cret-pw")).status_code == 200
    me = httpx.get(f"{basic_mode}/api/v2/auth/me", auth=("ops", "s3cret-pw")).json()["user"]
    assert (me["username"], me["role"], me["kind"]) == ("ops", "admin", "basic")


def test_the_static_token_acts_as_admin(basic_mode):
    ok = httpx.get(f"{basic_mode}/api/v2/audit", headers={"Authorization": "Bearer static-tok"})
    assert ok.status_code == 200
    bad = httpx.get(f"{basic_mode}/api/v2/dags", headers={"Authorization": "Bearer static-tokX"})
    assert bad.status_code == 401 and bad.json()["code"] == "auth.token_invalid"


def test_public_paths_need_nothing_and_pages_ask_the_browser_for_basic_credentials(basic_mode):
    assert httpx.get(f"{basic_mode}/api/v2/health").status_code == 200
    assert httpx.get(f"{basic_mode}/api/v1/health").status_code == 200
    assert httpx.get(f"{basic_mode}/api/v2/health", auth=("ops", "wrong")).status_code == 200  # ignored on public paths
    page = httpx.get(f"{basic_mode}/dags", headers={"Accept": "text/html"})
    assert page.status_code == 401 and page.headers["www-authenticate"].startswith("Basic")
    assert httpx.get(f"{basic_mode}/api/v2/metrics").status_code == 401


def test_public_metrics_need_no_credentials(tmp_path):
    config = {"metrics": "public", "auth": {"basic": {"username": "ops", "password": "s3cret-pw"}}}
    with serve(make_app(make_settings(tmp_path, config))) as url:
        assert httpx.get(f"{url}/api/v2/metrics").status_code == 200
        assert httpx.get(f"{url}/api/v2/dags").status_code == 401


def test_mutations_in_mode_none_are_audited_as_anonymous(none_mode, tmp_path):
    httpx.post(f"{none_mode}/api/v2/dags/no-such-dag/start", json={})
    entries = httpx.get(f"{none_mode}/api/v2/audit").json()["entries"]
    assert entries[0]["action"] == "start" and entries[0]["resource_id"] == "no-such-dag"
    assert (entries[0]["username"], entries[0]["credential_type"], entries[0]["status"]) == ("anonymous", "anonymous", 404)


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ({"auth": {"mode": "basic"}}, "auth.basic.username/password are not set"),
        ({"auth": {"mode": "oidc", "oidc": {"clientId": "c"}}}, "auth.oidc.clientSecret, auth.oidc.issuer not set"),
        ({"auth": {"mode": "oidc", "oidc": {"clientId": "c", "clientSecret": "s", "issuer": "http://i", "roleMapping": {"g": "root"}}}},
         "maps to unknown role 'root'"),
        ({"auth": {"mode": "builtin", "builtin": {"admin": {"password": "short"}, "token": {"secret": "x"}}}},
         "auth.builtin.admin.password needs at least 8 characters"),
    ],
)
def test_unworkable_auth_config_fails_at_startup(tmp_path, config, message):
    with pytest.raises(ConfigError, match=message.replace(".", r"\.").replace("/", "/")):
        build(make_settings(tmp_path, config))
