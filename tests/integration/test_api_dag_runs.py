"""Runs through the API against a live uvicorn server: start, status, logs, outputs, stop, retry,
reschedule, enqueue/dequeue, step status, inline specs, history, sub-runs, queues.

Every run here is a real `dagu` process started by the server."""

from __future__ import annotations

import time

import pytest
from apiserver import live_server, wait_processes_gone
from helpers import wait_for

GREET = "params: NAME=bob\nsteps:\n  - name: greet\n    command: echo hello ${NAME}\n    output: GREETING\n  - name: loud\n    command: sh -c 'echo oops >&2; printf \"l1\\nl2\\nl3\\nl4\\n\"'\n"
SLOW = "steps:\n  - name: nap\n    command: sleep 30\n"
FLAKY = "steps:\n  - name: first\n    command: echo first\n  - name: check\n    command: test -f ${MARK}\n"
PARENT = "steps:\n  - name: call\n    call: child\n    params: WHO=kid\n---\nname: child\nparams: WHO=x\nsteps:\n  - name: hi\n    command: echo hi ${WHO}\n"
DONE = {"succeeded", "failed", "aborted", "partially_succeeded"}


def _outputs(srv, name, run_id):
    # NOTE: the run process writes outputs.json just after its final status, so wait for it.
    return wait_for(lambda: srv.client.get(f"/dag-runs/{name}/{run_id}/outputs").json()["outputs"],
                    f"outputs of {name}/{run_id}", 10)


@pytest.fixture
def srv(tmp_path):
    with live_server(tmp_path / "home") as s:
        yield s
        wait_processes_gone(s.home)


def test_start_returns_after_the_run_started_and_status_reads_it(srv):
    srv.dag("greet", GREET)
    c = srv.client
    began = time.monotonic()
    r = c.post("/dags/greet/start", json={"params": "NAME=ann", "dagRunId": "r1", "dagName": None, "singleton": None})
    assert r.status_code == 200 and r.json() == {"dagRunId": "r1"}
    assert time.monotonic() - began < 5.5
    doc = c.get("/dag-runs/greet/r1").json()["dagRunDetails"]
    assert doc["statusLabel"] != "not_started"
    doc = srv.wait_status("greet", "r1", DONE)
    assert doc["statusLabel"] == "succeeded" and doc["status"] == 4 and doc["params"] == "NAME=ann"
    assert doc["nodes"][0]["step"]["name"] == "greet" and doc["nodes"][0]["statusLabel"] == "succeeded"
    assert doc["queuedAt"] == "" and doc["startedAt"].endswith("Z")
    assert c.get("/dag-runs/greet/latest").json()["dagRunDetails"]["dagRunId"] == "r1"
    assert c.get("/dags/greet/dag-runs/r1").json()["dagRun"]["dagRunId"] == "r1"
    assert c.get("/dags/greet").json()["latestDAGRun"]["dagRunId"] == "r1"


def test_start_error_paths(srv):
    srv.dag("greet", GREET)
    srv.dag("broken", "steps:\n  - name: a\n    depends: [nope]\n    command: echo\n")
    c = srv.client
    assert c.post("/dags/greet/start", json={"dagRunId": "dup"}).status_code == 200
    r = c.post("/dags/greet/start", json={"dagRunId": "dup"})
    assert r.status_code == 409 and r.json()["code"] == "already_exists" and "dup" in r.json()["message"]
    assert c.post("/dags/missing/start", json={}).status_code == 404
    assert c.post("/dags/greet/start", json={"dagRunId": "bad id!"}).status_code == 400
    assert c.post("/dags/greet/start", json={"dagName": "bad name"}).status_code == 400
    assert c.post("/dags/broken/start", json={}).status_code == 400
    assert c.post("/dags/greet/start", content=b"{").status_code == 400
    srv.wait_status("greet", "dup", DONE)


