"""`/dags` against a live uvicorn server: listing, search, tags, spec get/put, create, validate,
rename, delete, suspend, and the error paths (404, 409, 400, nothing written on bad input)."""

from __future__ import annotations

import pytest
from apiserver import live_server
from helpers import wait_for

HELLO = "description: say hi\ntags: [etl, daily]\nschedule: '5 * * * *'\nparams: NAME=bob\nsteps:\n  - name: greet\n    command: echo hello ${NAME}\n"
BROKEN = "steps:\n  - name: a\n    command: echo a\n    retry_policy:\n      limit: three\n      interval_sec: 1\n"


@pytest.fixture
def srv(tmp_path):
    with live_server(tmp_path / "home") as s:
        yield s


def test_list_pages_sorts_and_filters_by_name_and_tag(srv):
    for i in range(7):
        srv.dag(f"job{i}", f"tags: [{'even' if i % 2 == 0 else 'odd'}]\nsteps:\n  - command: echo {i}\n")
    srv.dag("broken", BROKEN)
    c = srv.client
    doc = c.get("/dags", params={"perPage": 3, "page": 2}).json()
    assert [d["fileName"] for d in doc["dags"]] == ["job2", "job3", "job4"]  # after broken, job0, job1
    assert doc["pagination"] == {"totalRecords": 8, "currentPage": 2, "totalPages": 3, "nextPage": 3, "prevPage": 1}
    assert doc["dags"][0]["latestDAGRun"]["statusLabel"] == "not_started"
    assert doc["dags"][0]["latestDAGRun"]["startedAt"] == ""
    assert any("broken" in e for e in doc["errors"])
    desc = c.get("/dags", params={"order": "desc", "perPage": 2}).json()
    assert [d["fileName"] for d in desc["dags"]] == ["job6", "job5"]
    assert [d["fileName"] for d in c.get("/dags", params={"tag": "odd"}).json()["dags"]] == ["job1", "job3", "job5"]
    assert [d["fileName"] for d in c.get("/dags", params={"name": "OB4"}).json()["dags"]] == ["job4"]
    broken = c.get("/dags", params={"name": "broken"}).json()["dags"][0]
    assert broken["errors"] and "limit" in broken["errors"][0]


def test_list_rejects_bad_query_values(srv):
    for params in ({"page": "x"}, {"sort": "size"}, {"order": "up"}):
        r = srv.client.get("/dags", params=params)
        assert r.status_code == 400 and r.json()["code"] == "bad_request", params


def test_list_sees_files_changed_on_disk(srv):
    srv.dag("a", "steps:\n  - command: echo 1\n")
    assert srv.client.get("/dags").json()["dags"][0]["dag"].get("description") is None
    srv.dag("a", "description: changed on disk, longer\nsteps:\n  - command: echo 1\n")
    # A single DAG is re-checked on every request; the list within the scan cache's second.
    assert srv.client.get("/dags/a").json()["dag"]["description"] == "changed on disk, longer"
    wait_for(lambda: srv.client.get("/dags").json()["dags"][0]["dag"].get("description"), "the list to see the edit", 5)


def test_get_dag_details_spec_and_404s(srv):
    srv.dag("hello", HELLO)
    c = srv.client
    doc = c.get("/dags/hello").json()
    assert doc["dag"]["name"] == "hello" and doc["dag"]["tags"] == ["etl", "daily"]
    assert doc["dag"]["steps"][0]["commands"] == [{"command": "echo", "args": ["hello", "${NAME}"]}]
    assert doc["dag"]["schedule"] == [{"expression": "5 * * * *"}]
    assert doc["suspended"] is False and doc["latestDAGRun"]["finishedAt"] == ""
    spec = c.get("/dags/hello/spec").json()
    assert spec["spec"] == HELLO and spec["errors"] == []
    for path in ("/dags/nope", "/dags/nope/spec", "/dags/nope/dag-runs"):
        r = c.get(path)
        assert r.status_code == 404 and r.json()["code"] == "not_found" and r.json()["message"], path
    r = c.put("/dags/nope/spec", json={"spec": HELLO})
    assert r.status_code == 404


def test_put_spec_saves_valid_yaml_and_refuses_invalid_with_the_line(srv):
    path = srv.dag("hello", HELLO)
    c = srv.client
    r = c.put("/dags/hello/spec", json={"spec": BROKEN})
    assert r.status_code == 200
    errors = r.json()["errors"]
    assert errors and ":5:" in errors[0] and "limit" in errors[0]
    assert path.read_text() == HELLO  # not saved
    r = c.put("/dags/hello/spec", json={"spec": "steps:\n  - command: [unclosed\n"})
    assert r.json()["errors"] and path.read_text() == HELLO
    r = c.put("/dags/hello/spec", json={"spec": "steps:\n  - command: echo new\n"})
    assert r.status_code == 200 and r.json() == {"errors": []}
    assert path.read_text() == "steps:\n  - command: echo new\n"
    r = c.put("/dags/hello/spec", json={})
    assert r.status_code == 400


