"""Heartbeat files: name, 8-byte content, rewriting, liveness and cleanup."""

from __future__ import annotations

import os
import re
import struct
import time

import pytest

from dagu.errors import Conflict
from dagu.store.proc import Heartbeat, find_heartbeat, is_alive, list_alive

NOW = 1_795_543_690.0  # 2026-11-24T18:08:10Z


class FakeClock:
    """Unix seconds that tests move by hand."""

    def __init__(self, now: float = NOW):
        self.now = now

    def __call__(self) -> float:
        return self.now


def content(path) -> int:
    data = path.read_bytes()
    assert len(data) == 8
    return struct.unpack(">Q", data)[0]


def wait_for(condition, what: str, timeout_s: float = 5.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting until {what}")
        time.sleep(0.005)


def test_heartbeat_file_is_named_for_the_run_and_holds_the_start_time(tmp_path):
    with Heartbeat(tmp_path, "long", "long", "longrun1", clock=FakeClock()) as beat:
        assert re.fullmatch(r"proc_20261124_180810Z_longrun1\.proc", beat.path.name)
        assert beat.path.parent == tmp_path / "long" / "long"
        assert content(beat.path) == int(NOW)


def test_heartbeat_rewrites_eight_bytes_every_interval(tmp_path):
    clock = FakeClock()
    with Heartbeat(tmp_path, "q", "dag", "r1", interval_s=0.01, clock=clock) as beat:
        clock.now = NOW + 100
        wait_for(lambda: content(beat.path) == int(NOW) + 100, "the heartbeat wrote the new time")
        assert beat.path.stat().st_size == 8


def test_close_stops_promptly_and_removes_the_file_and_empty_folders(tmp_path):
    beat = Heartbeat(tmp_path, "q", "dag", "r1", interval_s=3600).start()
    path = beat.path
    started = time.monotonic()
    beat.close()
    assert time.monotonic() - started < 1.0  # NOTE: the thread waits on an Event, not a sleep
    assert not path.exists()
    assert list(tmp_path.iterdir()) == []
    beat.close()  # twice is harmless


def test_close_keeps_folders_other_runs_still_use(tmp_path):
    with Heartbeat(tmp_path, "q", "dag", "r1", interval_s=3600):
        with Heartbeat(tmp_path, "q", "dag", "r2", interval_s=3600) as second:
            pass
        assert not second.path.exists()
        assert (tmp_path / "q" / "dag").is_dir()


def test_same_run_twice_in_one_second_is_a_conflict(tmp_path):
    clock = FakeClock()
    with Heartbeat(tmp_path, "q", "dag", "r1", interval_s=3600, clock=clock):
        with pytest.raises(Conflict, match="already exists"):
            Heartbeat(tmp_path, "q", "dag", "r1", clock=clock).start()


def test_liveness_follows_the_embedded_time_and_the_mtime(tmp_path):
    path = tmp_path / "p.proc"
    path.write_bytes(struct.pack(">Q", int(NOW)))
    old = NOW - 1000
    os.utime(path, (old, old))
    assert is_alive(path, now=NOW + 10)
    assert not is_alive(path, now=NOW + 46)
    assert not is_alive(path, now=NOW + 20, stale_after_s=15)
    os.utime(path, (NOW + 40, NOW + 40))  # a fresh mtime alone is enough
    assert is_alive(path, now=NOW + 46)


@pytest.mark.parametrize("data", [b"", b"\x00" * 7, struct.pack(">Q", int(NOW) + 301)])
def test_short_files_and_far_future_times_are_stale(tmp_path, data):
    path = tmp_path / "p.proc"
    path.write_bytes(data)
    assert not is_alive(path, now=NOW)


def test_missing_file_is_not_alive(tmp_path):
    assert not is_alive(tmp_path / "gone.proc")


def test_list_alive_filters_by_group_and_skips_stale_files(tmp_path):
    clock = FakeClock()
    with (
        Heartbeat(tmp_path, "q1", "a", "r1", interval_s=3600, clock=clock),
        Heartbeat(tmp_path, "q1", "b", "r2", interval_s=3600, clock=clock),
        Heartbeat(tmp_path, "q2", "c", "r3", interval_s=3600, clock=clock),
    ):
        stale = tmp_path / "q1" / "a" / "proc_20200101_000000Z_dead.proc"
        stale.write_bytes(struct.pack(">Q", 1_577_836_800))
        os.utime(stale, (1_577_836_800, 1_577_836_800))

        assert sorted(e.run_id for e in list_alive(tmp_path)) == ["r1", "r2", "r3"]
        assert sorted((e.group, e.dag_name, e.run_id) for e in list_alive(tmp_path, "q1")) == [
            ("q1", "a", "r1"),
            ("q1", "b", "r2"),
        ]
        assert list_alive(tmp_path, "none") == []
        assert stale.exists()
        list_alive(tmp_path, remove_stale=True)
        assert not stale.exists()


def test_find_heartbeat_looks_in_every_group(tmp_path):
    with Heartbeat(tmp_path, "queue-x", "dag", "r1", interval_s=3600) as beat:
        assert find_heartbeat(tmp_path, "dag", "r1") == beat.path
        assert find_heartbeat(tmp_path, "dag", "r2") is None
        assert find_heartbeat(tmp_path, "other", "r1") is None
    assert find_heartbeat(tmp_path, "dag", "r1") is None
