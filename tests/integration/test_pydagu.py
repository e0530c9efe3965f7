"""The PyPI client `pydagu` (0.2.4) against our live server: create, read, start, follow, update, delete."""

from __future__ import annotations

import httpx
import pytest
from apiserver import live_server, wait_processes_gone
from helpers import wait_for
from pydagu.http import DaguHttpClient
from pydagu.models import Dag, StartDagRun
from pydagu.models.step import Step


@pytest.fixture
def srv(tmp_path):
    with live_server(tmp_path / "home") as s:
        yield s
        wait_processes_gone(s.home)


def test_pydagu_creates_starts_follows_updates_and_deletes_a_dag(srv):
    client = DaguHttpClient("pyjob", srv.url + "/")
    dag = Dag(name="pyjob", description="from pydagu", params=["WHO=world"],
              steps=[Step(name="hello", command="echo hello ${WHO}"),
                     Step(name="after", command="echo done", depends="hello")])
    assert client.post_dag(dag) is None
    again = client.post_dag(dag)
    assert again is not None and again.code == "already_exists" and again.message
    assert client.get_dag_spec().description == "from pydagu"

    run = client.start_dag_run(StartDagRun(params="WHO=pydagu"))
    status = client.get_dag_run_status(run.dagRunId)
    assert status.dagRunId == run.dagRunId and status.statusLabel != "not_started"

    def finished():
        s = client.get_dag_run_status("latest")
        return s if s.statusLabel in ("succeeded", "failed", "aborted") else None

    final = wait_for(finished, "the pydagu run to finish", 30)
    assert final.statusLabel == "succeeded" and final.params == "WHO=pydagu"
    assert [n.step.name for n in final.nodes] == ["hello", "after"]
    assert final.startedAt is not None and final.nodes[0].finishedAt is not None

    with pytest.raises(httpx.HTTPStatusError) as info:
        client.start_dag_run(StartDagRun(dagRunId=run.dagRunId))
    assert info.value.response.status_code == 409

    assert client.update_dag(dag.model_copy(update={"description": "updated"})) is None
    assert client.get_dag_spec().description == "updated"
    client.delete_dag()
    with pytest.raises(httpx.HTTPStatusError) as info:
        client.get_dag_spec()
    assert info.value.response.status_code == 404


def test_pydagu_reads_a_queued_run_whose_times_are_unset(srv):
    srv.dag("later", "steps:\n  - command: echo later\n")
    run_id = srv.client.post("/dags/later/enqueue", json={}).json()["dagRunId"]
    status = DaguHttpClient("later", srv.url).get_dag_run_status(run_id)
    assert status.statusLabel == "queued" and status.startedAt is None and status.nodes[0].startedAt is None
    assert srv.client.get(f"/dag-runs/later/{run_id}/dequeue").status_code == 200
