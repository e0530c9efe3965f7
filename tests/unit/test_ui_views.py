"""The UI's template helpers: times, durations, status labels, and the page data filters."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from dagu.status import NodeStatus, RunStatus
from web.ui import data
from web.ui.views import environment, fmt_duration, iso, status_label, when


def test_durations_read_like_a_person_would_say_them():
    t0 = datetime(2026, 1, 1, tzinfo=UTC)
    assert fmt_duration(t0, t0 + timedelta(seconds=4.25)) == "4.2s"
    assert fmt_duration(t0, t0 + timedelta(seconds=42)) == "42s"
    assert fmt_duration(t0, t0 + timedelta(seconds=185)) == "3m 05s"
    assert fmt_duration(t0, t0 + timedelta(hours=1, minutes=2)) == "1h 02m"
    assert fmt_duration("", None) == "—"
    assert fmt_duration("2026-01-01T00:00:00Z", "2026-01-01T00:00:30Z") == "30s"


def test_times_become_time_elements_the_browser_can_localise():
    assert iso("2026-11-24T18:07:36.437Z") == "2026-11-24T18:07:36Z"
    html = str(when("2026-11-24T18:07:36Z"))
    assert html.startswith('<time datetime="2026-11-24T18:07:36Z">') and html.endswith("</time>")
    assert "—" in str(when("")) and "—" in str(when("-"))


def test_status_labels_accept_ints_enums_and_labels():
    assert status_label(4) == "succeeded"
    assert status_label(RunStatus.QUEUED) == "queued"
    assert status_label(5, node=True) == NodeStatus.SKIPPED.label
    assert status_label("running") == "running"
    assert status_label(None) == "not_started"


def test_templates_compile():
    env = environment()
    for name in ("dashboard.html", "dags.html", "dag.html", "run.html", "login.html", "queues.html", "error.html"):
        env.get_template(name)


def test_dag_list_filters_by_name_description_and_tag_and_pages(tmp_path):
    from web.catalog import DagCatalog

    for i in range(7):
        tag = "etl" if i % 2 else "ops"
        (tmp_path / f"job_{i}.yaml").write_text(f"description: nightly job {i}\ntags: [{tag}]\nsteps:\n  - command: echo {i}\n")
    entries = DagCatalog(tmp_path).entries()
    page, total = data.page_of(entries, page=2, per_page=3)
    assert total == 7 and [e.file_name for e in page] == ["job_3", "job_4", "job_5"]
    assert data.page_of(entries, tag="ETL")[1] == 3
    assert [e.file_name for e in data.page_of(entries, query="JOB_6")[0]] == ["job_6"]  # file name
    assert [e.file_name for e in data.page_of(entries, query="nightly job 5")[0]] == ["job_5"]  # description
    assert data.page_of(entries, query="weekly")[1] == 0
    assert data.all_tags(entries) == ["etl", "ops"]
