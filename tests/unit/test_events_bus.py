"""The event bus over real unix datagram sockets: publishers, subscribers, stale and slow receivers."""

from __future__ import annotations

import socket
import time

import pytest

from dagu.events import EventPublisher, EventSubscriber, publish_once, queue_event, run_event, step_event
from dagu.status import NodeStatus, RunStatus


def test_a_subscriber_receives_what_a_publisher_sends_in_order(tmp_path):
    directory = tmp_path / "events"
    with EventSubscriber(directory) as sub, EventPublisher(directory) as pub:
        assert pub.publish(run_event("etl", "r1", RunStatus.RUNNING)) == 1
        assert pub.publish(step_event("etl", "r1", "load", NodeStatus.SUCCEEDED, root=("root", "r0"))) == 1
        got = sub.receive()
    assert [(e["type"], e.get("step"), e["statusLabel"]) for e in got] == [("run", None, "running"), ("step", "load", "succeeded")]
    assert got[1]["rootDagName"] == "root" and got[1]["rootDagRunId"] == "r0"
    assert "rootDagRunId" not in got[0]


def test_every_subscriber_gets_each_event(tmp_path):
    directory = tmp_path / "events"
    with EventSubscriber(directory) as one, EventSubscriber(directory) as two:
        assert publish_once(directory, queue_event("etl", "r1", "etl", "enqueued")) == 2
        assert [e["action"] for e in one.receive()] == ["enqueued"]
        assert [e["statusLabel"] for e in two.receive()] == ["queued"]


def test_publishing_with_nobody_listening_sends_nothing_and_creates_nothing(tmp_path):
    directory = tmp_path / "events"
    with EventPublisher(directory) as pub:
        assert pub.publish(run_event("etl", "r1", RunStatus.RUNNING)) == 0
    assert not directory.exists()


def test_a_socket_left_by_a_dead_server_is_removed_by_the_next_publish(tmp_path):
    directory = tmp_path / "events"
    directory.mkdir()
    stale = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    stale.bind(str(directory / "999999-abcdef.sock"))
    stale.close()  # the file stays, nobody is bound: what a killed server leaves behind
    with EventSubscriber(directory) as live, EventPublisher(directory) as pub:
        assert pub.publish(run_event("etl", "r1", RunStatus.RUNNING)) == 1
        assert sorted(p.name for p in directory.iterdir()) == [live.name]
        assert len(live.receive()) == 1


def test_a_closed_subscriber_removes_its_socket_file(tmp_path):
    sub = EventSubscriber(tmp_path / "events")
    assert sub.path.exists()
    sub.close()
    sub.close()
    assert list((tmp_path / "events").iterdir()) == []


def test_a_data_folder_too_deep_for_a_socket_path_still_works(tmp_path):
    directory = tmp_path.joinpath(*["deep-folder-name"] * 8, "events")
    assert len(str(directory)) > 108  # more than sun_path holds
    with EventSubscriber(directory) as sub, EventPublisher(directory) as pub:
        assert sub.path.parent == directory and sub.path.exists()
        assert pub.publish(run_event("etl", "r1", RunStatus.SUCCEEDED)) == 1
        assert sub.receive()[0]["statusLabel"] == "succeeded"


def test_a_subscriber_that_stops_reading_costs_one_bounded_wait_then_none(tmp_path):
    directory = tmp_path / "events"
    with EventSubscriber(directory) as sub, EventPublisher(directory, wait_s=0.3) as pub:
        started = time.monotonic()
        delivered = sum(pub.publish(run_event("etl", f"r{i}", RunStatus.RUNNING)) for i in range(200))
        elapsed = time.monotonic() - started
        assert 0 < delivered < 200  # the kernel queue filled up: the rest were dropped
        # NOTE: one wait of 0.3 s for the first refused event, then no more waiting.
        assert 0.25 < elapsed < 2.0, elapsed
        assert len(sub.receive(limit=1000)) == delivered
        assert pub.publish(run_event("etl", "again", RunStatus.RUNNING)) == 1  # drained: it gets events again


def test_garbage_datagrams_are_skipped(tmp_path):
    directory = tmp_path / "events"
    with EventSubscriber(directory) as sub:
        raw = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        try:
            for data in (b"not json", b"[1,2]", b'{"type":"other"}', b'{"type":"run","dagName":"x"}'):
                raw.sendto(data, str(sub.path))
        finally:
            raw.close()
        assert sub.receive() == [{"type": "run", "dagName": "x"}]


def test_a_dequeued_item_event_carries_no_status(tmp_path):
    event = queue_event("etl", "r1", "etl", "dequeued")
    assert event["action"] == "dequeued" and "status" not in event


@pytest.mark.parametrize("status", list(RunStatus))
def test_run_events_name_every_status_like_the_api(status):
    event = run_event("etl", "r1", status)
    assert (event["status"], event["statusLabel"]) == (int(status), status.label)


def test_wake_makes_a_waiting_select_return_without_an_event(tmp_path):
    import select
    import threading

    with EventSubscriber(tmp_path) as sub:
        threading.Timer(0.05, sub.wake).start()
        assert select.select([sub], [], [], 5)[0] == [sub]
        assert sub.receive() == []
