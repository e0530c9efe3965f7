"""Prometheus metrics after real runs: `dagu start` / `enqueue` processes write the stores,
a real uvicorn serves `/metrics`, prometheus_client's parser reads it."""

from __future__ import annotations

import os
import signal
import subprocess
import sys

import httpx
import pytest
from helpers import ROOT, run_dagu, wait_for
from prometheus_client.parser import text_string_to_metric_families
from sse_support import build_app, serve

from dagu.config import load_settings


@pytest.fixture
def home(tmp_path):
    home = tmp_path / "home"
    dags = home / "dags"
    dags.mkdir(parents=True)
    (dags / "ok.yaml").write_text("steps:\n  - name: a\n    command: 'true'\n")
    (dags / "bad.yaml").write_text("steps:\n  - name: a\n    command: 'exit 3'\n")
    (dags / "waits.yaml").write_text("steps:\n  - name: a\n    command: 'true'\n")
    (dags / "sleepy.yaml").write_text("steps:\n  - name: a\n    command: 'sleep 60'\n")
    return home


def _samples(text):
    """{(sample name, frozenset(labels)): value} of every sample in a scrape."""
    return {(s.name, frozenset(s.labels.items())): s.value for fam in text_string_to_metric_families(text) for s in fam.samples}


def _value(samples, name, **labels):
    return samples.get((name, frozenset(labels.items())))


def test_metrics_count_todays_runs_by_status_and_dag_and_what_runs_and_waits_now(home, tmp_path):
    for args in (("start", "ok"), ("start", "ok"), ("start", "bad"), ("enqueue", "-r", "q1", "ok"),
                 ("enqueue", "-r", "w1", "waits"), ("start", "--queued", "-r", "w1", "waits"),
                 ("dequeue", "waits", "--dag-run", "waits:w1")):
        run_dagu(*args, home=home)  # `bad` exits non-zero by design
    app = build_app(load_settings(dagu_home=str(home), environ={}))
    sleepy = _start_in_background(home, "sleepy", tmp_path / "sleepy.log")
    try:
        with serve(app) as url:
            scrape = lambda: _samples(httpx.get(f"{url}/api/v2/metrics", timeout=30).text)  # noqa: E731
            samples = wait_for(lambda: (s := scrape()) and _value(s, "dagu_dag_runs_currently_running") == 1 and s,
                               "the sleepy run to count as running", timeout=30)
            resp = httpx.get(f"{url}/metrics", timeout=30)
    finally:
        os.killpg(sleepy.pid, signal.SIGTERM)
        sleepy.wait(timeout=30)
    assert resp.headers["content-type"].startswith("text/plain; version=0.0.4")
    assert {n for n, _ in _samples(resp.text)} == {n for n, _ in samples}  # the root path serves the same metrics
    totals = {dict(labels)["status"]: v for (n, labels), v in samples.items() if n == "dagu_dag_runs_total"}
    assert (totals["succeeded"], totals["failed"], totals["queued"], totals["running"], totals["aborted"]) == (3, 1, 1, 1, 0)
    # NOTE: Dagu's counter name has no `_total` suffix; prometheus_client's parser adds one when reading.
    assert 'dagu_dag_runs_total_by_dag{dag="ok",status="succeeded"} 2.0' in resp.text.splitlines()
    by_dag = {tuple(sorted(dict(labels).items())): v for (n, labels), v in samples.items() if n == "dagu_dag_runs_total_by_dag_total"}
    assert by_dag == {
        (("dag", "ok"), ("status", "succeeded")): 2,
        (("dag", "ok"), ("status", "queued")): 1,
        (("dag", "bad"), ("status", "failed")): 1,
        (("dag", "waits"), ("status", "succeeded")): 1,
        (("dag", "sleepy"), ("status", "running")): 1,
    }
    assert _value(samples, "dagu_dag_runs_currently_running_by_dag", dag="sleepy") == 1
    assert _value(samples, "dagu_dag_runs_queued_total") == 1
    assert _value(samples, "dagu_dag_runs_queued_by_dag", dag="ok") == 1
    assert _value(samples, "dagu_dags_total") == 4
    assert _value(samples, "dagu_scheduler_running") == 0
    assert _value(samples, "dagu_dag_run_duration_seconds_count", dag="ok") == 2
    assert _value(samples, "dagu_dag_run_duration_seconds_bucket", dag="ok", le="+Inf") == 2
    assert _value(samples, "dagu_dag_run_duration_seconds_count", dag="bad") == 1
    assert _value(samples, "dagu_dag_run_duration_seconds_count", dag="sleepy") is None  # still running
    assert _value(samples, "dagu_queue_wait_seconds_count", dag="waits") == 1
    assert _value(samples, "dagu_queue_wait_seconds_count", dag="ok") is None  # q1 never started
    from dagu import __version__

    assert _value(samples, "dagu_info", version=__version__, go_version="none") == 1
    assert _value(samples, "dagu_uptime_seconds") >= 0
    assert _value(samples, "process_cpu_seconds_total") > 0


def test_metrics_are_private_unless_configured_public(home):
    env = {"DAGU_AUTH_MODE": "basic", "DAGU_AUTH_BASIC_USERNAME": "u", "DAGU_AUTH_BASIC_PASSWORD": "p4ssword-long"}
    private = build_app(load_settings(dagu_home=str(home), environ=env))
    public = build_app(load_settings(dagu_home=str(home), environ={**env, "DAGU_SERVER_METRICS": "public"}))
    with serve(private) as url:
        assert httpx.get(f"{url}/api/v2/metrics", timeout=30).status_code == 401
        authed = httpx.get(f"{url}/api/v2/metrics", auth=("u", "p4ssword-long"), timeout=30)
        assert authed.status_code == 200 and "dagu_dags_total 4.0" in authed.text
        assert httpx.get(f"{url}/api/v2/events", timeout=30).status_code == 401  # the event stream too
    with serve(public) as url:
        assert httpx.get(f"{url}/metrics", timeout=30).status_code == 200
        assert httpx.get(f"{url}/api/v1/metrics", timeout=30).status_code == 200


def _start_in_background(home, dag, log_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("DAGU_")}
    env.update({"DAGU_HOME": str(home), "PYTHONPATH": str(ROOT), "DISABLE_PROGRESS": "1"})
    with open(log_path, "wb") as log:
        return subprocess.Popen([sys.executable, "-m", "dagu", "start", dag], env=env, cwd=ROOT, stdout=log,
                                stderr=subprocess.STDOUT, start_new_session=True)
