"""Corner cases of the format run through the real Dagu binary and through ours: same statuses, same outputs.

The workflows use camelCase keys so the 1.30 binary accepts them. Skips (with the
reason) when the reference binary is not installed; `.ci/run` installs it.
"""

from __future__ import annotations

import os
import subprocess
import textwrap
from pathlib import Path

import pytest

from dagu.store import read_status
from helpers import reference_dagu, run_dagu

REF = reference_dagu()
pytestmark = pytest.mark.skipif(REF is None, reason="reference Dagu binary not installed (npm @dagu-org/dagu-linux-x64)")

WORKFLOWS = {
    "continue_and_outputs": """
        steps:
          - name: make
            command: 'echo ''{"a": {"b": [10, 20]}}'''
            output: DOC
          - name: use
            command: echo "${DOC.a.b[1]}"
            output: PICKED
          - name: soft_fail
            command: "echo 'WARN: soft'; exit 3"
            continueOn:
              exitCode: [3]
          - name: after
            command: echo "after $PICKED"
            output: AFTER
    """,
    "preconditions_and_skips": """
        type: graph
        params: "MODE=fast"
        steps:
          - name: yes_step
            command: echo yes
            preconditions:
              - condition: "${MODE}"
                expected: "re:^fa"
          - name: no_step
            command: echo no
            preconditions:
              - condition: "${MODE}"
                expected: slow
          - name: after_no
            depends: no_step
            command: echo never
          - name: tolerant
            command: echo x
            preconditions: "false"
            continueOn:
              skipped: true
          - name: after_tolerant
            depends: tolerant
            command: echo ran
            output: RAN
    """,
    "graph_failures": """
        type: graph
        steps:
          - name: bad
            command: "exit 2"
          - name: child_of_bad
            depends: bad
            command: echo never
          - name: grandchild
            depends: child_of_bad
            command: echo never
          - name: good
            command: echo fine
            output: FINE
          - name: join
            depends: [good, child_of_bad]
            command: echo never
    """,
    "retry_and_repeat": """
        env:
          - COUNTER: /tmp/dagu-compare-${DAG_RUN_ID}
        steps:
          - name: flaky
            command: 'n=$(cat $COUNTER 2>/dev/null || echo 0); n=$((n+1)); echo $n > $COUNTER; [ $n -ge 2 ]'
            retryPolicy:
              limit: 3
              intervalSec: 0
          - name: poll
            command: 'n=$(cat $COUNTER); echo $((n+1)) > $COUNTER; echo $((n+1))'
            output: N
            repeatPolicy:
              condition: "${N}"
              expected: "4"
              intervalSec: 0
              limit: 5
          - name: tidy
            command: 'rm -f $COUNTER'
    """,
    "params_env": """
        params: "first NAME=world"
        env:
          - GREETING: hello
          - PHRASE: "${GREETING} ${NAME}"
        steps:
          - name: show
            command: echo "$1 ${PHRASE}"
            output: SHOWN
          - name: mark_success
            command: "exit 1"
            continueOn:
              failure: true
              markSuccess: true
          - name: last
            command: echo "${SHOWN} done"
            output: LAST
    """,
}


def _their_status(home: Path) -> dict:
    files = sorted((home / "data" / "dag-runs").rglob("status.jsonl"))
    assert files, f"the reference binary wrote no status under {home}"
    rec = read_status(files[-1])
    return _summary(rec)


def _summary(rec) -> dict:
    return {
        "run": int(rec.status),
        "steps": {n.name: int(n.status) for n in rec.nodes},
        # Dagu 1.30 also stores internal DAGU_CONTINUE_ON.* entries; they are not user outputs.
        "outputs": {k: v for n in rec.nodes for k, v in n.output_variables.items() if not k.startswith("DAGU_")},
    }


@pytest.mark.parametrize("name", sorted(WORKFLOWS))
def test_same_statuses_and_outputs_as_the_real_dagu(name, tmp_path):
    path = tmp_path / f"{name}.yaml"
    path.write_text(textwrap.dedent(WORKFLOWS[name]))
    their_home = tmp_path / "theirs"
    env = {k: v for k, v in os.environ.items() if not k.startswith("DAGU_")}
    env.update({"DAGU_HOME": str(their_home), "DISABLE_PROGRESS": "1"})
    theirs = subprocess.run([REF, "start", str(path)], env=env, capture_output=True, text=True, timeout=120, cwd=tmp_path)
    ours = run_dagu("start", str(path), home=tmp_path / "ours", cwd=tmp_path, timeout=120)
    assert ours.returncode == theirs.returncode, ours.stdout + ours.stderr + theirs.stdout + theirs.stderr
    our_files = sorted((tmp_path / "ours" / "data" / "dag-runs").rglob("status.jsonl"))
    assert _summary(read_status(our_files[-1])) == _their_status(their_home)
