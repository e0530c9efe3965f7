"""RunStore: the on-disk layout of runs, attempts and logs; lookup, listing and retention."""

from __future__ import annotations

import os
import re
import time
import uuid
from datetime import UTC, datetime, timedelta

import orjson
import pytest

from dagu.errors import Conflict, InvalidRequest, NotFound
from dagu.status import RunStatus
from dagu.store.records import RunRecord
from dagu.store.runs import RunStore, new_run_id, safe_name
from dagu.store.status_log import StatusWriter

T0 = datetime(2026, 11, 24, 18, 7, 36, 434000, tzinfo=UTC)


class Clock:
    """A settable UTC clock for the store."""

    def __init__(self, now: datetime = T0):
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def store(tmp_path, clock) -> RunStore:
    return RunStore(tmp_path / "data", tmp_path / "logs", clock=clock)


def record_run(store: RunStore, dag: str, run_id: str, status: RunStatus, **times) -> None:
    """Create a run with one attempt whose (closed) status says `status`."""
    run = store.create_run(dag, run_id)
    attempt = store.new_attempt(run)
    record = RunRecord(name=dag, run_id=run_id, attempt_id=attempt.attempt_id, status=status, **times)
    writer = StatusWriter(attempt.status_path)
    writer.open(record)
    writer.close(record)


def test_run_attempt_and_log_paths_follow_the_dagu_layout(store, tmp_path, clock):
    run = store.create_run("hello", "myrun1")
    attempt = store.new_attempt(run)
    started = datetime(2026, 11, 24, 18, 7, 36, 437000, tzinfo=UTC)
    out, err = attempt.step_log_paths("greet", started)
    merged = attempt.step_log_paths("greet", started, merged=True)

    data, logs = re.escape(str(tmp_path / "data")), re.escape(str(tmp_path / "logs"))
    run_re = data + r"/dag-runs/hello/dag-runs/2026/11/24/dag-run_20261124_180736Z_myrun1"
    assert re.fullmatch(run_re, str(run.path))
    assert re.fullmatch(run_re + r"/attempt_20261124_180736_434Z_[0-9a-f]{6}", str(attempt.path))
    assert attempt.path.name.endswith(attempt.attempt_id)
    assert attempt.status_path.name == "status.jsonl"
    assert attempt.dag_json_path.name == "dag.json"
    assert attempt.outputs_path.name == "outputs.json"
    log_re = logs + r"/hello/dag-run_20261124_180736Z_myrun1"
    assert re.fullmatch(log_re, str(run.log_dir))
    assert re.fullmatch(log_re + r"/dag-run_20261124\.180736\.434\.myrun1\.log", str(attempt.run_log_path))
    step_re = log_re + r"/run_20261124_180736Z_[0-9a-f]{6}/greet\.20261124\.180736\.437\.myrun1\."
    assert re.fullmatch(step_re + "out", str(out))
    assert re.fullmatch(step_re + "err", str(err))
    assert merged[0] == merged[1] and re.fullmatch(step_re + "log", str(merged[0]))
    assert attempt.log_dir.is_dir() and attempt.path.is_dir()


def test_log_names_cut_the_run_id_to_eight_characters(store):
    run = store.create_run("hello", "0194a3b2-aaaa-7bbb-8ccc-123456789abc")
    attempt = store.new_attempt(run)
    assert attempt.run_log_path.name == "dag-run_20261124.180736.434.0194a3b2.log"
    assert attempt.step_log_paths("a", T0)[0].name == "a.20261124.180736.434.0194a3b2.out"


def test_unsafe_step_names_become_safe_file_names(store):
    attempt = store.new_attempt(store.create_run("hello", "r1"))
    out, _ = attempt.step_log_paths("../build it", T0)
    assert out.parent == attempt.log_dir
    assert re.fullmatch(r"___build_it-[0-9a-f]{4}\.20261124\.180736\.434\.r1\.out", out.name)


def test_a_second_attempt_reuses_the_run_log(store, clock):
    run = store.create_run("hello", "r1")
    first = store.new_attempt(run)
    first.run_log_path.write_text("first\n")
    clock.advance(minutes=5)
    second = store.new_attempt(run)
    assert second.run_log_path == first.run_log_path
    assert second.log_dir != first.log_dir


@pytest.mark.parametrize(
    "name, expected",
    [
        ("hello", "hello"),
        ("hello.yaml", "hello"),
        ("etl-daily_2", "etl-daily_2"),
    ],
)
def test_safe_name_keeps_safe_names(name, expected):
    assert safe_name(name) == expected


