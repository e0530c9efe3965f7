"""The append-only status.jsonl: snapshot + small change lines, compaction, crash-tolerant replay."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import orjson
import pytest

from dagu.errors import NotFound
from dagu.status import NodeStatus, RunStatus
from dagu.store.records import NodeRecord, RunRecord
from dagu.store.status_log import StatusWriter, read_status, rewrite_status

T0 = datetime(2026, 11, 24, 18, 0, 0, tzinfo=UTC)


def new_record(steps: int) -> RunRecord:
    nodes = [
        NodeRecord(step={"name": f"step{i}", "commands": [{"command": "echo", "args": [str(i)]}], "depends": []})
        for i in range(steps)
    ]
    return RunRecord(
        name="chain",
        run_id="run1",
        attempt_id="abc123",
        status=RunStatus.RUNNING,
        nodes=nodes,
        on_exit=NodeRecord(step={"name": "onExit"}),
        started_at=T0,
    )


def run_steps(writer: StatusWriter, record: RunRecord, steps: range) -> None:
    """Three changes per step: started, an output set, finished."""
    for i in steps:
        at = T0 + timedelta(seconds=i)
        logs = {"stdout": f"/l/{i}.out", "stderr": f"/l/{i}.err"}
        writer.update_node(record, i, status=NodeStatus.RUNNING, started_at=at, **logs)
        writer.update_node(record, i, output_variables={"OUT": f"OUT={i}"})
        writer.update_node(record, i, status=NodeStatus.SUCCEEDED, finished_at=at, done_count=1, exit_code=0)


def lines(path) -> list[bytes]:
    return path.read_bytes().splitlines()


def test_closed_file_is_one_snapshot_line_that_reads_back_equal(tmp_path):
    path = tmp_path / "status.jsonl"
    record = new_record(20)
    writer = StatusWriter(path)
    writer.open(record)
    run_steps(writer, record, range(20))
    writer.update_node(record, "onExit", status=NodeStatus.SUCCEEDED)
    writer.update_run(record, status=RunStatus.SUCCEEDED, finished_at=T0 + timedelta(minutes=1))
    writer.close(record)

    assert len(lines(path)) == 1
    assert orjson.loads(lines(path)[0])["t"] == "snapshot"
    assert read_status(path) == record
    assert [p.name for p in tmp_path.iterdir()] == ["status.jsonl"]  # no temp file left


def test_reading_mid_run_rebuilds_the_writers_state(tmp_path):
    path = tmp_path / "status.jsonl"
    record = new_record(10)
    with StatusWriter(path) as writer:
        writer.open(record)
        run_steps(writer, record, range(4))
        writer.update_node(record, 4, status=NodeStatus.RUNNING, started_at=T0)
        writer.update_run(record, error="still going", pid=42)
        writer.update_node(record, "onExit", stdout="/l/exit.out")

        assert read_status(path) == record
        assert len(lines(path)) == 1 + 4 * 3 + 3  # snapshot + one line per change


def test_each_change_is_one_small_line_naming_only_what_changed(tmp_path):
    path = tmp_path / "status.jsonl"
    record = new_record(3)
    with StatusWriter(path) as writer:
        writer.open(record)
        writer.update_node(record, 1, status=NodeStatus.RUNNING, started_at=T0)
        writer.update_run(record, status=RunStatus.FAILED, error="x")
    node_line, run_line = (orjson.loads(line) for line in lines(path)[1:])
    assert node_line == {"t": "node", "key": 1, "set": {"status": 1, "startedAt": "2026-11-24T18:00:00.000Z"}}
    assert run_line == {"t": "run", "set": {"status": 2, "error": "x"}}


def test_file_grows_linearly_with_the_number_of_step_changes(tmp_path):
    def change_bytes(steps: int) -> int:
        path = tmp_path / f"status{steps}.jsonl"
        record = new_record(steps)
        with StatusWriter(path) as writer:
            writer.open(record)
            before = path.stat().st_size
            run_steps(writer, record, range(steps))
            return path.stat().st_size - before

    small, large = change_bytes(100), change_bytes(1000)
    # NOTE: a writer that re-wrote the whole record per change would make `large`
    # about 100x `small`; linear growth makes it about 10x.
    assert large < 11 * small
    assert large / 3000 < 200  # bytes per change line stay small


def test_reading_a_1000_step_run_with_3000_changes_takes_under_50_ms(tmp_path):
    path = tmp_path / "status.jsonl"
    record = new_record(1000)
    with StatusWriter(path) as writer:
        writer.open(record)
        run_steps(writer, record, range(1000))
    best = min(_timed(read_status, path) for _ in range(3))
    assert best < 0.05, f"read_status took {best * 1000:.1f} ms"
    assert read_status(path) == record


def test_truncated_last_line_is_ignored(tmp_path):
    path = tmp_path / "status.jsonl"
    record = new_record(3)
    with StatusWriter(path) as writer:
        writer.open(record)
        writer.update_node(record, 0, status=NodeStatus.RUNNING)
        expected = read_status(path)
        writer.update_node(record, 0, status=NodeStatus.FAILED, error="late")
    data = path.read_bytes()
    path.write_bytes(data[:-10])  # as if killed in the middle of the last write

    assert read_status(path) == expected


def test_truncated_final_snapshot_falls_back_to_the_previous_state(tmp_path):
    path = tmp_path / "status.jsonl"
    record = new_record(3)
    with StatusWriter(path) as writer:
        writer.open(record)
        writer.update_node(record, 2, status=NodeStatus.RUNNING)
        expected = read_status(path)
        writer.update_run(record, status=RunStatus.SUCCEEDED)
        writer.append_change({"t": "noop", "set": {}})
    snapshot = b'{"t":"snapshot","run":' + orjson.dumps(record.to_json())
    with open(path, "ab") as f:
        f.write(snapshot[: len(snapshot) // 2])
    expected.status = RunStatus.SUCCEEDED
    assert read_status(path) == expected


def test_garbage_lines_are_skipped(tmp_path):
    path = tmp_path / "status.jsonl"
    record = new_record(3)
    with StatusWriter(path) as writer:
        writer.open(record)
        with open(path, "ab") as f:
            f.write(b"\x00\xffnot json\n[1,2]\n{\"t\":\"node\",\"key\":99,\"set\":{\"status\":2}}\n")
            f.write(b'{"t":"node","key":"nope","set":{}}\n{"t":"run","set":"x"}\n\n{"t":"snapshot"}\n')
        writer.update_node(record, 1, status=NodeStatus.RUNNING)
    assert read_status(path) == record


def test_reopening_after_a_torn_line_starts_on_a_fresh_line(tmp_path):
    path = tmp_path / "status.jsonl"
    record = new_record(2)
    with StatusWriter(path) as writer:
        writer.open(record)
    with open(path, "ab") as f:
        f.write(b'{"t":"node","key":0,"se')
    record.status = RunStatus.ABORTED
    with StatusWriter(path) as writer:
        writer.open(record)
        writer.update_node(record, 0, status=NodeStatus.ABORTED)
    assert read_status(path) == record


def test_unknown_field_raises_and_writes_nothing(tmp_path):
    path = tmp_path / "status.jsonl"
    record = new_record(2)
    with StatusWriter(path) as writer:
        writer.open(record)
        size = path.stat().st_size
        with pytest.raises(ValueError):
            writer.update_node(record, 0, status=NodeStatus.RUNNING, colour="red")
        with pytest.raises(KeyError):
            writer.update_node(record, 5, status=NodeStatus.RUNNING)
    assert path.stat().st_size == size
    assert record.nodes[0].status is NodeStatus.NOT_STARTED


def test_changes_after_close_are_refused(tmp_path):
    record = new_record(1)
    writer = StatusWriter(tmp_path / "status.jsonl")
    writer.open(record)
    writer.close(record)
    with pytest.raises(RuntimeError, match="not open"):
        writer.update_run(record, error="late")


def test_legacy_dagu_file_reads_its_last_complete_line(tmp_path):
    path = tmp_path / "status.jsonl"
    first = {"name": "d", "dagRunId": "r", "status": 1, "nodes": []}
    last = {"name": "d", "dagRunId": "r", "status": 4, "nodes": []}
    path.write_bytes(orjson.dumps(first) + b"\n" + orjson.dumps(last) + b"\n" + b'{"name":"d","dagR')
    assert read_status(path).status is RunStatus.SUCCEEDED


def test_rewrite_status_replaces_the_file_with_one_snapshot(tmp_path):
    path = tmp_path / "status.jsonl"
    record = new_record(2)
    with StatusWriter(path) as writer:
        writer.open(record)
        writer.update_node(record, 0, status=NodeStatus.RUNNING)
    record.status = RunStatus.FAILED
    rewrite_status(path, record)
    assert len(lines(path)) == 1
    assert read_status(path) == record


@pytest.mark.parametrize("content", [None, b"", b"garbage\n", b'{"t":"snapshot","run":{"na'])
def test_file_without_a_complete_snapshot_is_not_found(tmp_path, content):
    path = tmp_path / "status.jsonl"
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(NotFound):
        read_status(path)


def _timed(fn, *args) -> float:
    start = time.perf_counter()
    fn(*args)
    return time.perf_counter() - start
