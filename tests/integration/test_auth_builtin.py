"""Builtin mode against a real uvicorn: login, tokens (expired, forged, malformed), users,
API keys, the first admin, and the audit log."""

from __future__ import annotations

import base64
import time

import httpx
import jwt
import orjson
import pytest
from auth_support import make_app, make_settings, serve

from dagu.config import ConfigError
from web.auth import build
from web.auth.tokens import issue_jwt

SECRET = "builtin-test-secret-0123456789abcdef"
CONFIG = {"auth": {"mode": "builtin", "builtin": {"admin": {"username": "admin", "password": "adminpass123"}, "token": {"secret": SECRET, "ttl": "1h"}}}}


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    settings = make_settings(tmp_path_factory.mktemp("home"), CONFIG)
    with serve(make_app(settings)) as url, httpx.Client(base_url=url + "/api/v2", timeout=30) as client:
        token = client.post("/auth/login", json={"username": "admin", "password": "adminpass123"}).json()["token"]
        client.headers["Authorization"] = f"Bearer {token}"  # the admin's client
        yield settings, url, client


@pytest.fixture
def anon(server):
    _, url, _ = server
    with httpx.Client(base_url=url + "/api/v2", timeout=30) as client:
        yield client


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def _user(client, username: str, role: str, password: str = "password123") -> tuple[str, str]:
    """(user id, login token) of a new user."""
    resp = client.post("/users", json={"username": username, "password": password, "role": role})
    assert resp.status_code == 201, resp.text
    login = client.post("/auth/login", json={"username": username, "password": password}, headers={"Authorization": ""})
    assert login.status_code == 200, login.text
    return resp.json()["user"]["id"], login.json()["token"]


def _assert_401(resp: httpx.Response, message_part: str = "") -> None:
    assert resp.status_code == 401, resp.text
    body = resp.json()
    assert set(body) == {"code", "message"} and message_part in body["message"]
    assert resp.headers["www-authenticate"] == 'Bearer realm="restricted"'


# -- login --------------------------------------------------------------------------


def test_login_returns_a_jwt_with_dagus_claims(server, anon):
    resp = anon.post("/auth/login", json={"username": "admin", "password": "adminpass123"})
    assert resp.status_code == 200
    body = resp.json()
    claims = jwt.decode(body["token"], SECRET, algorithms=["HS256"])
    assert claims["sub"] == claims["uid"] == body["user"]["id"]
    assert (claims["username"], claims["role"]) == ("admin", "admin")
    assert claims["exp"] - claims["iat"] == 3600
    assert body["expiresAt"].endswith("Z") and set(body["user"]) == {"id", "username", "role", "createdAt", "updatedAt"}


@pytest.mark.parametrize(("username", "password"), [("admin", "wrong-password"), ("nobody", "adminpass123")])
def test_login_with_bad_credentials_is_401(anon, username, password):
    resp = anon.post("/auth/login", json={"username": username, "password": password})
    assert resp.status_code == 401
    assert resp.json() == {"code": "unauthorized", "message": "Invalid username or password"}


def test_me_answers_with_the_logged_in_user(server):
    _, _, admin = server
    assert admin.get("/auth/me").json()["user"]["username"] == "admin"


# -- tokens that must not work ------------------------------------------------------


def test_no_credentials_is_401_with_a_challenge(anon):
    _assert_401(anon.get("/dags"), "Authentication required")
    _assert_401(anon.get("/auth/me"))


def test_an_expired_token_is_401(server, anon):
    _, _, admin = server
    me = admin.get("/auth/me").json()["user"]
    token, _ = issue_jwt({"sub": me["id"], "uid": me["id"], "username": "admin", "role": "admin"}, SECRET, 60, now=time.time() - 7200)
    _assert_401(anon.get("/auth/me", headers=_bearer(token)), "expired")


def test_a_token_signed_with_another_secret_is_401(server, anon):
    _, _, admin = server
    me = admin.get("/auth/me").json()["user"]
    token, _ = issue_jwt({"sub": me["id"], "uid": me["id"], "role": "admin"}, "not-the-server-secret-but-long-enough", 600)
    _assert_401(anon.get("/users", headers=_bearer(token)), "Signature")


def test_an_alg_none_token_is_401(server, anon):
    _, _, admin = server
    me = admin.get("/auth/me").json()["user"]
    now = int(time.time())
    token = jwt.encode({"sub": me["id"], "uid": me["id"], "role": "admin", "iat": now, "exp": now + 600}, None, algorithm="none")
    _assert_401(anon.get("/users", headers=_bearer(token)))


def test_a_tampered_token_is_401(server, anon):
    _, _, admin = server
    _, viewer_token = _user(admin, "tamper-viewer", "viewer")
    head, payload, sig = viewer_token.split(".")
    claims = orjson.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    claims["role"] = "admin"
    forged = base64.urlsafe_b64encode(orjson.dumps(claims)).rstrip(b"=").decode()
    _assert_401(anon.get("/users", headers=_bearer(f"{head}.{forged}.{sig}")))
    assert anon.get("/users", headers=_bearer(viewer_token)).status_code == 403  # the genuine one is just a viewer


