"""Live updates end to end: real `dagu start` / `dagu enqueue` / `dagu scheduler` processes
publish on the event bus, a real uvicorn streams them as server-sent events to httpx clients."""

from __future__ import annotations

import os
import signal
import subprocess
import sys

import httpx
import pytest
from helpers import ROOT, run_dagu, wait_for
from sse_support import SseReader, build_app, serve

from dagu.config import load_settings

CHAIN = "steps:\n  - name: a\n    command: echo a\n  - name: b\n    command: echo b\n    depends: [a]\n"


@pytest.fixture
def home(tmp_path):
    home = tmp_path / "home"
    (home / "dags").mkdir(parents=True)
    (home / "dags" / "chain.yaml").write_text(CHAIN)
    return home


@pytest.fixture
def server(home):
    """(base URL, app) of a server for `home`, heartbeats every 0.3 s."""
    app = build_app(load_settings(dagu_home=str(home), environ={}), heartbeat_s=0.3)
    with serve(app) as url:
        yield url, app


def _summary(events, run_id=None):
    """(type, step or None, status label) of each event, of one run when given."""
    return [(e.event, e.data.get("step"), e.data.get("statusLabel")) for e in events
            if run_id is None or e.data["dagRunId"] == run_id]


def _run_ended(run_id):
    return lambda evs: any(e.event == "run" and e.data["dagRunId"] == run_id and e.data["statusLabel"] != "running" for e in evs)


def test_a_client_sees_the_run_start_each_step_run_and_succeed_and_the_run_succeed_in_order(home, server):
    url, _ = server
    with SseReader(f"{url}/api/v2/events", {"dagRunId": "run1"}) as sse:
        result = run_dagu("start", "-r", "run1", "chain", home=home)
        assert result.returncode == 0, result.stderr
        events = sse.wait_for(_run_ended("run1"), "run1 to end")
    assert _summary(events) == [
        ("run", None, "running"),
        ("step", "a", "running"),
        ("step", "a", "succeeded"),
        ("step", "b", "running"),
        ("step", "b", "succeeded"),
        ("run", None, "succeeded"),
    ]
    ids = [e.id for e in events]
    assert ids == sorted(ids) and len(set(ids)) == len(ids)
    first = events[0].data
    assert first["dagName"] == "chain" and first["status"] == 1 and first["at"].endswith("Z")


def test_filters_pick_events_by_dag_name_run_id_and_type(home, server):
    url, _ = server
    (home / "dags" / "other.yaml").write_text("steps:\n  - name: x\n    command: 'true'\n")
    with (
        SseReader(f"{url}/api/v1/events", {"dagName": "other"}) as by_dag,
        SseReader(f"{url}/api/v2/events", {"types": "run"}) as by_type,
        SseReader(f"{url}/api/v2/events", {"dagRunId": "o1"}) as by_run,
        SseReader(f"{url}/api/v2/events") as everything,
    ):
        assert run_dagu("start", "-r", "c1", "chain", home=home).returncode == 0
        assert run_dagu("start", "-r", "o1", "other", home=home).returncode == 0
        everything.wait_for(_run_ended("o1"), "o1 to end on the unfiltered stream")
        by_dag.wait_for(_run_ended("o1"), "o1 to end on the dagName stream")
        by_type.wait_for(_run_ended("o1"), "o1 to end on the types stream")
        by_run.wait_for(_run_ended("o1"), "o1 to end on the dagRunId stream")
    # NOTE: the unfiltered stream got both runs, so the runs did publish everything the filters dropped.
    assert {e.data["dagRunId"] for e in everything.events} == {"c1", "o1"}
    assert {e.data["dagName"] for e in by_dag.events} == {"other"}
    assert {e.event for e in by_type.events} == {"run"}
    assert _summary(by_type.events, "c1") == [("run", None, "running"), ("run", None, "succeeded")]
    assert _summary(by_run.events) == _summary(everything.events, "o1")


def test_an_unknown_event_type_is_a_bad_request(server):
    url, _ = server
    with httpx.stream("GET", f"{url}/api/v2/events", params={"types": "run,bogus"}, timeout=10) as resp:
        assert resp.status_code == 400
        resp.read()
    assert resp.json()["code"] == "bad_request" and "bogus" in resp.json()["message"]


def test_a_disconnected_client_frees_its_buffer_and_the_last_one_unbinds_the_socket(home, server):
    url, app = server
    events_dir = home / "data" / "events"
    with SseReader(f"{url}/api/v2/events") as sse:
        sse.wait_comment("heartbeat")
        hub = app.state.event_hub
        assert hub.snapshot().clients == 1
        sockets = list(events_dir.iterdir())
        assert [p.name for p in sockets] == [os.path.basename(hub.snapshot().socket_path)]
    wait_for(lambda: hub.snapshot().clients == 0, "the hub to forget the disconnected client", timeout=10)
    assert not hub.snapshot().subscribed
    assert list(events_dir.iterdir()) == []
    # Publishers find nobody to send to: a run now costs the bus one empty listdir.
    assert run_dagu("start", "-r", "quiet", "chain", home=home).returncode == 0


