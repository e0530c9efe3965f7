"""Two real scheduler processes on one data folder: exactly one fires; after `kill -9` of it, the other takes over.

Test hook: `run_scheduler` takes `fire`, `clock` and `timer`. Each process runs a
`python -c` script whose clock runs 60 times faster than real time on a shared
epoch (one cron minute per real second) with a timer scaled to match, and whose
`fire` appends `<pid> <slot>` to a file. The lock, its touches and its stale
threshold stay on real time, so the takeover is the real mechanism; the actor's
own timers (the lock retry among them) run on the fast clock, so the retry
interval is given in fast seconds.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from helpers import ROOT

SPEED = 60.0  # fake seconds per real second
STALE_S = 1.5
DEADLINE_S = 15.0

SCRIPT = """
import logging, os, sys, time
from datetime import datetime, timedelta, UTC
from actors.scheduler import run_scheduler
from actors.supervisor import call_later
from dagu.config import load_settings

logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(name)s: %(message)s")
speed, epoch = float(os.environ["TEST_SPEED"]), float(os.environ["TEST_EPOCH"])
base = datetime(2025, 1, 1, 10, 0, 0, tzinfo=UTC)
out = os.environ["TEST_FIRED"]

def clock():
    return base + timedelta(seconds=(time.time() - epoch) * speed)

def timer(delay_s, callback):
    return call_later(delay_s / speed, callback)

def fire(request):
    with open(out, "a") as f:
        f.write(f"{os.getpid()} {request.slot.isoformat()}\\n")

sys.exit(run_scheduler(load_settings(), fire=fire, clock=clock, timer=timer))
"""


def fired_lines(path: Path) -> list[tuple[int, str]]:
    if not path.exists():
        return []
    lines = [line.split() for line in path.read_text().splitlines() if line.strip()]
    return [(int(pid), slot) for pid, slot in lines]


def wait_for(condition, what: str, deadline_s: float = DEADLINE_S) -> None:
    deadline = time.monotonic() + deadline_s
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"within {deadline_s:g}s, never: {what}")
        time.sleep(0.05)


@pytest.fixture
def home(tmp_path):
    (tmp_path / "dags").mkdir()
    (tmp_path / "dags" / "every.yaml").write_text('schedule: "* * * * *"\nsteps:\n  - command: "true"\n')
    return tmp_path


@pytest.fixture
def spawn(home):
    procs: list[subprocess.Popen] = []
    env = {k: v for k, v in os.environ.items() if not k.startswith("DAGU_")}
    env.update(
        PYTHONPATH=str(ROOT),
        DAGU_HOME=str(home),
        DAGU_TZ="UTC",
        DAGU_SCHEDULER_LOCK_STALE_THRESHOLD=str(STALE_S),
        DAGU_SCHEDULER_LOCK_RETRY_INTERVAL=str(0.2 * SPEED),  # 0.2 s of real time
        DAGU_SCHEDULER_ZOMBIE_DETECTION_INTERVAL="0",
        TEST_SPEED=str(SPEED),
        TEST_EPOCH=str(time.time()),
        TEST_FIRED=str(home / "fired.txt"),
    )

    def start(name: str) -> subprocess.Popen:
        err = open(home / f"{name}.err", "w")
        proc = subprocess.Popen([sys.executable, "-c", SCRIPT], env=env, cwd=home, stderr=err, stdout=subprocess.DEVNULL)
        err.close()
        procs.append(proc)
        return proc

    yield start
    for proc in procs:
        if proc.poll() is None:
            proc.kill()
        proc.wait(timeout=DEADLINE_S)


def test_one_scheduler_fires_and_the_standby_takes_over_after_kill_9(home, spawn):
    fired = home / "fired.txt"
    first = spawn("first")
    wait_for(lambda: any(pid == first.pid for pid, _ in fired_lines(fired)), "the first scheduler fired")
    second = spawn("second")
    wait_for(lambda: "standby" in (home / "second.err").read_text(), "the second scheduler went to standby")
    count = len(fired_lines(fired))
    wait_for(lambda: len(fired_lines(fired)) >= count + 3, "three more slots fired while both ran")
    lines = fired_lines(fired)
    assert {pid for pid, _ in lines} == {first.pid}, "the standby fired while the holder was alive"

    first.send_signal(signal.SIGKILL)
    first.wait(timeout=DEADLINE_S)
    last_of_first = fired_lines(fired)[-1][1]
    wait_for(lambda: any(pid == second.pid for pid, _ in fired_lines(fired)), "the standby took over and fired")
    lines = fired_lines(fired)
    slots = [slot for _, slot in lines]
    assert len(slots) == len(set(slots)), f"a slot fired twice: {lines}"
    assert slots == sorted(slots)
    assert min(slot for pid, slot in lines if pid == second.pid) > last_of_first
    assert "taking it over" in (home / "second.err").read_text()

    second.send_signal(signal.SIGTERM)
    assert second.wait(timeout=3.0) == 0
    assert not (home / "data" / "scheduler" / "locks" / ".dagu_lock").exists(), "a clean stop left the lock behind"