@pytest.mark.parametrize("header", ["Bearer", "Bearer abc", "Bearer a.b.c", "Token xyz", "Basic !!!", "Bearer dagu_wh_notforapi"])
def test_malformed_credentials_are_401(anon, header):
    resp = anon.get("/dags", headers={"Authorization": header})
    assert resp.status_code == 401, resp.text
    assert set(resp.json()) == {"code", "message"} and "www-authenticate" in resp.headers


def test_a_deleted_users_token_stops_working(server, anon):
    _, _, admin = server
    user_id, token = _user(admin, "soon-gone", "operator")
    assert anon.get("/auth/me", headers=_bearer(token)).status_code == 200
    assert admin.delete(f"/users/{user_id}").status_code == 204
    _assert_401(anon.get("/auth/me", headers=_bearer(token)), "no longer exists")


def test_a_builtin_users_password_as_http_basic_is_refused(anon):
    resp = anon.get("/dags", auth=("admin", "adminpass123"))
    assert resp.status_code == 401


# -- users ----------------------------------------------------------------------------


def test_user_crud_round_trip(server, tmp_path):
    settings, _, admin = server
    created = admin.post("/users", json={"username": "crud", "password": "password123", "role": "viewer"})
    assert created.status_code == 201
    uid = created.json()["user"]["id"]
    assert admin.get(f"/users/{uid}").json()["user"]["role"] == "viewer"
    assert admin.patch(f"/users/{uid}", json={"role": "manager", "username": "crud2"}).json()["user"] == {
        **admin.get(f"/users/{uid}").json()["user"], "role": "manager", "username": "crud2"}
    assert any(u["username"] == "crud2" for u in admin.get("/users").json()["users"])
    record = orjson.loads((settings.data_dir / "users" / f"{uid}.json").read_bytes())
    assert set(record) == {"id", "username", "password_hash", "role", "created_at", "updated_at"}
    assert record["password_hash"].startswith("$2b$12$") and "password123" not in str(record)
    assert admin.delete(f"/users/{uid}").status_code == 204
    assert admin.get(f"/users/{uid}").status_code == 404


@pytest.mark.parametrize(
    ("body", "status", "message"),
    [
        ({"username": "admin", "password": "password123", "role": "viewer"}, 409, "already exists"),
        ({"username": "shorty", "password": "short", "role": "viewer"}, 400, "Password does not meet security requirements"),
        ({"username": "badrole", "password": "password123", "role": "superuser"}, 400, "Invalid role"),
        ({"password": "password123", "role": "viewer"}, 400, "username is required"),
    ],
)
def test_bad_user_creation_is_refused(server, body, status, message):
    _, _, admin = server
    resp = admin.post("/users", json=body)
    assert resp.status_code == status and message in resp.json()["message"], resp.text


def test_an_admin_cannot_delete_themselves(server):
    _, _, admin = server
    me = admin.get("/auth/me").json()["user"]["id"]
    resp = admin.delete(f"/users/{me}")
    assert resp.status_code == 400 and "own account" in resp.json()["message"]


def test_change_and_reset_password(server, anon):
    _, _, admin = server
    uid, token = _user(admin, "pwuser", "viewer", "first-password")
    bad = anon.post("/auth/change-password", headers=_bearer(token), json={"currentPassword": "nope", "newPassword": "second-password"})
    assert bad.status_code == 401
    short = anon.post("/auth/change-password", headers=_bearer(token), json={"currentPassword": "first-password", "newPassword": "x"})
    assert short.status_code == 400
    ok = anon.post("/auth/change-password", headers=_bearer(token), json={"currentPassword": "first-password", "newPassword": "second-password"})
    assert ok.status_code == 200
    assert anon.post("/auth/login", json={"username": "pwuser", "password": "second-password"}).status_code == 200
    assert admin.post(f"/users/{uid}/reset-password", json={"newPassword": "third-password"}).status_code == 200
    assert anon.post("/auth/login", json={"username": "pwuser", "password": "second-password"}).status_code == 401
    assert anon.post("/auth/login", json={"username": "pwuser", "password": "third-password"}).status_code == 200


def test_user_management_is_admin_only(server, anon):
    _, _, admin = server
    _, manager = _user(admin, "a-manager", "manager")
    for method, path in [("GET", "/users"), ("POST", "/users"), ("GET", "/api-keys"), ("GET", "/webhooks")]:
        resp = anon.request(method, path, headers=_bearer(manager), json={})
        assert resp.status_code == 403, (method, path, resp.text)
        assert resp.json() == {"code": "forbidden", "message": "Insufficient permissions"}


# -- API keys -------------------------------------------------------------------------


