"""The service registry: an entry while a service runs, inactive when stale, gone when it stops."""

from __future__ import annotations

import os
import time

from dagu.store.service_registry import STALE_AFTER_S, instances, register


def test_an_instance_is_listed_while_registered_and_gone_after_close(tmp_path):
    reg = register(tmp_path, "coordinator", host="127.0.0.1", port=50055)
    [doc] = instances(tmp_path, "coordinator")
    assert (doc["host"], doc["port"], doc["pid"], doc["status"]) == ("127.0.0.1", 50055, os.getpid(), "active")
    reg.close()
    assert instances(tmp_path, "coordinator") == []


def test_an_entry_nobody_refreshes_is_inactive(tmp_path):
    reg = register(tmp_path, "coordinator", host="h", port=1)
    old = time.time() - STALE_AFTER_S - 5
    os.utime(reg.path, (old, old))
    assert [d["status"] for d in instances(tmp_path, "coordinator")] == ["inactive"]
    reg.close()


def test_a_broken_entry_is_skipped(tmp_path):
    folder = tmp_path / "service-registry" / "coordinator"
    folder.mkdir(parents=True)
    (folder / "x.json").write_text("{not json")
    assert instances(tmp_path, "coordinator") == []
