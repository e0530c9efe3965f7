"""QueueStore: item files, dispatch order, collisions, removal and dequeue (service.md 4.6)."""

from __future__ import annotations

import os
import re
import threading
from datetime import UTC, datetime

import orjson
import pytest

from dagu.errors import InvalidRequest
from dagu.store.queue import QueueStore

T0 = datetime(2026, 11, 24, 18, 8, 10, tzinfo=UTC)
NS0 = int(T0.timestamp()) * 1_000_000_000


def test_push_writes_dagu_named_item_with_its_content(tmp_path):
    store = QueueStore(tmp_path)
    item = store.push("long", "long", "longq1", now=NS0 + 707372642)
    assert item.path == tmp_path / "long" / "item_low_20261124_180810_707372642Z_longq1.json"
    assert orjson.loads(item.path.read_bytes()) == {
        "fileName": "item_low_20261124_180810_707372642Z_longq1.json",
        "dagRun": {"name": "long", "id": "longq1"},
        "queuedAt": "2026-11-24T18:08:10.707372642Z",
    }
    assert item.queued_at == T0.replace(microsecond=707372)
    assert os.listdir(tmp_path / "long") == [item.path.name]  # no temp file left behind


def test_items_lists_high_before_low_and_each_fifo(tmp_path):
    store = QueueStore(tmp_path)
    store.push("q", "d", "low-old", now=NS0 + 1)
    store.push("q", "d", "high-new", priority="high", now=NS0 + 5)
    store.push("q", "d", "low-new", now=NS0 + 3_000_000_000)
    store.push("q", "d", "high-old", priority="high", now=NS0 + 2)
    store.push("q", "d", "low-mid", now=NS0 + 10)
    assert [i.run_id for i in store.items("q")] == ["high-old", "high-new", "low-old", "low-mid", "low-new"]


def test_pushes_in_the_same_nanosecond_keep_push_order(tmp_path):
    store = QueueStore(tmp_path, clock_ns=lambda: NS0)
    ids = [f"run{n}" for n in (9, 3, 7, 1)]  # not sorted: order must come from the stamp
    for run_id in ids:
        store.push("q", "d", run_id)
    assert [i.run_id for i in store.items("q")] == ids


def test_two_pushes_of_one_run_in_the_same_nanosecond_do_not_overwrite(tmp_path):
    # NOTE: two stores, as two processes would have: the in-process stamp counter
    # cannot help, only the no-clobber link keeps both items.
    a, b = QueueStore(tmp_path), QueueStore(tmp_path)
    first = a.push("q", "d", "same", now=NS0)
    second = b.push("q", "d", "same", now=NS0)
    assert first.path != second.path
    assert len(store_items := a.items("q")) == 2
    assert [i.path for i in store_items] == [first.path, second.path]


def test_concurrent_pushes_all_land(tmp_path):
    store = QueueStore(tmp_path, clock_ns=lambda: NS0)
    threads = [threading.Thread(target=store.push, args=("q", "d", f"r{n}")) for n in range(20)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(i.run_id for i in store.items("q")) == sorted(f"r{n}" for n in range(20))


def test_items_skips_unreadable_and_foreign_files(tmp_path):
    store = QueueStore(tmp_path)
    good = store.push("q", "d", "good", now=NS0)
    folder = tmp_path / "q"
    (folder / "item_low_20261124_180810_000000001Z_torn.json").write_bytes(b'{"fileName": "item_lo')
    (folder / "item_low_20261124_180810_000000002Z_other.json").write_bytes(
        orjson.dumps({"dagRun": {"name": "d", "id": "not-other"}})
    )
    (folder / "queue_123_abcd.tmp").write_bytes(b"half")
    (folder / "notes.txt").write_text("x")
    assert store.items("q") == [good]


def test_remove_deletes_and_tolerates_a_missing_item(tmp_path):
    store = QueueStore(tmp_path)
    item = store.push("q", "d", "r1")
    assert store.remove(item) is True
    assert store.remove(item) is False
    assert store.items("q") == []


def test_find_looks_up_by_run_id_and_optionally_dag(tmp_path):
    store = QueueStore(tmp_path)
    store.push("q", "a", "r1")
    item = store.push("q", "b", "r2")
    assert store.find("q", "r2") == item
    assert store.find("q", "r2", dag_name="b") == item
    assert store.find("q", "r2", dag_name="a") is None
    assert store.find("other", "r2") is None


def test_pop_first_takes_the_head_in_dispatch_order(tmp_path):
    store = QueueStore(tmp_path)
    store.push("q", "d", "low1", now=NS0)
    store.push("q", "d", "high1", priority="high", now=NS0 + 9)
    assert store.pop_first("q").run_id == "high1"
    assert store.pop_first("q").run_id == "low1"
    assert store.pop_first("q") is None


def test_pop_first_moves_past_an_item_someone_else_removed(tmp_path):
    store = QueueStore(tmp_path)
    head = store.push("q", "d", "r1", now=NS0)
    store.push("q", "d", "r2", now=NS0 + 1)
    other = QueueStore(tmp_path)
    items = store.items("q")
    other.remove(head)  # the other dequeuer wins the head between our list and unlink
    assert store.remove(items[0]) is False
    assert store.pop_first("q").run_id == "r2"


def test_queue_names_lists_queue_folders(tmp_path):
    store = QueueStore(tmp_path / "queue")
    assert store.queue_names() == []
    store.push("zeta", "d", "r1")
    store.push("alpha", "d", "r2")
    (tmp_path / "queue" / ".hidden").mkdir()
    assert store.queue_names() == ["alpha", "zeta"]


@pytest.mark.parametrize("queue", ["", ".", "..", "a/b", ".hidden"])
def test_bad_queue_names_are_rejected(tmp_path, queue):
    with pytest.raises(InvalidRequest, match="invalid queue name"):
        QueueStore(tmp_path).push(queue, "d", "r1")


def test_bad_priority_and_run_id_are_rejected(tmp_path):
    store = QueueStore(tmp_path)
    with pytest.raises(InvalidRequest, match="priority"):
        store.push("q", "d", "r1", priority="urgent")
    with pytest.raises(InvalidRequest, match="dag-run ID"):
        store.push("q", "d", "../r1")


def test_item_names_match_dagus_pattern(tmp_path):
    item = QueueStore(tmp_path).push("q", "d", "0195-abc_1", priority="high")
    assert re.fullmatch(r"item_high_\d{8}_\d{6}_\d{9}Z_0195-abc_1\.json", item.path.name)
