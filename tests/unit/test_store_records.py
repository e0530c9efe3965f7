"""RunRecord/NodeRecord <-> the camelCase status-record JSON of service.md 4.4."""

from __future__ import annotations

from datetime import UTC, datetime

import orjson
import pytest

from dagu.status import NodeStatus, RunStatus, TriggerType
from dagu.store.records import (
    ChildRun,
    DagRef,
    NodeRecord,
    RunRecord,
    encode_node_fields,
    encode_run_fields,
    format_time,
    parse_time,
)

T0 = datetime(2026, 11, 24, 18, 7, 36, 437000, tzinfo=UTC)
T1 = datetime(2026, 11, 24, 18, 7, 39, 5000, tzinfo=UTC)


def full_record() -> RunRecord:
    node = NodeRecord(
        step={"name": "greet", "id": "g", "description": "say hi", "commands": [{"command": "echo"}], "output": "G"},
        stdout="/logs/greet.out",
        stderr="/logs/greet.err",
        started_at=T0,
        finished_at=T1,
        status=NodeStatus.SUCCEEDED,
        retried_at=T0,
        retry_count=2,
        done_count=3,
        repeated=True,
        error="boom",
        exit_code=0,
        children=[ChildRun("sub1", "A=1")],
        output_variables={"G": "G=hi"},
    )
    return RunRecord(
        name="hello",
        run_id="myrun1",
        attempt_id="5a3853",
        root=DagRef("top", "r0"),
        parent=DagRef("mid", "r1"),
        status=RunStatus.PARTIALLY_SUCCEEDED,
        worker_id="local",
        pid=18823,
        nodes=[node, NodeRecord(step={"name": "second", "depends": ["greet"]})],
        on_init=NodeRecord(step={"name": "onInit"}),
        on_exit=NodeRecord(step={"name": "onExit"}, status=NodeStatus.SKIPPED),
        on_success=NodeRecord(step={"name": "onSuccess"}),
        on_failure=NodeRecord(step={"name": "onFailure"}),
        on_cancel=NodeRecord(step={"name": "onCancel"}),
        on_wait=NodeRecord(step={"name": "onWait"}),
        created_at=T0,
        queued_at=T0,
        started_at=T0,
        finished_at=T1,
        log="/logs/run.log",
        error="one step failed",
        params="NAME=bob",
        params_list=["NAME=bob"],
        trigger_type=TriggerType.SCHEDULER,
    )


def test_record_with_every_field_set_survives_a_json_round_trip():
    record = full_record()
    data = orjson.loads(orjson.dumps(record.to_json()))
    assert RunRecord.from_json(data) == record


def test_json_uses_dagu_camel_case_keys_and_derived_labels():
    data = full_record().to_json()
    assert data["root"] == {"name": "top", "id": "r0"}
    assert data["parent"] == {"name": "mid", "id": "r1"}
    assert (data["dagRunId"], data["attemptId"], data["workerId"], data["pid"]) == ("myrun1", "5a3853", "local", 18823)
    assert (data["status"], data["statusLabel"]) == (6, "partially_succeeded")
    assert data["createdAt"] == 1795543656437  # unix milliseconds, as Dagu writes it
    assert data["startedAt"] == "2026-11-24T18:07:36.437Z"
    assert data["finishedAt"] == "2026-11-24T18:07:39.005Z"
    assert data["triggerType"] == "scheduler"
    assert data["onExit"]["status"] == 5
    node = data["nodes"][0]
    assert node["children"] == [{"dagRunId": "sub1", "params": "A=1"}]
    assert node["outputVariables"] == {"G": "G=hi"}
    assert (node["retryCount"], node["doneCount"], node["exitCode"], node["statusLabel"]) == (2, 3, 0, "succeeded")


