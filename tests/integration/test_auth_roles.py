"""Every role against every gated route of the real app (service.md 2.9, 6.3), and the global
`permissions.writeDAGs` / `permissions.runDAGs` switches.

The routes come from the mounted app, not from a list here: a new route is covered
as soon as it is mounted, and a mutating route that matches no rule of `GATES` fails
`test_every_mutating_route_has_a_gate` until someone decides who may call it.
"""

from __future__ import annotations

import re

import httpx
import pytest
from auth_support import make_app, make_settings, serve
from starlette.routing import Mount, Route

from web.security import ROLE_PERMISSIONS, Permission, Role

SECRET = "roles-test-secret-0123456789abcdef0123"
PUBLIC = "public"
# (method, path under /api/v2) -> who may call it, first match wins; from service.md 2.7-2.9.
GATES: list[tuple[str, str | Permission]] = [
    (r"POST /auth/login", PUBLIC),
    (r"POST /webhooks/[^/]+", PUBLIC),  # the per-DAG token is its credential
    (r"\w+ /auth/(me|change-password)", Permission.READ),  # any signed-in caller
    (r"\w+ /(users|api-keys)(/.*)?", Permission.ADMIN),
    (r"\w+ /webhooks", Permission.ADMIN),
    (r"\w+ /dags/[^/]+/webhook(/.*)?", Permission.ADMIN),
    (r"GET /audit", Permission.AUDIT),
    (r"POST /dags/validate", Permission.READ),
    (r"POST /dags|DELETE /dags/[^/]+|PUT /dags/[^/]+/spec|POST /dags/[^/]+/rename", Permission.WRITE),
    (r"POST /dags/[^/]+/(start|enqueue|stop-all|suspend)", Permission.RUN),
    (r"(POST|PATCH|PUT|DELETE) /dag-runs(/.*)?", Permission.RUN),
    (r"(POST|PATCH|PUT|DELETE) /queues(/.*)?", Permission.RUN),
    (r"GET .*", Permission.READ),
]
MUTATING = {"POST", "PUT", "PATCH", "DELETE"}


def gate_of(method: str, path: str) -> str | Permission | None:
    for pattern, gate in GATES:
        if re.fullmatch(pattern, f"{method} {path}"):
            return gate
    return None


def api_routes(app) -> list[tuple[str, str]]:
    """(method, path template under /api/v2) of every route the app mounts there."""

    def walk(routes, prefix=""):
        for r in routes:
            if isinstance(r, Mount):
                yield from walk(r.routes or [], prefix + r.path)
            elif isinstance(r, Route):
                for m in r.methods or ():
                    if m != "HEAD":
                        yield m, prefix + r.path

    return sorted({(m, p[len("/api/v2"):]) for m, p in walk(app.routes) if p.startswith("/api/v2/")})


def gated_routes(app) -> list[tuple[str, str, Permission]]:
    """Routes to probe: every mutating one plus reads that need more than READ (no streams)."""
    out = []
    for method, path in api_routes(app):
        gate = gate_of(method, path)
        if gate is None or gate == PUBLIC:
            continue
        if method in MUTATING or gate is not Permission.READ:
            out.append((method, path, gate))
    return out


def concrete(path: str) -> str:
    return re.sub(r"\{[^}]+\}", "no-such-thing", path)


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    config = {"auth": {"mode": "builtin", "builtin": {"admin": {"password": "adminpass123"}, "token": {"secret": SECRET}}}}
    settings = make_settings(tmp_path_factory.mktemp("home"), config)
    app = make_app(settings)
    with serve(app) as url, httpx.Client(base_url=url + "/api/v2", timeout=30) as client:
        admin = client.post("/auth/login", json={"username": "admin", "password": "adminpass123"}).json()["token"]
        tokens = {Role.ADMIN: admin}
        for role in Role:
            if role is Role.ADMIN:
                continue
            name = f"user-{role.value}"
            made = client.post("/users", json={"username": name, "password": "password123", "role": role.value},
                               headers={"Authorization": f"Bearer {admin}"})
            assert made.status_code == 201, made.text
            tokens[role] = client.post("/auth/login", json={"username": name, "password": "password123"}).json()["token"]
        yield app, client, tokens


def test_every_mutating_route_has_a_gate(world):
    app, _, _ = world
    unknown = [f"{m} {p}" for m, p in api_routes(app) if gate_of(m, p) is None]
    assert not unknown, f"add these routes to GATES in {__file__}: {unknown}"
    assert len([r for r in gated_routes(app) if r[0] in MUTATING]) >= 10  # NOTE: guards against an empty walk


@pytest.mark.parametrize("role", list(Role), ids=lambda r: r.value)
def test_each_role_is_refused_exactly_where_it_lacks_the_permission(world, role):
    app, client, tokens = world
    wrong = []
    for method, path, gate in gated_routes(app):
        resp = client.request(method, concrete(path), json={}, headers={"Authorization": f"Bearer {tokens[role]}"})
        allowed = gate in ROLE_PERMISSIONS[role]
        if allowed and resp.status_code in (401, 403):
            wrong.append(f"{method} {path}: {role.value} may ({gate.value}) but got {resp.status_code} {resp.text[:120]}")
        if not allowed and (resp.status_code != 403 or resp.json() != {"code": "forbidden", "message": "Insufficient permissions"}):
            wrong.append(f"{method} {path}: {role.value} may not ({gate.value}) but got {resp.status_code} {resp.text[:120]}")
    assert not wrong, "\n".join(wrong)


def test_every_gated_route_wants_credentials(world):
    app, client, _ = world
    for method, path, _gate in gated_routes(app):
        resp = client.request(method, concrete(path), json={})
        assert resp.status_code == 401, f"{method} {path}: {resp.status_code}"
        assert resp.headers["www-authenticate"].startswith("Bearer")


def test_an_operator_api_key_can_run_but_not_write(world):
    _, client, tokens = world
    admin = {"Authorization": f"Bearer {tokens[Role.ADMIN]}"}
    key = client.post("/api-keys", json={"name": "op", "role": "operator"}, headers=admin).json()["key"]
    as_key = {"Authorization": f"Bearer {key}"}
    assert client.post("/dags/no-such-thing/start", json={}, headers=as_key).status_code == 404  # past the gate
    assert client.post("/dags", json={"name": "x"}, headers=as_key).status_code == 403


@pytest.mark.parametrize(("switch", "gate"), [("writeDAGs", Permission.WRITE), ("runDAGs", Permission.RUN)])
def test_a_global_switch_denies_even_an_admin(tmp_path, switch, gate):
    config = {"permissions": {switch: False}, "auth": {"token": {"value": "static-admin-token"}}}
    settings = make_settings(tmp_path, config)
    app = make_app(settings)
    probes = [(m, p) for m, p, g in gated_routes(app) if g is gate]
    others = [(m, p) for m, p, g in gated_routes(app) if g in (Permission.WRITE, Permission.RUN) and g is not gate]
    assert probes and others
    with serve(app) as url, httpx.Client(base_url=url + "/api/v2", headers={"Authorization": "Bearer static-admin-token"}) as client:
        for method, path in probes:
            resp = client.request(method, concrete(path), json={})
            assert resp.status_code == 403, f"{method} {path}: {resp.status_code}"
            assert resp.json() == {"code": "forbidden", "message": "Permission denied"}
        for method, path in others:
            assert client.request(method, concrete(path), json={}).status_code not in (401, 403), f"{method} {path}"
