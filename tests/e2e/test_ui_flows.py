"""The UI end to end in headless Chromium: sign in, start a DAG with a parameter and watch its
graph turn green live, read a step's log, edit the spec (error shown at its line, then fixed
and saved), stop a long run, retry a failed step, and a viewer who is offered no start button."""

from __future__ import annotations

import re

import pytest
from ui_support import ADMIN, VIEWER, admin_client, login, shot

from helpers import wait_for

pytestmark = pytest.mark.slow


def test_admin_signs_in_starts_a_dag_with_a_parameter_and_sees_the_graph_turn_green(page, server):
    login(page, ADMIN)
    shot(page, "dashboard")
    page.goto("/dags")
    assert page.locator("#dag-table tbody tr").count() >= 4
    shot(page, "dag-list")
    page.goto("/dags/hello")
    nodes = page.locator("#graph .node")
    assert nodes.count() == 4
    page.click("#btn-start")
    page.fill("#start-form input.param[data-name=NAME]", "Ada Lovelace")
    page.click("#start-ok")
    # Live: no reload; every node of the graph becomes succeeded.
    page.wait_for_function(
        "() => [...document.querySelectorAll('#graph .node')].every(n => n.classList.contains('st-succeeded'))",
        timeout=30_000,
    )
    shot(page, "dag-graph-succeeded")
    # Open the run, then the log of the first step: it greets with the parameter.
    page.click("#latest-status a")
    page.wait_for_url(re.compile(r"/dag-runs/hello/"))
    page.click("#steps a.log-link[data-step=greet][data-stream=stdout]")
    page.wait_for_function("() => document.getElementById('log').textContent.includes('hello Ada Lovelace')")
    assert page.locator("#steps tr[data-step=greet] .c-outputs").inner_text().startswith("GREETING=hello Ada Lovelace")
    shot(page, "run-page-log")


def test_spec_editor_shows_the_error_line_then_saves_the_fix(page, server, home):
    login(page, ADMIN, "/dags/nightly?tab=spec")
    page.wait_for_selector("#problems li")
    assert page.locator("#problems li.ok").count() == 1, page.locator("#problems").inner_text()
    textarea = page.locator("#spec")
    good = textarea.input_value()
    bad = good.replace("  - name: report\n", "  - name: report\n    retry_policy: {limit: three, interval_sec: 1}\n")
    textarea.fill(bad)
    error = page.locator("#problems li.error").first
    error.wait_for()
    bad_line = bad.splitlines().index("    retry_policy: {limit: three, interval_sec: 1}") + 1
    assert error.get_attribute("data-line") == str(bad_line), error.inner_text()
    assert page.locator(f".editor .gutter div.err[data-line='{bad_line}']").count() == 1
    shot(page, "spec-error")
    page.click("#btn-save")  # refused while invalid: the file keeps its old text
    page.wait_for_selector(".toast.error")
    assert "three" not in (home / "dags" / "nightly.yaml").read_text()
    fixed = bad.replace("limit: three", "limit: 3")
    textarea.fill(fixed)
    page.wait_for_selector("#problems li.ok")
    page.click("#btn-save")
    page.wait_for_selector("#save-state:text-is('Saved')")  # NOTE: has-text would match "Unsaved"
    assert "limit: 3" in (home / "dags" / "nightly.yaml").read_text()


def test_a_long_run_is_stopped_from_the_dag_page(page, server):
    login(page, ADMIN, "/dags/slow")
    page.click("#btn-start")
    page.click("#start-ok")
    page.wait_for_selector("#graph .node.st-running", timeout=20_000)
    stop = page.locator("#btn-stop")
    stop.wait_for(state="visible")
    page.click("#btn-stop")
    page.wait_for_selector("#latest-status .badge.st-aborted", timeout=30_000)
    assert page.locator("#btn-stop").is_hidden()