def test_unset_node_times_are_dashes_and_unset_optional_fields_are_left_out():
    data = RunRecord(name="d", run_id="r", nodes=[NodeRecord(step={"name": "a"})]).to_json()
    assert data["root"] == {"name": "d", "id": "r"}
    for key in ("parent", "startedAt", "finishedAt", "queuedAt", "createdAt", "error", "onExit", "pid", "workerId"):
        assert key not in data
    node = data["nodes"][0]
    assert (node["startedAt"], node["finishedAt"], node["status"], node["stdout"]) == ("-", "-", 0, "")
    assert (node["retryCount"], node["doneCount"]) == (0, 0)  # counters are always there
    for key in ("retriedAt", "error", "exitCode", "children", "outputVariables"):
        assert key not in node


def test_dagu_1_30_status_line_is_read():
    line = {
        "root": {"name": "hello", "id": "myrun1"},
        "name": "hello",
        "dagRunId": "myrun1",
        "attemptId": "5a3853",
        "status": 4,
        "nodes": [
            {
                "step": {"name": "greet"},
                "stdout": "/x.out",
                "stderr": "/x.err",
                "startedAt": "2026-11-24T18:07:36Z",
                "finishedAt": "-",
                "status": 4,
                "approvedBy": "ann",
            }
        ],
        "createdAt": 1795543656455,
        "startedAt": "2026-11-24T18:07:36Z",
        "preconditions": [{"condition": "x"}],
    }
    record = RunRecord.from_json(line)
    assert record.status is RunStatus.SUCCEEDED
    assert record.nodes[0].started_at == datetime(2026, 11, 24, 18, 7, 36, tzinfo=UTC)
    assert record.nodes[0].finished_at is None
    assert record.created_at == datetime(2026, 11, 24, 18, 7, 36, 455000, tzinfo=UTC)
    # Keys we don't model are written back untouched.
    assert record.to_json()["preconditions"] == [{"condition": "x"}]
    assert record.nodes[0].to_json()["approvedBy"] == "ann"


def test_bad_values_fall_back_to_defaults_instead_of_raising():
    record = RunRecord.from_json({"name": 3, "status": "bogus", "pid": "x", "nodes": [{"status": 99}, "junk"]})
    assert (record.name, record.status, record.pid) == ("3", RunStatus.NOT_STARTED, 0)
    assert [n.status for n in record.nodes] == [NodeStatus.NOT_STARTED]


def test_status_given_as_a_label_is_accepted():
    assert RunRecord.from_json({"status": "partially_succeeded"}).status is RunStatus.PARTIALLY_SUCCEEDED


@pytest.mark.parametrize(
    "text, expected",
    [
        ("2026-11-24T18:07:36Z", datetime(2026, 11, 24, 18, 7, 36, tzinfo=UTC)),
        ("2026-11-24T19:07:36+01:00", datetime(2026, 11, 24, 18, 7, 36, tzinfo=UTC)),
        ("-", None),
        ("", None),
        (None, None),
        ("not a time", None),
    ],
)
def test_parse_time_reads_rfc3339_and_unset_markers(text, expected):
    assert parse_time(text) == expected


def test_format_time_converts_to_utc_with_milliseconds():
    from datetime import timedelta, timezone

    local = datetime(2026, 1, 2, 5, 4, 5, 123999, tzinfo=timezone(timedelta(hours=2)))
    assert format_time(local) == "2026-01-02T03:04:05.123Z"


def test_node_lookup_by_index_handler_key_and_name():
    record = full_record()
    assert record.node(1).name == "second"
    assert record.node("onExit") is record.on_exit
    assert record.find_node("second") == (1, record.nodes[1])
    assert record.find_node("onExit") == ("onExit", record.on_exit)
    with pytest.raises(KeyError):
        record.node(7)
    with pytest.raises(KeyError):
        RunRecord(name="d", run_id="r").node("onExit")


def test_encoding_a_change_rejects_fields_records_do_not_have():
    with pytest.raises(ValueError, match="no field 'colour'"):
        encode_node_fields({"colour": "red"})
    with pytest.raises(ValueError, match="one at a time"):
        encode_run_fields({"nodes": []})
    assert encode_node_fields({"status": NodeStatus.RUNNING, "started_at": T0}) == {
        "status": 1,
        "startedAt": "2026-11-24T18:07:36.437Z",
    }
    assert encode_run_fields({"finished_at": None}) == {"finishedAt": None}