def test_safe_name_replaces_unsafe_characters_and_adds_a_hash():
    assert re.fullmatch(r"team_etl-[0-9a-f]{4}", safe_name("team/etl"))
    assert safe_name("a b") != safe_name("a_b")
    assert len(safe_name("x" * 300)) == 105  # cut to 100, and the cut counts as a change
    assert safe_name("x" * 300) != safe_name("x" * 301)
    assert len(safe_name("é" * 300)) == 105


def test_duplicate_run_id_is_a_conflict_even_on_another_day(store, clock):
    store.create_run("hello", "r1")
    clock.advance(days=3)
    with pytest.raises(Conflict, match="dag-run ID r1 already exists for DAG hello"):
        store.create_run("hello", "r1")
    store.create_run("other", "r1")  # IDs are per DAG


@pytest.mark.parametrize("run_id", ["", "a/b", "a b", "../x", "x" * 65, "é"])
def test_invalid_run_id_is_rejected(store, run_id):
    with pytest.raises(InvalidRequest, match="invalid dag-run ID"):
        store.create_run("hello", run_id)
    assert not (store.runs_dir / "hello").exists()


def test_a_64_character_run_id_is_accepted(store):
    store.create_run("hello", "x" * 64)


def test_a_stale_creation_lock_is_broken(store):
    lock = store.dag_dir("hello") / ".dagu_lock"
    lock.mkdir(parents=True)
    old = time.time() - 120
    os.utime(lock, (old, old))
    store.create_run("hello", "r1")
    assert not lock.exists()


def test_find_run_returns_the_run_and_matches_ids_exactly(store, clock):
    created = store.create_run("hello", "aZ_r1")
    clock.advance(seconds=1)
    assert store.find_run("hello", "aZ_r1") == created
    with pytest.raises(NotFound):
        store.find_run("hello", "r1")  # NOTE: a plain glob `dag-run_*r1` would match "aZ_r1"
    with pytest.raises(NotFound):
        store.find_run("nope", "r1")


def test_latest_attempt_ignores_hidden_and_status_less_attempts(store, clock):
    run = store.create_run("hello", "r1")
    first = store.new_attempt(run)
    with StatusWriter(first.status_path) as w:
        w.open(RunRecord(name="hello", run_id="r1", status=RunStatus.QUEUED))
    clock.advance(seconds=1)
    second = store.new_attempt(run)
    with StatusWriter(second.status_path) as w:
        w.open(RunRecord(name="hello", run_id="r1", status=RunStatus.RUNNING))
    clock.advance(seconds=1)
    store.new_attempt(run)  # created, no status yet

    assert store.latest_attempt(run) == second
    store.hide_attempt(second)
    assert store.latest_attempt(run) == first
    assert store.read_latest(run).status is RunStatus.QUEUED
    assert len(store.list_attempts(run)) == 2


def test_run_without_any_status_has_no_latest_attempt(store):
    run = store.create_run("hello", "r1")
    store.new_attempt(run)
    with pytest.raises(NotFound):
        store.latest_attempt(run)


def test_latest_run_is_the_most_recently_created(store, clock):
    with pytest.raises(NotFound):
        store.latest_run("hello")
    store.create_run("hello", "b")
    clock.advance(days=1)
    store.create_run("hello", "a")
    assert store.latest_run("hello").run_id == "a"


def test_list_runs_is_newest_first_and_filters(store, clock):
    record_run(store, "hello", "r1", RunStatus.SUCCEEDED)
    clock.advance(days=1)
    record_run(store, "hello", "r2", RunStatus.FAILED)
    clock.advance(hours=1)
    record_run(store, "other", "r3", RunStatus.SUCCEEDED)
    clock.advance(hours=1)
    record_run(store, "hello", "r4", RunStatus.SUCCEEDED)
    store.create_run("hello", "r5")  # no status yet: not listed

    def ids(**kwargs):
        return [handle.run_id for handle, _ in store.list_runs(**kwargs)]

    assert ids(dag_name="hello") == ["r4", "r2", "r1"]
    assert ids() == ["r4", "r3", "r2", "r1"]
    assert ids(statuses={RunStatus.SUCCEEDED}) == ["r4", "r3", "r1"]
    assert ids(since=T0 + timedelta(hours=12)) == ["r4", "r3", "r2"]
    assert ids(until=T0 + timedelta(days=1, minutes=30)) == ["r2", "r1"]
    assert ids(limit=2) == ["r4", "r3"]
    handle, record = store.list_runs()[1]
    assert (handle.dag_name, record.name, record.status) == ("other", "other", RunStatus.SUCCEEDED)