def test_a_queued_run_started_by_the_scheduler_is_streamed_with_its_queue_events(home, server, tmp_path):
    url, _ = server
    with SseReader(f"{url}/api/v2/events", {"dagName": "chain"}) as sse:
        assert run_dagu("enqueue", "-r", "q1", "chain", home=home).returncode == 0
        sse.wait_for(lambda evs: any(e.event == "queue" for e in evs), "the enqueued event")
        with _scheduler(home, tmp_path / "scheduler.log"):
            events = sse.wait_for(_run_ended("q1"), "the queued run to end", timeout=60)
            events = sse.wait_for(lambda evs: [e.data.get("action") for e in evs if e.event == "queue"] == ["enqueued", "dequeued"],
                                  "the dequeued event")
    queue_events = [e.data for e in events if e.event == "queue"]
    assert queue_events[0] | {"at": ""} == {"type": "queue", "dagName": "chain", "dagRunId": "q1", "queue": "chain",
                                            "action": "enqueued", "status": 5, "statusLabel": "queued", "at": ""}
    assert [s for s in _summary(events, "q1") if s[0] == "run"] == [("run", None, "running"), ("run", None, "succeeded")]
    assert ("step", "b", "succeeded") in _summary(events, "q1")


def test_dequeueing_a_run_by_hand_announces_it_aborted_and_gone_from_the_queue(home, server):
    url, _ = server
    with SseReader(f"{url}/api/v2/events", {"dagRunId": "q2"}) as sse:
        assert run_dagu("enqueue", "-r", "q2", "chain", home=home).returncode == 0
        assert run_dagu("dequeue", "chain", "--dag-run", "chain:q2", home=home).returncode == 0
        events = sse.wait_for(lambda evs: len(evs) == 3, "three events")
    assert [(e.event, e.data.get("action"), e.data.get("statusLabel")) for e in events] == [
        ("queue", "enqueued", "queued"), ("run", None, "aborted"), ("queue", "dequeued", None),
    ]


def test_a_sub_dag_run_is_streamed_under_its_root_run(home, server):
    url, _ = server
    with SseReader(f"{url}/api/v2/events", {"dagRunId": "parent1"}) as sse:
        result = run_dagu("start", "-r", "parent1", str(ROOT / "examples" / "subdag.yaml"), home=home)
        assert result.returncode == 0, result.stderr
        events = sse.wait_for(_run_ended("parent1"), "the parent run to end")
    child = [e.data for e in events if e.data["dagName"] == "process-batch"]
    assert child, f"no event of the sub-DAG run among {_summary(events)}"
    assert {(d["rootDagName"], d["rootDagRunId"]) for d in child} == {("subdag", "parent1")}
    assert [(d["type"], d.get("step"), d["statusLabel"]) for d in child] == [
        ("run", None, "running"), ("step", "work", "running"), ("step", "work", "succeeded"), ("run", None, "succeeded"),
    ]
    # The child's run ended before the parent's `process` step did.
    order = [(e.data["dagName"], e.data.get("step"), e.data["statusLabel"]) for e in events]
    assert order.index(("process-batch", None, "succeeded")) < order.index(("subdag", "process", "succeeded"))


# -- helpers ---------------------------------------------------------------------------


class _scheduler:
    def __init__(self, home, log_path):
        self.home, self.log_path = home, log_path

    def __enter__(self):
        env = {k: v for k, v in os.environ.items() if not k.startswith("DAGU_")}
        env.update({"DAGU_HOME": str(self.home), "PYTHONPATH": str(ROOT)})
        self.log = open(self.log_path, "wb")
        self.proc = subprocess.Popen([sys.executable, "-m", "dagu", "scheduler"], env=env, cwd=ROOT, stdout=self.log,
                                     stderr=subprocess.STDOUT, start_new_session=True)
        return self.proc

    def __exit__(self, *exc):
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            self.proc.wait(timeout=20)
        self.log.close()


def test_the_real_app_streams_events_through_its_middleware_uncompressed(home):
    from web.app import create_app

    app = create_app(load_settings(dagu_home=str(home), environ={}))
    with serve(app) as url:
        # NOTE: heartbeats come every 15 s here, so the reader ends when the server shuts down, not on close().
        sse = SseReader(f"{url}/api/v2/events", {"dagRunId": "real1"}, read_timeout_s=60)
        assert run_dagu("start", "-r", "real1", "chain", home=home).returncode == 0
        events = sse.wait_for(_run_ended("real1"), "real1 to end")
        metrics = httpx.get(f"{url}/api/v2/metrics", headers={"Accept-Encoding": "gzip"}, timeout=30)
    assert sse.ended.wait(15), "the stream did not end when the server shut down"
    sse.close()
    assert [s for s in _summary(events) if s[0] == "run"] == [("run", None, "running"), ("run", None, "succeeded")]
    assert sse.status_code == 200 and sse.headers["content-type"].startswith("text/event-stream")
    assert "content-encoding" not in sse.headers  # gzip would hold events back until its buffer fills
    assert metrics.status_code == 200 and "dagu_dag_runs_total{status=\"succeeded\"} 1.0" in metrics.text
    wait_for(lambda: app.state.event_hub.snapshot().clients == 0, "the hub to forget the client after shutdown", timeout=10)
