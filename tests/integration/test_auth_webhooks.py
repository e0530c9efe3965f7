"""Per-DAG webhooks against a real uvicorn: management, and triggers that enqueue a real run
(the queued run record and queue item on disk carry `WEBHOOK_PAYLOAD`)."""

from __future__ import annotations

import httpx
import orjson
import pytest
from auth_support import make_app, make_settings, serve, write_dag

from dagu.status import RunStatus, TriggerType
from dagu.store import RunStore, read_status
from dagu.store.queue import QueueStore
from web.auth import delete_webhook_for

SECRET = "webhook-test-secret-0123456789abcdef01"
CONFIG = {"auth": {"mode": "builtin", "builtin": {"admin": {"password": "adminpass123"}, "token": {"secret": SECRET}}}}


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    settings = make_settings(tmp_path_factory.mktemp("home"), CONFIG)
    for name in ("hook", "other", "quiet", "regen", "gone", "big"):
        write_dag(settings, name)
    with serve(make_app(settings)) as url, httpx.Client(base_url=url + "/api/v2", timeout=30) as admin:
        token = admin.post("/auth/login", json={"username": "admin", "password": "adminpass123"}).json()["token"]
        admin.headers["Authorization"] = f"Bearer {token}"
        yield settings, url, admin


@pytest.fixture
def anon(server):
    with httpx.Client(base_url=server[1] + "/api/v2", timeout=30) as client:
        yield client


def _create(admin, name: str) -> str:
    resp = admin.post(f"/dags/{name}/webhook")
    assert resp.status_code == 201, resp.text
    return resp.json()["token"]


def _trigger(anon, name: str, token: str, body=None, **kw) -> httpx.Response:
    return anon.post(f"/webhooks/{name}", headers={"Authorization": f"Bearer {token}"}, json=body, **kw)


def test_a_trigger_enqueues_a_run_with_the_payload(server, anon):
    settings, _, admin = server
    token = _create(admin, "hook")
    payload = {"ref": "main", "note": 'say "hi" \\ $(id) `id`', "n": [1, 2.5, None]}
    resp = _trigger(anon, "hook", token, {"payload": payload, "dagRunId": "from-hook-1"})
    assert resp.status_code == 200, resp.text
    assert resp.json() == {"dagRunId": "from-hook-1", "dagName": "hook"}
    store = RunStore(settings.data_dir, settings.log_dir)
    record = read_status(store.latest_attempt(store.find_run("hook", "from-hook-1")).status_path)
    assert record.status is RunStatus.QUEUED and record.trigger_type is TriggerType.WEBHOOK
    # NOTE: the payload keeps `$(id)` and backticks literally: it was not evaluated by a shell.
    assert record.params_list == ["WEBHOOK_PAYLOAD=" + orjson.dumps(payload).decode()]
    assert QueueStore(settings.queue_dir).find("hook", "from-hook-1") is not None
    hook = admin.get("/dags/hook/webhook").json()
    assert hook["lastUsedAt"] and hook["dagName"] == "hook" and hook["tokenPrefix"] == token[:12]


def test_a_trigger_without_a_body_gets_an_empty_object_and_a_new_run_id(server, anon):
    settings, _, admin = server
    token = _create(admin, "other")
    resp = anon.post("/webhooks/other", headers={"Authorization": f"Bearer {token}"})
    assert resp.status_code == 200, resp.text
    run_id = resp.json()["dagRunId"]
    store = RunStore(settings.data_dir, settings.log_dir)
    assert read_status(store.latest_attempt(store.find_run("other", run_id)).status_path).params_list == ["WEBHOOK_PAYLOAD={}"]


def test_a_reused_run_id_is_409(server, anon):
    _, _, admin = server
    token = admin.post("/dags/hook/webhook/regenerate").json()["token"]
    assert _trigger(anon, "hook", token, {"dagRunId": "dup-run"}).status_code == 200
    resp = _trigger(anon, "hook", token, {"dagRunId": "dup-run"})
    assert resp.status_code == 409 and resp.json()["code"] == "already_exists"


