"""What the UI's server-rendered pages read: DAG files (through the API's catalog), runs, run history.

Read-only and synchronous; route handlers call it in a thread. Writes (start, stop,
save, ...) never happen here: the browser calls the REST API for those, so the API
stays the one place that enforces permissions and validates input.
DAG files come from the API's `DagCatalog` (parsed once, re-read when a file's
mtime or size changes), so a list of 2,000 DAGs costs a folder scan.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from dagu.errors import NotFound
from dagu.spec.model import Dag
from dagu.status import RunStatus
from dagu.store import RunRecord, RunStore, read_status
from dagu.store.suspend import is_suspended
from web.catalog import CatalogEntry

__all__ = ["RunView", "page_of", "all_tags", "today_runs", "recent_runs", "find_run", "latest_record", "next_run_at", "suspended"]



@dataclass(frozen=True, slots=True)
class RunView:
    """A run record with the handle facts the pages link by."""

    dag_name: str
    run_id: str
    record: RunRecord


def page_of(entries: list[CatalogEntry], *, query: str = "", tag: str = "", page: int = 1, per_page: int = 50) -> tuple[list[CatalogEntry], int]:
    """One page of `entries` matching `query` (file name, DAG name, description) and `tag`; and the total."""
    query, tag = query.strip().lower(), tag.strip().lower()
    if query or tag:
        entries = [e for e in entries if _matches(e, query, tag)]
    return entries[(page - 1) * per_page : page * per_page], len(entries)


def all_tags(entries: list[CatalogEntry]) -> list[str]:
    return sorted({t for e in entries for t in e.tags})


def latest_record(store: RunStore, dag_name: str) -> RunRecord | None:
    """The latest run's status of `dag_name`, or None when it never ran."""
    try:
        return store.read_latest(store.latest_run(dag_name))
    except (NotFound, OSError, ValueError):
        return None


def find_run(store: RunStore, dag_name: str, run_id: str, sub_id: str | None = None) -> RunView:
    """A run (or one of its sub-runs) by IDs; `latest` is accepted for the run ID.

    Raises:
        NotFound: no such run.
    """
    run = store.latest_run(dag_name) if run_id == "latest" else store.find_run(dag_name, run_id)
    if sub_id:
        run = store.find_sub_run(run, sub_id)
    record = read_status(store.latest_attempt(run).status_path)
    return RunView(record.name or dag_name, record.run_id or run.run_id, record)


def today_runs(store: RunStore, *, now: datetime | None = None, limit: int = 1000) -> list[RunRecord]:
    """Every run created since 00:00 UTC today (newest first), as the API's default history."""
    now = now or datetime.now(UTC)
    since = now.replace(hour=0, minute=0, second=0, microsecond=0)
    return [record for _, record in store.list_runs(since=since, limit=limit)]


def recent_runs(store: RunStore, *, hours: int = 24, limit: int = 200) -> list[RunRecord]:
    since = datetime.now(UTC) - timedelta(hours=hours)
    return [record for _, record in store.list_runs(since=since, limit=limit)]


def next_run_at(dag: Dag | None, tz: Any, now: datetime | None = None) -> datetime | None:
    """The next start slot of the DAG's schedule, or None when it has none (or none is valid)."""
    if dag is None or not dag.schedule.start:
        return None
    from dagu.schedule import next_fire_time

    now = now or datetime.now(UTC)
    slots = []
    for entry in dag.schedule.start:
        try:
            slots.append(next_fire_time(entry, now, tz))
        except ValueError:
            continue
    return min(slots, default=None)


def suspended(settings: Any, stem: str) -> bool:
    return is_suspended(settings.suspend_dir, stem)


def active_statuses() -> Iterable[RunStatus]:
    return (RunStatus.RUNNING, RunStatus.QUEUED, RunStatus.WAITING)


def _matches(entry: CatalogEntry, query: str, tag: str) -> bool:
    if tag and tag not in entry.tags:
        return False
    if not query:
        return True
    haystack = [entry.file_name.lower(), entry.name.lower()]
    if entry.dag:
        haystack.append(entry.dag.description.lower())
    return any(query in h for h in haystack)