def test_create_dag_with_stub_with_spec_duplicate_and_invalid(srv):
    c = srv.client
    r = c.post("/dags", json={"name": "fresh"})
    assert r.status_code == 201 and r.json() == {"name": "fresh"}
    assert (srv.home / "dags" / "fresh.yaml").read_text() == "steps:\n  - command: echo hello\n"
    r = c.post("/dags", json={"name": "fresh", "spec": HELLO})
    assert r.status_code == 409 and r.json()["code"] == "already_exists"
    r = c.post("/dags", json={"name": "bad", "spec": BROKEN})
    assert r.status_code == 400 and "limit" in r.json()["message"]
    assert not (srv.home / "dags" / "bad.yaml").exists()
    for name in ("py 3", "../escape", "", "x" * 41):
        r = c.post("/dags", json={"name": name})
        assert r.status_code == 400, name
    assert sorted(p.name for p in (srv.home / "dags").iterdir()) == ["fresh.yaml"]


def test_bad_json_bodies_are_400_and_null_fields_are_absent(srv):
    c = srv.client
    r = c.post("/dags", content=b"{not json", headers={"content-type": "application/json"})
    assert r.status_code == 400 and r.json()["code"] == "bad_request"
    r = c.post("/dags", content=b"[1, 2]")
    assert r.status_code == 400
    r = c.post("/dags", json={"name": 5})
    assert r.status_code == 400
    r = c.post("/dags", json={"name": "nulls", "spec": None})
    assert r.status_code == 201
    assert sorted(p.name for p in (srv.home / "dags").iterdir()) == ["nulls.yaml"]


def test_validate_reports_errors_without_saving(srv):
    c = srv.client
    ok = c.post("/dags/validate", json={"spec": HELLO, "name": "v"}).json()
    assert ok["valid"] is True and ok["dag"]["name"] == "v" and ok["errors"] == []
    bad = c.post("/dags/validate", json={"spec": BROKEN}).json()
    assert bad["valid"] is False and "limit" in bad["errors"][0]
    assert c.post("/dags/validate", json={}).status_code == 400
    assert list((srv.home / "dags").iterdir()) == []


def test_search_and_tags(srv):
    srv.dag("hello", HELLO)
    srv.dag("other", "tags: [adhoc]\nsteps:\n  - command: echo other\n")
    c = srv.client
    doc = c.get("/dags/search", params={"q": "hello"}).json()
    assert [r["name"] for r in doc["results"]] == ["hello"]
    match = doc["results"][0]["matches"][0]
    assert match["lineNumber"] == 7 and match["startLine"] == 5 and "echo hello" in match["line"]
    assert c.get("/dags/search").status_code == 400
    assert c.get("/dags/tags").json() == {"tags": ["adhoc", "daily", "etl"], "errors": []}


def test_rename_moves_the_file_and_refuses_clashes(srv):
    srv.dag("old", HELLO)
    srv.dag("taken", HELLO)
    c = srv.client
    assert c.post("/dags/old/suspend", json={"suspend": True}).status_code == 200
    assert c.post("/dags/old/rename", json={"newFileName": "taken"}).status_code == 409
    assert c.post("/dags/old/rename", json={"newFileName": "bad name"}).status_code == 400
    assert c.post("/dags/missing/rename", json={"newFileName": "x"}).status_code == 404
    assert c.post("/dags/old/rename", json={}).status_code == 400
    r = c.post("/dags/old/rename", json={"newFileName": "new"})
    assert r.status_code == 200
    assert not (srv.home / "dags" / "old.yaml").exists() and (srv.home / "dags" / "new.yaml").read_text() == HELLO
    assert c.get("/dags/new").json()["suspended"] is True


def test_suspend_toggles_the_flag_file(srv):
    srv.dag("hello", HELLO)
    c = srv.client
    flag = srv.home / "suspend" / "hello.suspend"
    assert c.post("/dags/hello/suspend", json={"suspend": True}).status_code == 200
    assert flag.exists() and c.get("/dags/hello").json()["suspended"] is True
    assert c.post("/dags/hello/suspend", json={"suspend": False}).status_code == 200
    assert not flag.exists()
    assert c.post("/dags/hello/suspend", json={"suspend": "yes"}).status_code == 400
    assert c.post("/dags/hello/suspend", json={}).status_code == 400
    assert c.post("/dags/nope/suspend", json={"suspend": True}).status_code == 404


def test_delete_removes_the_file_then_404(srv):
    srv.dag("gone", HELLO)
    c = srv.client
    r = c.delete("/dags/gone")
    assert r.status_code == 204 and not (srv.home / "dags" / "gone.yaml").exists()
    assert c.delete("/dags/gone").status_code == 404
    assert c.get("/dags/gone").status_code == 404
