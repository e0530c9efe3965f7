"""The OpenAPI document is true: schemathesis drives a live server from it and finds no 5xx,
no undocumented status, no response that breaks its schema, no bad input accepted.

NOTE: `positive_data_acceptance` is left out: a spec can be schema-valid JSON and still
invalid YAML or an invalid workflow, which the server rightly refuses with a 400. The
stateful phase is left out too: it feeds request-body `dagRunId: ""` (meaning "make one")
into path parameters, building `//` URLs that address a different operation.
"""

from __future__ import annotations

import shutil
import subprocess

import pytest
from apiserver import live_server, wait_processes_gone

HELLO = "params: NAME=bob\nsteps:\n  - name: greet\n    command: echo hello ${NAME}\n    output: GREETING\n"


@pytest.mark.slow
@pytest.mark.timeout(300)  # ~40 operations x 3 phases against real run processes
def test_live_server_conforms_to_its_openapi_document(tmp_path):
    st = shutil.which("schemathesis") or shutil.which("st")
    assert st, "schemathesis CLI is a test dependency"
    with live_server(tmp_path / "home") as srv:
        srv.dag("hello", HELLO)
        srv.client.post("/dags/hello/start", json={"dagRunId": "seed1"})
        srv.wait_status("hello", "seed1", {"succeeded"})
        result = subprocess.run(
            [st, "run", f"{srv.url}/openapi.json", "--checks", "all",
             "--exclude-checks", "positive_data_acceptance", "--phases", "examples,coverage,fuzzing",
             "-n", "5", "--seed", "7", "--request-timeout", "30", "--suppress-health-check", "all",
             "--no-color"],
            cwd=tmp_path, capture_output=True, text=True, timeout=240,
        )
        wait_processes_gone(srv.home, 60)
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-2000:]
    assert "No issues found" in result.stdout or "passed" in result.stdout