def test_a_failed_step_is_retried_from_the_run_page(page, server, home):
    mark = home / "flaky-mark"
    login(page, ADMIN, "/dags/flaky")
    page.click("#btn-start")
    page.fill("#start-form input.param[data-name=MARK]", str(mark))
    page.click("#start-ok")
    page.wait_for_selector("#latest-status .badge.st-failed", timeout=30_000)
    page.click("#latest-status a")
    page.wait_for_selector("#steps tr[data-step=check][data-status=failed]")
    shot(page, "run-failed")
    mark.write_text("ok")
    page.click("#steps tr[data-step=check] button.retry-step")
    # Only that step runs again (the others keep their results); it now passes.
    page.wait_for_selector("#steps tr[data-step=check][data-status=succeeded]", timeout=30_000)
    assert page.locator("#steps tr[data-step=prepare]").get_attribute("data-status") == "succeeded"
    # Retrying the whole run then finishes what was left.
    page.click("#btn-retry")
    page.wait_for_selector("#run-status .badge.st-succeeded", timeout=30_000)
    page.wait_for_selector("#steps tr[data-step=finish][data-status=succeeded]")
    shot(page, "run-retried")


def test_a_viewer_is_offered_no_start_button_and_the_api_refuses_anyway(page, server):
    login(page, VIEWER, "/dags/hello")
    page.wait_for_selector("#graph")
    assert page.locator("#btn-start").count() == 0
    assert page.locator("#btn-save").count() == 0
    assert page.locator("input.suspend").count() == 0 or page.locator("input.suspend:not([disabled])").count() == 0
    assert page.locator("#role").inner_text() == "viewer"
    shot(page, "viewer-dag")
    status = page.evaluate("fetch('/api/v2/dags/hello/start', {method: 'POST', headers: {'Content-Type': 'application/json'}, body: '{}'}).then(r => r.status)")
    assert status == 403


def test_a_page_without_a_session_goes_to_the_login_page(page, server):
    page.goto("/dags/hello")
    page.wait_for_url(re.compile(r"/login\?next="))
    page.fill("#username", ADMIN[0])
    page.fill("#password", "wrong-password")
    page.click("button[type=submit]")
    page.wait_for_selector("#login-error:has-text('Invalid')")
    shot(page, "login")
    page.fill("#password", ADMIN[1])
    page.click("button[type=submit]")
    page.wait_for_url(re.compile(r"/dags/hello$"))


def test_the_dashboard_counts_the_runs_of_today(page, server):
    api = admin_client(server)
    try:
        run_id = api.post("/dags/hello/start", json={"params": "NAME=dash"}).json()["dagRunId"]
        wait_for(lambda: api.get(f"/dag-runs/hello/{run_id}").json()["dagRunDetails"]["statusLabel"] == "succeeded",
                 "the run to succeed", 30)
        today = len(api.get("/dag-runs").json()["dagRuns"])
    finally:
        api.close()
    login(page, ADMIN)
    total = int(page.locator("#stats [data-count=total]").inner_text())
    assert total == today >= 1
    assert page.locator(".gantt .seg").count() >= total  # each run of today is a bar on the timeline
    shot(page, "dashboard-after-runs")


def test_main_pages_fit_a_phone_in_the_dark_theme(browser, server):
    context = browser.new_context(viewport={"width": 390, "height": 844}, base_url=server, color_scheme="dark",
                                  device_scale_factor=1, is_mobile=True, has_touch=True)
    page = context.new_page()
    try:
        login(page, ADMIN)
        for path, name in (("/", "phone-dashboard"), ("/dags", "phone-dag-list"), ("/dags/hello", "phone-dag"),
                           ("/queues", "phone-queues"), ("/users", "phone-users")):
            page.goto(path)
            page.wait_for_load_state("networkidle") if path in ("/queues", "/users") else None
            overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
            assert overflow <= 1, f"{path} is {overflow}px wider than the phone"
            assert page.evaluate("getComputedStyle(document.body).backgroundColor") != "rgb(246, 247, 249)"  # dark
            shot(page, name)
    finally:
        context.close()