def test_singleton_start_conflicts_while_running_and_stop_aborts(srv):
    srv.dag("slow", SLOW)
    c = srv.client
    assert c.post("/dags/slow/start", json={"dagRunId": "s1"}).status_code == 200
    srv.wait_status("slow", "s1", {"running"})
    r = c.post("/dags/slow/start", json={"singleton": True})
    assert r.status_code == 409 and "singleton" in r.json()["message"]
    r = c.patch("/dag-runs/slow/s1/steps/nap/status", json={"status": 4})
    assert r.status_code == 400  # not while running
    assert c.post("/dag-runs/slow/s1/stop").status_code == 200
    doc = srv.wait_status("slow", "s1", DONE)
    assert doc["statusLabel"] == "aborted" and doc["nodes"][0]["statusLabel"] == "aborted"
    r = c.post("/dag-runs/slow/s1/stop")
    assert r.status_code == 400 and r.json() == {"code": "not_running", "message": "DAG is not running"}


def test_stop_all_stops_every_running_run(srv):
    srv.dag("slow", SLOW.replace("steps:", "max_active_runs: 3\nsteps:"))
    c = srv.client
    for rid in ("a1", "a2"):
        assert c.post("/dags/slow/start", json={"dagRunId": rid}).status_code == 200
    for rid in ("a1", "a2"):
        srv.wait_status("slow", rid, {"running"})
    assert c.post("/dags/slow/stop-all").json() == {"errors": []}
    for rid in ("a1", "a2"):
        assert srv.wait_status("slow", rid, DONE)["statusLabel"] == "aborted"
    assert c.post("/dags/nope/stop-all").status_code == 404


def test_logs_with_head_tail_offset_limit_and_default_stdout(srv):
    srv.dag("greet", GREET)
    c = srv.client
    c.post("/dags/greet/start", json={"dagRunId": "l1"})
    srv.wait_status("greet", "l1", DONE)
    base = "/dag-runs/greet/l1/steps/loud/log"
    assert c.get(base).json() == {"content": "l1\nl2\nl3\nl4", "lineCount": 4, "totalLines": 4}
    assert c.get(base, params={"stream": "stderr"}).json()["content"] == "oops"
    assert c.get(base, params={"head": 2}).json() == {"content": "l1\nl2", "lineCount": 2, "totalLines": 4, "hasMore": True}
    assert c.get(base, params={"tail": 1}).json()["content"] == "l4"
    assert c.get(base, params={"offset": 2, "limit": 2}).json()["content"] == "l2\nl3"
    assert c.get(base, params={"stream": "both"}).status_code == 400
    assert c.get(base, params={"head": "x"}).status_code == 400
    assert c.get("/dag-runs/greet/l1/steps/nope/log").status_code == 404
    # The run's own log: its start, each step's changes, its end.
    lines = c.get("/dag-runs/greet/l1/log").json()["content"].splitlines()
    assert "run l1 of greet" in lines[0]
    assert any(line.endswith("step loud: succeeded") for line in lines), lines
    assert lines[-1].endswith("run l1 ended succeeded")
    assert c.get("/dag-runs/greet/nope/log").status_code == 404


def test_outputs_and_run_spec(srv):
    srv.dag("greet", GREET)
    c = srv.client
    c.post("/dags/greet/start", json={"dagRunId": "o1"})
    srv.wait_status("greet", "o1", DONE)
    assert _outputs(srv, "greet", "o1") == {"greeting": "hello bob"}
    doc = c.get("/dag-runs/greet/o1/outputs").json()
    assert doc["metadata"]["dagRunId"] == "o1" and doc["metadata"]["status"] == "succeeded"
    assert c.get("/dag-runs/greet/o1/spec").json() == {"spec": GREET}
    assert c.get("/dag-runs/greet/nope/outputs").status_code == 404
    assert c.get("/dag-runs/nodag/latest").status_code == 404


