"""`dagu enqueue`, `dagu start --queued` and `dagu dequeue` through the real CLI."""

from __future__ import annotations

import json
import textwrap

from dagu.store.queue import QueueStore
from helpers import run_dagu


def _flow(tmp_path, name="q", body="steps:\n  - command: echo \"hi $WHO\"\n    output: OUT\n"):
    path = tmp_path / f"{name}.yaml"
    path.write_text(textwrap.dedent(body))
    return path


def test_enqueue_creates_a_queued_run_and_its_queue_item(tmp_path):
    home = tmp_path / "home"
    path = _flow(tmp_path, body="params: WHO=nobody\nsteps:\n  - command: echo hi\n")
    result = run_dagu("enqueue", "-r", "q1", str(path), "--", "WHO=you", home=home)
    assert result.returncode == 0, result.stderr
    doc = json.loads(run_dagu("status", "--json", "q", home=home).stdout)
    assert doc["statusLabel"] == "queued" and doc["params"] == "WHO=you"
    items = QueueStore(home / "data" / "queue").items("q")
    assert [(i.dag_name, i.run_id) for i in items] == [("q", "q1")]


def test_start_queued_runs_the_queued_record_under_the_same_run_id(tmp_path):
    home = tmp_path / "home"
    path = _flow(tmp_path, body="params: WHO=nobody\nsteps:\n  - command: echo \"hi $WHO\"\n    output: OUT\n")
    assert run_dagu("enqueue", "-r", "q2", str(path), "--", "WHO=you", home=home).returncode == 0
    result = run_dagu("start", "-q", "--queued", "-r", "q2", str(path), home=home)
    assert result.returncode == 0, result.stderr
    doc = json.loads(run_dagu("status", "--json", "q", home=home).stdout)
    assert doc["dagRunId"] == "q2" and doc["statusLabel"] == "succeeded"
    assert doc["nodes"][0]["outputs"] == {"OUT": "hi you"}
    assert doc.get("queuedAt")
    again = run_dagu("start", "-q", "--queued", "-r", "q2", str(path), home=home)
    assert again.returncode == 1 and "not queued" in again.stderr


def test_enqueue_refuses_an_existing_run_id(tmp_path):
    home = tmp_path / "home"
    path = _flow(tmp_path)
    assert run_dagu("enqueue", "-r", "dup", str(path), home=home).returncode == 0
    result = run_dagu("enqueue", "-r", "dup", str(path), home=home)
    assert result.returncode == 1 and "already exists" in result.stderr


def test_dequeue_takes_the_first_run_off_and_marks_it_aborted(tmp_path):
    home = tmp_path / "home"
    path = _flow(tmp_path)
    for rid in ("first", "second"):
        assert run_dagu("enqueue", "-r", rid, str(path), home=home).returncode == 0
    assert run_dagu("dequeue", "q", home=home).returncode == 0
    assert [i.run_id for i in QueueStore(home / "data" / "queue").items("q")] == ["second"]
    doc = json.loads(run_dagu("status", "--json", "-r", "first", "q", home=home).stdout)
    assert doc["statusLabel"] == "aborted"
    assert run_dagu("dequeue", "q", "--dag-run", "q:second", home=home).returncode == 0
    empty = run_dagu("dequeue", "q", home=home)
    assert empty.returncode == 1 and "empty" in empty.stderr


def test_enqueue_on_a_named_queue(tmp_path):
    home = tmp_path / "home"
    path = _flow(tmp_path)
    assert run_dagu("enqueue", "-u", "batch", "-r", "b1", str(path), home=home).returncode == 0
    assert [i.run_id for i in QueueStore(home / "data" / "queue").items("batch")] == ["b1"]