@pytest.mark.parametrize(
    ("header", "message"),
    [(None, "missing or invalid authorization header"), ("Basic abc", "missing or invalid authorization header"),
     ("Bearer dagu_abc", "missing or invalid authorization header"), ("Bearer dagu_wh_wrong", "invalid webhook token")],
)
def test_a_trigger_without_the_right_token_is_401(server, anon, header, message):
    _, _, admin = server
    if admin.get("/dags/hook/webhook").status_code == 404:
        _create(admin, "hook")
    resp = anon.post("/webhooks/hook", headers={"Authorization": header} if header else {}, json={})
    assert resp.status_code == 401 and resp.json() == {"code": "unauthorized", "message": message}


def test_a_trigger_for_a_dag_without_a_webhook_is_404(anon):
    assert _trigger(anon, "nowhere", "dagu_wh_x", {}).status_code == 404


def test_a_disabled_webhook_is_403_until_enabled_again(server, anon):
    _, _, admin = server
    token = _create(admin, "quiet")
    assert admin.post("/dags/quiet/webhook/toggle", json={"enabled": False}).json()["enabled"] is False
    assert _trigger(anon, "quiet", token, {}).status_code == 403
    assert admin.post("/dags/quiet/webhook/toggle", json={"enabled": True}).json()["enabled"] is True
    assert _trigger(anon, "quiet", token, {}).status_code == 200
    assert admin.post("/dags/quiet/webhook/toggle", json={}).status_code == 400


def test_a_payload_over_one_mib_is_413(server, anon):
    _, _, admin = server
    token = _create(admin, "big")
    just_over = {"x": "a" * ((1 << 20) - 7)}  # compact JSON {"x":"..."} is 1 MiB + 1 byte
    resp = _trigger(anon, "big", token, {"payload": just_over})
    assert resp.status_code == 413 and resp.json()["code"] == "bad_request"
    fits = {"x": "a" * ((1 << 20) - 8)}
    assert _trigger(anon, "big", token, {"payload": fits}).status_code == 200
    huge = b'{"payload": {"x": "' + b"a" * (2 << 20) + b'"}}'
    assert anon.post("/webhooks/big", headers={"Authorization": f"Bearer {token}"}, content=huge).status_code == 413


def test_bad_trigger_bodies_are_400(server, anon):
    _, _, admin = server
    token = admin.post("/dags/big/webhook/regenerate").json()["token"]
    for body in (b"[1]", b"{nope", b'{"payload": [1]}', b'{"dagRunId": "has space"}'):
        resp = anon.post("/webhooks/big", headers={"Authorization": f"Bearer {token}"}, content=body)
        assert resp.status_code == 400, (body, resp.text)


def test_regenerating_the_token_retires_the_old_one(server, anon):
    settings, _, admin = server
    old = _create(admin, "regen")
    new = admin.post("/dags/regen/webhook/regenerate").json()["token"]
    assert new != old
    assert _trigger(anon, "regen", old, {}).status_code == 401
    assert _trigger(anon, "regen", new, {}).status_code == 200
    files = list((settings.data_dir / "webhooks").glob("*.json"))
    assert files and not any(new in f.read_text() or old in f.read_text() for f in files)


def test_management_rules(server):
    _, _, admin = server
    assert admin.post("/dags/no-such-dag/webhook").status_code == 404
    _create(admin, "gone")
    assert admin.post("/dags/gone/webhook").status_code == 409
    assert {w["dagName"] for w in admin.get("/webhooks").json()["webhooks"]} >= {"gone", "hook"}
    assert admin.delete("/dags/gone/webhook").status_code == 204
    assert admin.get("/dags/gone/webhook").status_code == 404
    assert admin.delete("/dags/gone/webhook").status_code == 404


def test_deleting_a_dag_deletes_its_webhook(server, anon):
    settings, _, admin = server
    token = _create(admin, "gone")
    assert delete_webhook_for(settings, "gone") is True
    assert delete_webhook_for(settings, "gone") is False
    assert admin.get("/dags/gone/webhook").status_code == 404
    assert _trigger(anon, "gone", token, {}).status_code == 404


def test_webhooks_are_off_outside_builtin_mode(tmp_path):
    settings = make_settings(tmp_path, {})
    write_dag(settings, "hook")
    with serve(make_app(settings)) as url:
        assert httpx.post(f"{url}/api/v2/webhooks/hook", headers={"Authorization": "Bearer dagu_wh_x"}).status_code == 404
        resp = httpx.get(f"{url}/api/v2/webhooks")
        assert resp.status_code == 401 and resp.json()["message"] == "Webhook management is not enabled"
