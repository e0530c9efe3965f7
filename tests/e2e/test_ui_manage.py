"""Managing DAGs and runs from the UI in headless Chromium: rename a DAG (a bad or taken name is
refused in the dialog and nothing changes), delete a DAG after typing its name, reschedule a
finished run into a new run from the old run's DAG snapshot and params, and the roles that are
offered none (viewer) or only some (operator) of these actions while the API refuses anyway."""

from __future__ import annotations

import re
import textwrap

import pytest
from ui_support import ADMIN, VIEWER, admin_client, login, shot

from helpers import wait_for

pytestmark = pytest.mark.slow

OPERATOR = ("otto", "operatorpass123")
GREETER = """
    description: Greets with a parameter
    params: WHO=nobody
    steps:
      - name: greet
        command: echo "hello ${WHO}"
        output: GREETING
      - name: done
        depends: [greet]
        command: echo done
"""


def test_a_dag_renamed_from_its_page_is_listed_under_the_new_name_and_the_old_address_is_gone(page, server, home):
    _create_dag(server, "report-a", GREETER)
    login(page, ADMIN, "/dags/report-a")
    page.wait_for_selector("#graph")
    shot(page, "dag-manage-actions", full_page=False)
    page.click("#btn-rename")
    page.fill("#rename-name", "report-b.yaml")  # the suffix is dropped, as the API does
    shot(page, "dag-rename-dialog", full_page=False)
    page.click("#rename-ok")
    page.wait_for_url(re.compile(r"/dags/report-b$"))
    page.wait_for_selector(".toast:has-text('Renamed report-a to report-b')")
    assert page.locator("h1").inner_text().startswith("report-b")
    assert (home / "dags" / "report-b.yaml").is_file()
    assert not (home / "dags" / "report-a.yaml").exists()
    page.goto("/dags")
    assert page.locator("#dag-table tr[data-dag=report-b]").count() == 1
    assert page.locator("#dag-table tr[data-dag=report-a]").count() == 0
    old = page.goto("/dags/report-a")
    assert old is not None and old.status == 404
    assert "not found" in page.locator("main").inner_text().lower()


def test_an_invalid_or_taken_new_name_shows_the_error_and_changes_nothing(page, server, home):
    _create_dag(server, "keep-me", GREETER)
    before = {p.name: p.read_text() for p in (home / "dags").iterdir()}
    renames: list[str] = []
    page.on("request", lambda r: renames.append(r.url) if r.url.endswith("/rename") else None)
    login(page, ADMIN, "/dags/keep-me")
    page.click("#btn-rename")
    page.fill("#rename-name", "bad name!")
    page.click("#rename-ok")
    error = page.locator("#rename-error")
    error.wait_for()
    assert "not a valid file name" in error.inner_text()
    assert page.locator("#rename-name").get_attribute("aria-invalid") == "true"
    assert page.locator("#rename-dialog").evaluate("d => d.open")
    assert renames == []  # refused in the browser, before any request
    # A valid name that is taken gets through to the server, whose message is shown as it is.
    page.fill("#rename-name", "hello")
    assert error.is_hidden()  # typing clears the old error
    page.click("#rename-ok")
    page.wait_for_selector("#rename-error:has-text('DAG hello already exists')")
    assert len(renames) == 1
    assert page.locator("#rename-dialog").evaluate("d => d.open")
    shot(page, "dag-rename-error", full_page=False)
    page.click("#rename-cancel")
    assert page.url.endswith("/dags/keep-me")
    assert {p.name: p.read_text() for p in (home / "dags").iterdir()} == before


def test_a_dag_deleted_from_its_page_is_gone_from_the_list_and_the_disk(page, server, home):
    _create_dag(server, "doomed", GREETER)
    login(page, ADMIN, "/dags/doomed")
    page.click("#btn-delete")
    ok = page.locator("#delete-ok")
    assert ok.is_disabled()
    page.fill("#delete-confirm", "doome")
    assert ok.is_disabled()  # only the exact file name arms the button
    page.fill("#delete-confirm", "doomed")
    assert ok.is_enabled()
    shot(page, "dag-delete-dialog", full_page=False)
    ok.click()
    page.wait_for_url(re.compile(r"/dags$"))
    page.wait_for_selector(".toast:has-text('Deleted doomed')")
    assert page.locator("#dag-table tr[data-dag=doomed]").count() == 0
    assert page.locator("#dag-table tr[data-dag=hello]").count() == 1
    assert not (home / "dags" / "doomed.yaml").exists()
    gone = page.goto("/dags/doomed")
    assert gone is not None and gone.status == 404


