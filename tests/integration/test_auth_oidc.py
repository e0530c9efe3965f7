"""OIDC mode against a real provider (oidc-provider-mock in a subprocess) and a real uvicorn:
the authorization-code flow without a browser, role mapping, whitelist, state, nonce
and PKCE, and the session cookie on API calls."""

from __future__ import annotations

import base64
import hashlib
import time
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from auth_support import make_app, make_settings, oidc_provider, serve

from web.auth.tokens import SESSION_AUDIENCE, issue_jwt

SECRET = "oidc-session-secret-0123456789abcdef012"


@pytest.fixture(scope="module")
def provider():
    with oidc_provider() as p:
        p.set_user("alice", {"email": "alice@example.com", "groups": ["dagu-admins", "dagu-ops"]})
        p.set_user("olga", {"email": "olga@example.com", "groups": ["dagu-ops"]})
        p.set_user("carol", {"email": "carol@example.com"})
        p.set_user("bob", {"email": "bob@example.com", "groups": ["dagu-admins"]})
        yield p


@pytest.fixture(scope="module")
def server(provider, tmp_path_factory):
    config = {
        "auth": {
            "mode": "oidc",
            "builtin": {"token": {"secret": SECRET}},
            "oidc": {
                "clientId": "dagu-test", "clientSecret": "dagu-test-secret", "issuer": provider.issuer,
                "whitelist": ["alice@example.com", "olga@example.com", "carol@example.com"],
                "roleMapping": {"groupsClaim": "groups", "groupMappings": {"dagu-admins": "admin", "dagu-ops": "operator"}},
                "defaultRole": "viewer",
            },
        },
    }
    settings = make_settings(tmp_path_factory.mktemp("home"), config)
    with serve(make_app(settings)) as url:
        yield url


def _cookie_header(cookies: dict[str, str]) -> dict[str, str]:
    return {"Cookie": "; ".join(f"{k}={v}" for k, v in cookies.items())}


def _start(url: str, next_path: str | None = None) -> tuple[str, dict[str, str]]:
    """GET /oidc/login: (the provider's authorize URL, the flow cookies)."""
    resp = httpx.get(f"{url}/oidc/login", params={"next": next_path} if next_path else None)
    assert resp.status_code == 302, resp.text
    return resp.headers["location"], dict(resp.cookies)


def _authorize(authorize_url: str, sub: str) -> str:
    """Log `sub` in at the provider (its form, without a browser): our callback URL with the code."""
    resp = httpx.post(authorize_url, data={"sub": sub})
    assert resp.status_code == 302, resp.text
    return resp.headers["location"]


def _login(url: str, sub: str, next_path: str | None = None) -> httpx.Response:
    authorize_url, cookies = _start(url, next_path)
    return httpx.get(_authorize(authorize_url, sub), headers=_cookie_header(cookies))


def _session_of(resp: httpx.Response) -> dict[str, str]:
    assert resp.status_code == 302, resp.text
    return _cookie_header({"dagu_session": resp.cookies["dagu_session"]})


def test_the_login_redirect_carries_state_nonce_and_a_pkce_challenge(server, provider):
    authorize_url, cookies = _start(server)
    parts = urlsplit(authorize_url)
    q = {k: v[0] for k, v in parse_qs(parts.query).items()}
    assert f"{parts.scheme}://{parts.netloc}" == provider.issuer
    assert q["client_id"] == "dagu-test" and q["response_type"] == "code" and "openid" in q["scope"].split()
    assert q["redirect_uri"] == f"{server}/oidc-callback"
    assert q["state"] == cookies["dagu_oidc_state"] and q["nonce"] == cookies["dagu_oidc_nonce"]
    digest = hashlib.sha256(cookies["dagu_oidc_verifier"].encode()).digest()
    assert q["code_challenge_method"] == "S256"
    assert q["code_challenge"] == base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def test_a_mapped_group_becomes_the_role_and_the_cookie_works_on_the_api(server):
    resp = _login(server, "alice", next_path="/dags")
    assert resp.headers["location"] == "/dags"
    session = _session_of(resp)
    me = httpx.get(f"{server}/api/v2/auth/me", headers=session).json()["user"]
    assert (me["id"], me["username"], me["role"], me["kind"]) == ("oidc:alice", "alice@example.com", "admin", "oidc")
    audit = httpx.get(f"{server}/api/v2/audit", headers=session)
    assert audit.status_code == 200
    assert any(e["action"] == "login" and e["username"] == "alice@example.com" for e in audit.json()["entries"])