def test_delete_runs_keeps_active_and_recent_runs_and_removes_logs(store, clock):
    record_run(store, "hello", "old", RunStatus.SUCCEEDED, finished_at=T0)
    record_run(store, "hello", "running", RunStatus.RUNNING, started_at=T0)
    record_run(store, "hello", "queued", RunStatus.QUEUED, queued_at=T0)
    clock.advance(days=20)
    record_run(store, "hello", "recent", RunStatus.FAILED, finished_at=clock.now)
    old = store.find_run("hello", "old")
    assert old.log_dir.is_dir()
    clock.advance(days=15)

    assert store.delete_runs("hello", 30, dry_run=True) == ["old"]
    assert old.path.exists()
    assert store.delete_runs("hello", 30) == ["old"]
    assert not old.path.exists() and not old.log_dir.exists()
    assert store.delete_runs("hello", 0) == ["recent"]
    assert sorted(store.delete_runs("hello", 0, skip_active=False)) == ["queued", "running"]
    assert store.list_runs("hello") == []
    assert not (store.dag_dir("hello") / "2026").exists()  # emptied date folders go too


def test_delete_runs_leaves_a_run_being_created_alone(store, clock):
    store.create_run("hello", "fresh")
    assert store.delete_runs("hello", 0) == []
    clock.advance(minutes=5)
    assert store.delete_runs("hello", 0) == ["fresh"]


def test_sub_runs_live_under_the_parent_and_ids_clash_only_there(store):
    parent = store.create_run("parent", "p1")
    child = store.create_run("child", "c1", parent=parent)
    assert child.path == parent.path / "children" / "child_c1"
    assert child.log_dir == parent.log_dir / "children" / "child_c1"
    with pytest.raises(Conflict):
        store.create_run("child", "c1", parent=parent)
    attempt = store.new_attempt(child)
    assert re.fullmatch(r"attempt_\d{8}_\d{6}_\d{3}Z_[0-9a-f]{6}", attempt.path.name)
    with StatusWriter(attempt.status_path) as w:
        w.open(RunRecord(name="child", run_id="c1"))
    found = store.find_sub_run(parent, "c1")
    assert (found.dag_name, found.path, found.parent) == ("child", child.path, parent)
    with pytest.raises(NotFound):
        store.find_sub_run(parent, "c2")


def test_dag_json_and_outputs_are_written_whole(store):
    attempt = store.new_attempt(store.create_run("hello", "r1"))
    store.write_dag_json(attempt, {"name": "hello", "steps": [{"name": "a"}]})
    assert store.read_dag_json(attempt)["steps"] == [{"name": "a"}]
    store.write_outputs(attempt, {"dagName": "hello"}, {})
    assert not attempt.outputs_path.exists()  # only written when there are outputs
    store.write_outputs(attempt, {"dagName": "hello", "status": "succeeded"}, {"greeting": "hi"})
    body = orjson.loads(attempt.outputs_path.read_bytes())
    assert body == {"metadata": {"dagName": "hello", "status": "succeeded"}, "outputs": {"greeting": "hi"}}
    assert sorted(p.name for p in attempt.path.iterdir()) == ["dag.json", "outputs.json"]


def test_cancel_request_is_a_flag_file(store):
    attempt = store.new_attempt(store.create_run("hello", "r1"))
    assert not store.is_cancel_requested(attempt)
    store.request_cancel(attempt)
    store.request_cancel(attempt)  # asking twice is fine
    assert store.is_cancel_requested(attempt)
    assert (attempt.path / "CANCEL_REQUESTED").stat().st_size == 0


def test_new_run_id_is_a_time_ordered_uuid7():
    first = new_run_id()
    time.sleep(0.002)  # NOTE: only to cross a millisecond boundary, not to wait for anything
    second = new_run_id()
    for text in (first, second):
        parsed = uuid.UUID(text)
        assert (parsed.version, parsed.variant) == (7, uuid.RFC_4122)
        assert str(parsed) == text
    assert first[:13] < second[:13]
    ms = int(first.replace("-", "")[:12], 16)
    assert abs(ms / 1000 - time.time()) < 5
    assert len({new_run_id() for _ in range(1000)}) == 1000
