"""A status writer killed with SIGKILL at random moments always leaves a readable, consistent run."""

from __future__ import annotations

import random
import subprocess
import sys
import time

import pytest

from dagu.status import NodeStatus, RunStatus
from dagu.store.status_log import read_status

STEPS = 8

# The child runs one small DAG after another, each into its own status file:
# open, per step started/output/finished (durable), run finished, close. After
# each durable change it prints "<run> <step>", so the parent knows what must
# have reached the file, and "<run> close" just before compacting.
CHILD = f"""
import sys
import time
from dagu.status import NodeStatus, RunStatus
from dagu.store.records import NodeRecord, RunRecord, utc_now
from dagu.store.status_log import StatusWriter

folder = sys.argv[1]
for run in range(100000):
    record = RunRecord(name="crash", run_id=f"r{{run}}", status=RunStatus.RUNNING,
                       nodes=[NodeRecord(step={{"name": f"s{{i}}", "depends": [f"s{{i-1}}"] if i else []}})
                              for i in range({STEPS})])
    writer = StatusWriter(f"{{folder}}/status_{{run:05d}}.jsonl")
    writer.open(record)
    for i in range({STEPS}):
        writer.update_node(record, i, status=NodeStatus.RUNNING, started_at=utc_now())
        writer.update_node(record, i, output_variables={{"OUT": f"OUT={{i}}"}})
        writer.update_node(record, i, status=NodeStatus.SUCCEEDED, finished_at=utc_now(), done_count=1)
        print(run, i, flush=True)
    writer.update_run(record, status=RunStatus.SUCCEEDED, finished_at=utc_now())
    print(run, "close", flush=True)
    writer.close(record)
"""


@pytest.mark.parametrize("seed", range(12))
def test_status_survives_kill_9_at_a_random_moment(tmp_path, seed):
    rng = random.Random(seed)
    # Seeds 0, 3, 6, 9 kill after a random number of durable changes; the others
    # shortly after a "close" line, so the kill tends to land inside the compaction.
    if seed % 3 == 0:
        changes_left, closes_left, delay_s = rng.randint(1, 6 * STEPS), -1, 0.0
    else:
        changes_left, closes_left, delay_s = -1, rng.randint(1, 3), rng.uniform(0, 0.008)
    proc = subprocess.Popen([sys.executable, "-c", CHILD, str(tmp_path)], stdout=subprocess.PIPE, text=True)
    try:
        last = (0, -1)
        while changes_left and closes_left:
            line = proc.stdout.readline()
            assert line, f"child exited early with {proc.wait()}"
            run, step = line.split()
            if step == "close":
                closes_left -= 1
                last = (int(run), STEPS - 1)
            else:
                changes_left -= 1
                last = (int(run), int(step))
        # NOTE: this sleep picks the kill moment (the fsync before compaction takes
        # longer than the parent needs to react); it waits for nothing.
        time.sleep(delay_s)
    finally:
        proc.kill()
        proc.wait()
        proc.stdout.close()

    files = sorted(tmp_path.glob("status_*.jsonl"))
    assert files, "the child never created a status file"
    for number, path in enumerate(files):
        record = read_status(path)
        statuses = [n.status for n in record.nodes]
        done = statuses.count(NodeStatus.SUCCEEDED)
        # Steps finish in order: a prefix succeeded, at most one running, the rest untouched.
        assert statuses[:done] == [NodeStatus.SUCCEEDED] * done, statuses
        rest = statuses[done + 1 :]
        assert rest == [NodeStatus.NOT_STARTED] * len(rest), statuses
        if done < STEPS:
            assert statuses[done] in (NodeStatus.NOT_STARTED, NodeStatus.RUNNING), statuses
        for node in record.nodes[:done]:
            assert node.finished_at and node.done_count == 1
            assert node.output_variables == {"OUT": f"OUT={node.name[1:]}"}
        if number < len(files) - 1:
            assert (record.status, done) == (RunStatus.SUCCEEDED, STEPS)
            assert len(path.read_bytes().splitlines()) == 1  # compacted on close
        if number == last[0]:
            assert done >= last[1] + 1, "a change reported as durable is missing"
        if record.status is RunStatus.SUCCEEDED:
            assert done == STEPS