def test_retry_whole_run_and_one_step_reuse_the_run_id(srv, tmp_path):
    mark = tmp_path / "mark"
    srv.dag("flaky", FLAKY.replace("${MARK}", str(mark)))
    c = srv.client
    c.post("/dags/flaky/start", json={"dagRunId": "f1"})
    assert srv.wait_status("flaky", "f1", DONE)["statusLabel"] == "failed"
    mark.write_text("")
    r = c.post("/dag-runs/flaky/f1/retry", json={"dagRunId": "f1"})
    assert r.status_code == 200
    doc = srv.wait_status("flaky", "f1", {"succeeded"})
    assert [n["statusLabel"] for n in doc["nodes"]] == ["succeeded", "succeeded"]
    attempts = list((srv.home / "data" / "dag-runs" / "flaky" / "dag-runs").rglob("attempt_*"))
    assert len(attempts) == 2
    r = c.post("/dag-runs/flaky/f1/retry", json={"stepName": "first"})
    assert r.status_code == 200
    wait_for(lambda: len(list((srv.home / "data" / "dag-runs" / "flaky").rglob("attempt_*"))) == 3, "a third attempt")
    srv.wait_status("flaky", "f1", {"succeeded"})
    assert c.post("/dag-runs/flaky/f1/retry", json={"stepName": "nope"}).status_code == 404
    assert c.post("/dag-runs/flaky/nope/retry", json={}).status_code == 404


def test_step_status_patch_after_the_run(srv):
    srv.dag("greet", GREET)
    c = srv.client
    c.post("/dags/greet/start", json={"dagRunId": "p1"})
    srv.wait_status("greet", "p1", DONE)
    assert c.patch("/dag-runs/greet/p1/steps/loud/status", json={"status": 2}).status_code == 200
    assert srv.run_status("greet", "p1")["nodes"][1]["statusLabel"] == "failed"
    assert c.patch("/dag-runs/greet/p1/steps/nope/status", json={"status": 2}).status_code == 404
    assert c.patch("/dag-runs/greet/p1/steps/loud/status", json={"status": 42}).status_code == 400
    assert c.patch("/dag-runs/greet/p1/steps/loud/status", json={}).status_code == 400


def test_reschedule_starts_a_new_run_from_the_snapshot(srv):
    srv.dag("greet", GREET)
    c = srv.client
    c.post("/dags/greet/start", json={"dagRunId": "orig", "params": "NAME=zed"})
    srv.wait_status("greet", "orig", DONE)
    srv.dag("greet", GREET.replace("hello", "changed"))  # the snapshot, not the file, is what runs again
    r = c.post("/dag-runs/greet/orig/reschedule", json={"dagRunId": "again"})
    assert r.status_code == 200 and r.json() == {"dagRunId": "again", "queued": False}
    srv.wait_status("greet", "again", {"succeeded"})
    assert _outputs(srv, "greet", "again") == {"greeting": "hello zed"}
    assert c.post("/dag-runs/greet/orig/reschedule", json={"dagRunId": "again"}).status_code == 409


def test_enqueue_shows_in_queues_then_dequeue_removes_it(srv):
    srv.dag("greet", GREET.replace("params:", "queue: lane\nparams:"))
    c = srv.client
    r = c.post("/dags/greet/enqueue", json={"dagRunId": "q1", "params": "NAME=q"})
    assert r.status_code == 200 and r.json() == {"dagRunId": "q1"}
    doc = srv.run_status("greet", "q1")
    assert doc["statusLabel"] == "queued" and doc["startedAt"] == "" and doc["queuedAt"]
    assert doc["nodes"][0]["startedAt"] == ""  # unset times are "", never "-"
    queues = c.get("/queues").json()
    lane = next(q for q in queues["queues"] if q["name"] == "lane")
    assert lane["type"] == "dag-based" and [x["dagRunId"] for x in lane["queued"]] == ["q1"]
    assert queues["summary"]["totalQueued"] == 1
    assert c.post("/dags/greet/enqueue", json={"dagRunId": "q1"}).status_code == 409
    assert c.post("/dags/greet/enqueue", json={"singleton": True}).status_code == 409
    assert c.get("/dag-runs/greet/q1/dequeue").status_code == 200
    assert c.get("/dag-runs/greet/q1").status_code == 404
    assert c.get("/queues").json()["summary"]["totalQueued"] == 0
    assert c.get("/dag-runs/greet/q1/dequeue").status_code == 404


def test_dequeue_of_a_finished_run_is_400(srv):
    srv.dag("greet", GREET)
    c = srv.client
    c.post("/dags/greet/start", json={"dagRunId": "d1"})
    srv.wait_status("greet", "d1", DONE)
    assert c.get("/dag-runs/greet/d1/dequeue").status_code == 400