def test_a_finished_run_is_rescheduled_into_a_new_run_from_its_snapshot_and_params(page, server):
    _create_dag(server, "greeter", GREETER)
    old_id = _finished_run(server, "greeter", "WHO=Grace")
    # NOTE: the file now says something else, so a rerun of the file instead of the snapshot would fail the
    # output check below.
    api = admin_client(server)
    try:
        changed = textwrap.dedent(GREETER).replace('echo "hello ${WHO}"', 'echo "changed ${WHO}"')
        assert api.put("/dags/greeter/spec", json={"spec": changed}).json() == {"errors": []}
    finally:
        api.close()
    login(page, ADMIN, f"/dag-runs/greeter/{old_id}")
    page.click("#btn-reschedule")
    assert "WHO=Grace" in page.locator("#reschedule-dialog").inner_text()
    shot(page, "run-reschedule-dialog", full_page=False)
    page.click("#reschedule-ok")
    page.wait_for_url(lambda u: "/dag-runs/greeter/" in u and not u.rstrip("/").endswith(old_id))
    new_id = page.url.rstrip("/").rsplit("/", 1)[1]
    assert new_id != old_id
    page.wait_for_selector("#run-status .badge.st-succeeded", timeout=30_000)
    page.wait_for_selector("#steps tr[data-step=done][data-status=succeeded]")
    outputs = page.locator("#steps tr[data-step=greet] .c-outputs")
    assert outputs.inner_text().startswith("GREETING=hello Grace"), outputs.inner_text()
    page.goto("/dags/greeter?tab=history")
    assert page.locator(f"#history-grid th[title='{new_id}']").count() == 1
    assert page.locator(f"#history-grid th[title='{old_id}']").count() == 1


def test_a_viewer_is_offered_no_rename_delete_or_reschedule_and_the_api_refuses_anyway(page, server, home):
    run_id = _finished_run(server, "hello", "NAME=viewer")
    login(page, VIEWER, "/dags/hello")
    page.wait_for_selector("#graph")
    for selector in ("#btn-rename", "#btn-delete", "#rename-dialog", "#delete-dialog"):
        assert page.locator(selector).count() == 0, selector
    page.goto(f"/dag-runs/hello/{run_id}")
    page.wait_for_selector("#steps")
    assert page.locator("#btn-reschedule").count() == 0
    assert page.locator("#reschedule-dialog").count() == 0
    calls = {
        "delete": "fetch('/api/v2/dags/hello', {method: 'DELETE'})",
        "rename": "fetch('/api/v2/dags/hello/rename', {method: 'POST', headers: {'Content-Type': 'application/json'},"
                  " body: JSON.stringify({newFileName: 'stolen'})})",
        "reschedule": f"fetch('/api/v2/dag-runs/hello/{run_id}/reschedule', {{method: 'POST',"
                      " headers: {'Content-Type': 'application/json'}, body: '{}'})",
    }
    for what, call in calls.items():
        assert page.evaluate(f"{call}.then(r => r.status)") == 403, what
    assert (home / "dags" / "hello.yaml").is_file()
    assert not (home / "dags" / "stolen.yaml").exists()


def test_an_operator_may_reschedule_but_is_offered_no_rename_or_delete(page, server):
    api = admin_client(server)
    try:
        resp = api.post("/users", json={"username": OPERATOR[0], "password": OPERATOR[1], "role": "operator"})
        assert resp.status_code in (201, 409), resp.text
    finally:
        api.close()
    run_id = _finished_run(server, "hello", "NAME=operator")
    login(page, OPERATOR, "/dags/hello")
    page.wait_for_selector("#btn-start")
    assert page.locator("#btn-rename").count() == 0
    assert page.locator("#btn-delete").count() == 0
    page.goto(f"/dag-runs/hello/{run_id}")
    assert page.locator("#btn-reschedule").is_visible()


# --- helpers ------------------------------------------------------------------------------------


def _create_dag(server: str, name: str, spec: str) -> None:
    api = admin_client(server)
    try:
        resp = api.post("/dags", json={"name": name, "spec": textwrap.dedent(spec).lstrip()})
        assert resp.status_code == 201, resp.text
    finally:
        api.close()


def _finished_run(server: str, dag: str, params: str) -> str:
    """Start `dag` through the API and wait until it succeeded; returns the run id."""
    api = admin_client(server)
    try:
        run_id = api.post(f"/dags/{dag}/start", json={"params": params}).json()["dagRunId"]
        wait_for(lambda: api.get(f"/dag-runs/{dag}/{run_id}").json()["dagRunDetails"]["statusLabel"] == "succeeded",
                 f"run {dag}/{run_id} to succeed", 30)
    finally:
        api.close()
    return run_id
