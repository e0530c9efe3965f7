"""Atomic whole-file writes and directory locks."""

from __future__ import annotations

import os
import time

import pytest

from dagu.errors import Conflict
from dagu.store.fsutil import atomic_write, dir_lock, fsync_dir


def test_atomic_write_creates_and_replaces_without_leaving_temp_files(tmp_path):
    path = tmp_path / "item.json"
    atomic_write(path, b"one")
    atomic_write(path, b"two")
    assert path.read_bytes() == b"two"
    assert [p.name for p in tmp_path.iterdir()] == ["item.json"]


def test_failed_atomic_write_keeps_the_old_file_and_no_temp(tmp_path):
    path = tmp_path / "item.json"
    atomic_write(path, b"old")
    with pytest.raises(TypeError):
        atomic_write(path, "not bytes")  # type: ignore[arg-type]
    assert path.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["item.json"]


def test_fsync_dir_accepts_a_folder(tmp_path):
    fsync_dir(tmp_path)


def test_held_dir_lock_times_out_with_conflict(tmp_path):
    lock = tmp_path / ".dagu_lock"
    with dir_lock(lock):
        assert lock.is_dir()
        with pytest.raises(Conflict, match="held by another process"):
            with dir_lock(lock, timeout_s=0.05, retry_s=0.01):
                pass
    assert not lock.exists()


def test_stale_dir_lock_is_taken_over(tmp_path):
    lock = tmp_path / ".dagu_lock"
    lock.mkdir()
    old = time.time() - 60
    os.utime(lock, (old, old))
    with dir_lock(lock, stale_s=30, timeout_s=1):
        assert lock.is_dir()
    assert not lock.exists()