def test_the_strongest_group_wins_and_no_group_gives_the_default_role(server):
    olga = _session_of(_login(server, "olga"))
    carol = _session_of(_login(server, "carol"))
    assert httpx.get(f"{server}/api/v2/auth/me", headers=olga).json()["user"]["role"] == "operator"
    assert httpx.get(f"{server}/api/v2/auth/me", headers=carol).json()["user"]["role"] == "viewer"
    assert httpx.get(f"{server}/api/v2/audit", headers=carol).status_code == 403
    assert httpx.post(f"{server}/api/v2/dags", headers=carol, json={"name": "x"}).status_code == 403


def test_a_user_off_the_whitelist_is_refused(server):
    resp = _login(server, "bob")
    assert resp.status_code == 403 and "whitelist" in resp.json()["message"]
    assert "dagu_session" not in resp.cookies


def test_a_callback_with_another_state_is_refused(server):
    authorize_url, cookies = _start(server)
    callback = _authorize(authorize_url, "alice")
    resp = httpx.get(callback, headers=_cookie_header({**cookies, "dagu_oidc_state": "not-the-state"}))
    assert resp.status_code == 400 and "state" in resp.json()["message"]
    resp = httpx.get(callback)  # no flow cookies at all (another browser)
    assert resp.status_code == 400


def test_an_id_token_for_another_login_nonce_is_refused(server):
    first_url, first = _start(server)
    _, second = _start(server)
    callback = _authorize(first_url, "alice")  # the code's ID token carries the first nonce
    mixed = {**first, "dagu_oidc_nonce": second["dagu_oidc_nonce"]}
    resp = httpx.get(callback, headers=_cookie_header(mixed))
    assert resp.status_code == 401 and "nonce" in resp.json()["message"]


def test_a_code_works_only_once(server):
    authorize_url, cookies = _start(server)
    callback = _authorize(authorize_url, "alice")
    assert httpx.get(callback, headers=_cookie_header(cookies)).status_code == 302
    assert httpx.get(callback, headers=_cookie_header(cookies)).status_code == 401


@pytest.mark.parametrize(
    "cookie",
    [
        issue_jwt({"sub": "oidc:mallory", "username": "m", "role": "admin", "aud": SESSION_AUDIENCE}, "another-secret-0123456789abcdef0123", 600)[0],
        issue_jwt({"sub": "oidc:alice", "username": "a", "role": "admin", "aud": SESSION_AUDIENCE}, SECRET, 60, now=time.time() - 3600)[0],
        issue_jwt({"sub": "oidc:alice", "username": "a", "role": "admin"}, SECRET, 600)[0],  # a login token, no session audience
        "garbage",
    ],
    ids=["forged", "expired", "not-a-session", "garbage"],
)
def test_bad_session_cookies_are_401_on_the_api(server, cookie):
    resp = httpx.get(f"{server}/api/v2/auth/me", headers=_cookie_header({"dagu_session": cookie}))
    assert resp.status_code == 401 and set(resp.json()) == {"code", "message"}
    assert "www-authenticate" in resp.headers


def test_without_a_session_the_api_is_401_and_a_browser_goes_to_the_provider(server):
    assert httpx.get(f"{server}/api/v2/dags").status_code == 401
    page = httpx.get(f"{server}/dags", headers={"Accept": "text/html"})
    assert page.status_code == 302 and page.headers["location"] == "/oidc/login?next=/dags"