def test_api_keys_act_with_their_own_role(server, anon):
    settings, _, admin = server
    created = admin.post("/api-keys", json={"name": "ci-viewer", "role": "viewer", "description": "for CI"})
    assert created.status_code == 201
    key, info = created.json()["key"], created.json()["apiKey"]
    assert key.startswith("dagu_") and info["keyPrefix"] == key[:8] and "lastUsedAt" not in info
    me = anon.get("/auth/me", headers=_bearer(key)).json()["user"]
    assert (me["id"], me["username"], me["role"]) == (f"apikey:{info['id']}", "apikey:ci-viewer", "viewer")
    assert anon.get("/users", headers=_bearer(key)).status_code == 403
    admin_key = admin.post("/api-keys", json={"name": "ops-admin", "role": "admin"}).json()["key"]
    assert anon.get("/users", headers=_bearer(admin_key)).status_code == 200
    listed = {k["name"]: k for k in admin.get("/api-keys").json()["apiKeys"]}
    assert listed["ci-viewer"]["lastUsedAt"]
    stored = (settings.data_dir / "apikeys" / f"{info['id']}.json").read_text()
    assert key not in stored and "key_hash" in stored


def test_a_changed_or_deleted_api_key_takes_effect_at_once(server, anon):
    _, _, admin = server
    created = admin.post("/api-keys", json={"name": "short-lived", "role": "admin"}).json()
    key, kid = created["key"], created["apiKey"]["id"]
    assert anon.get("/users", headers=_bearer(key)).status_code == 200
    assert admin.patch(f"/api-keys/{kid}", json={"role": "viewer"}).json()["apiKey"]["role"] == "viewer"
    assert anon.get("/users", headers=_bearer(key)).status_code == 403
    assert admin.delete(f"/api-keys/{kid}").status_code == 204
    _assert_401(anon.get("/auth/me", headers=_bearer(key)))


def test_api_key_validation_errors(server):
    _, _, admin = server
    assert admin.post("/api-keys", json={"name": "x", "role": "root"}).status_code == 400
    assert admin.post("/api-keys", json={"role": "viewer"}).status_code == 400
    admin.post("/api-keys", json={"name": "dup", "role": "viewer"})
    assert admin.post("/api-keys", json={"name": "dup", "role": "viewer"}).status_code == 409
    _assert_401(admin.get("/auth/me", headers=_bearer("dagu_" + "1" * 44)))


# -- audit ----------------------------------------------------------------------------


def test_mutations_and_logins_are_audited_without_secrets(server, anon):
    settings, _, admin = server
    anon.post("/auth/login", json={"username": "admin", "password": "a-wrong-password"})
    admin.post("/users", json={"username": "audited", "password": "audited-password", "role": "viewer"})
    entries = admin.get("/audit", params={"limit": 50}).json()["entries"]
    failed = next(e for e in entries if e["action"] == "login" and e["status"] == 401)
    assert (failed["username"], failed["result"], failed["ip_address"]) == ("admin", "failure", "127.0.0.1")
    created = next(e for e in entries if e["category"] == "user" and e["action"] == "create" and e["status"] == 201)
    assert (created["username"], created["credential_type"], created["method"]) == ("admin", "user", "POST")
    files = list((settings.admin_log_dir / "audit").glob("*.jsonl"))
    text = "".join(f.read_text() for f in files)
    assert files and files[0].name == f"{entries[0]['timestamp'][:10]}.jsonl"
    assert "a-wrong-password" not in text and "audited-password" not in text and SECRET not in text


def test_the_audit_log_needs_the_audit_permission(server, anon):
    _, _, admin = server
    _, operator = _user(admin, "audit-operator", "operator")
    _, manager = _user(admin, "audit-manager", "manager")
    assert anon.get("/audit", headers=_bearer(operator)).status_code == 403
    assert anon.get("/audit", headers=_bearer(manager)).status_code == 200
    assert admin.get("/audit", params={"date": "yesterday"}).status_code == 400


# -- startup --------------------------------------------------------------------------


def test_builtin_mode_without_a_token_secret_fails_at_startup(tmp_path):
    settings = make_settings(tmp_path, {"auth": {"mode": "builtin"}})
    with pytest.raises(ConfigError, match=r"auth\.builtin\.token\.secret is not set.*DAGU_AUTH_TOKEN_SECRET"):
        build(settings)


def test_the_first_admin_gets_a_printed_random_password_once(tmp_path, capsys):
    settings = make_settings(tmp_path, {"auth": {"mode": "builtin", "builtin": {"token": {"secret": SECRET}}}})
    with serve(make_app(settings)) as url:
        printed = capsys.readouterr().out
        password = printed.split("password: ")[1].split()[0]
        resp = httpx.post(f"{url}/api/v2/auth/login", json={"username": "admin", "password": password})
        assert resp.status_code == 200 and resp.json()["user"]["role"] == "admin"
    build(settings)  # a second start finds the user and prints nothing
    assert "password" not in capsys.readouterr().out