def test_inline_spec_run_and_enqueue_are_not_saved_as_dags(srv):
    c = srv.client
    spec = "steps:\n  - name: s\n    command: echo inline ${X}\n    output: OUT\n"
    r = c.post("/dag-runs", json={"spec": spec, "name": "adhoc", "params": "X=1", "dagRunId": "i1"})
    assert r.status_code == 200 and r.json() == {"dagRunId": "i1"}
    srv.wait_status("adhoc", "i1", {"succeeded"})
    assert _outputs(srv, "adhoc", "i1") == {"out": "inline 1"}
    assert list((srv.home / "dags").iterdir()) == []
    assert c.post("/dag-runs", json={"spec": spec, "name": "adhoc", "dagRunId": "i1"}).status_code == 409
    assert c.post("/dag-runs", json={"spec": "steps: [", "name": "x"}).status_code == 400
    assert c.post("/dag-runs", json={"spec": spec}).status_code == 400  # no name anywhere
    r = c.post("/dag-runs/enqueue", json={"spec": spec, "name": "adhoc", "dagRunId": "i2"})
    assert r.status_code == 200 and srv.run_status("adhoc", "i2")["statusLabel"] == "queued"
    assert c.get("/dag-runs/adhoc/i2/dequeue").status_code == 200


def test_history_filters(srv):
    srv.dag("greet", GREET)
    srv.dag("other", "steps:\n  - command: 'false'\n")
    c = srv.client
    c.post("/dags/greet/start", json={"dagRunId": "h1"})
    c.post("/dags/other/start", json={"dagRunId": "h2"})
    srv.wait_status("greet", "h1", DONE)
    srv.wait_status("other", "h2", DONE)
    ids = lambda **q: [r["dagRunId"] for r in c.get("/dag-runs", params=q).json()["dagRuns"]]  # noqa: E731
    assert sorted(ids()) == ["h1", "h2"]
    assert ids(name="greet") == ["h1"]
    assert ids(status=2) == ["h2"]
    assert ids(dagRunId="2") == ["h2"]
    assert ids(fromDate=int(time.time()) + 3600) == []
    assert ids(toDate=0) == []
    assert [r["dagRunId"] for r in c.get("/dag-runs/other").json()["dagRuns"]] == ["h2"]
    assert c.get("/dag-runs", params={"status": 99}).status_code == 400
    assert c.get("/dag-runs", params={"fromDate": "yesterday"}).status_code == 400
    grid = c.get("/dags/greet/dag-runs").json()
    assert [r["dagRunId"] for r in grid["dagRuns"]] == ["h1"]
    assert grid["gridData"] == [{"name": "greet", "history": [4]}, {"name": "loud", "history": [4]}]


def test_sub_dag_runs_carry_name_and_status(srv):
    srv.dag("parent", PARENT)
    c = srv.client
    c.post("/dags/parent/start", json={"dagRunId": "p1"})
    doc = srv.wait_status("parent", "p1", DONE)
    assert doc["statusLabel"] == "succeeded"
    sub = doc["nodes"][0]["subRuns"][0]
    assert sub["name"] == "child" and sub["status"] == 4 and sub["statusLabel"] == "succeeded"
    subs = c.get("/dag-runs/parent/p1/sub-dag-runs").json()["subRuns"]
    assert [s["dagRunId"] for s in subs] == [sub["dagRunId"]] and subs[0]["startedAt"]
    path = f"/dag-runs/parent/p1/sub-dag-runs/{sub['dagRunId']}"
    child = c.get(path).json()["dagRunDetails"]
    assert child["name"] == "child" and child["parentDAGRunId"] == "p1"
    assert c.get(path + "/steps/hi/log").json()["content"] == "hi kid"
    assert c.get(path + "/log").status_code == 200
    assert c.patch(path + "/steps/hi/status", json={"status": 2}).status_code == 200
    assert c.get(path).json()["dagRunDetails"]["nodes"][0]["status"] == 2
    assert c.get("/dag-runs/parent/p1/sub-dag-runs/nope").status_code == 404
