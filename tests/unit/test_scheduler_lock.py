"""SchedulerLock: one holder per data folder, mtime touches, stale takeover, loss detection, release."""

from __future__ import annotations

import os
import threading
import time

import pytest

from dagu.store.scheduler_lock import SchedulerLock, scheduler_lock_dir

DEADLINE_S = 5.0


@pytest.fixture
def lock_path(tmp_path):
    return scheduler_lock_dir(tmp_path / "data")


@pytest.fixture
def locks():
    made: list[SchedulerLock] = []
    yield made
    for lock in made:
        lock.release()


def make(locks, path, **kwargs) -> SchedulerLock:
    lock = SchedulerLock(path, **kwargs)
    locks.append(lock)
    return lock


def age(path, seconds: float) -> None:
    then = time.time() - seconds
    os.utime(path, (then, then))


def test_lock_path_is_dagus():
    assert str(scheduler_lock_dir("/d")) == "/d/scheduler/locks/.dagu_lock"


def test_only_one_contender_holds_the_lock(locks, lock_path):
    a, b = make(locks, lock_path), make(locks, lock_path)
    assert a.try_acquire()
    assert not b.try_acquire()
    assert a.is_held() and not b.is_held()
    assert b.holder() == a.owner
    assert lock_path.is_dir()


def test_release_frees_the_lock_for_the_next(locks, lock_path):
    a, b = make(locks, lock_path), make(locks, lock_path)
    assert a.try_acquire()
    a.release()
    assert not lock_path.exists()
    assert b.try_acquire()
    a.release()  # no longer ours: leaves b's lock alone
    assert b.is_held()


def test_stale_lock_of_a_dead_holder_is_taken_over(locks, lock_path):
    lock_path.mkdir(parents=True)
    (lock_path / "owner").write_text("elsewhere:4242:dead\n")
    b = make(locks, lock_path, stale_after_s=1.0)
    assert not b.try_acquire()  # fresh: the holder may be alive
    age(lock_path, 10)
    assert b.try_acquire()
    assert b.holder() == b.owner
    assert list(lock_path.parent.iterdir()) == [lock_path]  # the old lock was cleared away


def test_holder_learns_when_another_took_its_lock_over(locks, lock_path):
    lost = threading.Event()
    a = make(locks, lock_path, stale_after_s=0.3, on_lost=lost.set)
    assert a.try_acquire()
    # What a contender does after this process stalled past the threshold.
    os.rename(lock_path, lock_path.with_name("old"))
    lock_path.mkdir()
    (lock_path / "owner").write_text("elsewhere:4242:new\n")
    assert lost.wait(DEADLINE_S), "the old holder never noticed it lost the lock"
    assert not a.is_held()
    a.release()
    assert lock_path.is_dir(), "releasing a lost lock removed the new holder's lock"


def test_a_live_holder_keeps_its_lock_fresh(locks, lock_path):
    a = make(locks, lock_path, stale_after_s=0.3)
    b = make(locks, lock_path, stale_after_s=0.3)
    assert a.try_acquire()
    age(lock_path, 0.25)
    first = lock_path.stat().st_mtime
    deadline = time.monotonic() + DEADLINE_S
    while lock_path.stat().st_mtime == first:
        assert time.monotonic() < deadline, "the holder never touched its lock"
        time.sleep(0.02)
    assert not b.try_acquire()


def test_a_fresh_takeover_guard_blocks_and_a_stale_one_is_cleared(locks, lock_path):
    lock_path.mkdir(parents=True)
    age(lock_path, 10)
    guard = lock_path.with_name(lock_path.name + ".takeover")
    guard.mkdir()
    b = make(locks, lock_path, stale_after_s=1.0)
    assert not b.try_acquire()  # someone else is in the middle of a takeover
    age(guard, 10)
    assert not b.try_acquire()  # clears the dead contender's guard...
    assert b.try_acquire()  # ...and wins the next round
    assert not guard.exists()


def test_lock_without_owner_file_goes_stale_like_any_other(locks, lock_path):
    lock_path.mkdir(parents=True)  # a holder that died between mkdir and writing its name
    b = make(locks, lock_path, stale_after_s=1.0)
    assert not b.try_acquire()
    age(lock_path, 10)
    assert b.try_acquire()
