"""Prometheus metrics: `GET /metrics`, computed at scrape time from the stores (service.md 7.1).

`DaguCollector` reads the DAG folder, heartbeats, queue items and today's runs on
every scrape; nothing is counted in memory, so the numbers are right whichever
process started the runs and survive a server restart. Names and labels are
Dagu's. The process collector of prometheus-client comes along.

Only today's runs are read (their day folders), so a scrape costs what today
costs, not the whole history.
"""

from __future__ import annotations

import logging
import os
import time
from collections import Counter, defaultdict
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from typing import Any

from prometheus_client import ProcessCollector
from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector
from prometheus_client.utils import floatToGoString
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from dagu.status import RunStatus
from dagu.store import RunStore, list_alive
from dagu.store.queue import QueueStore
from dagu.store.scheduler_lock import scheduler_lock_dir
from web.security import Permission, require

__all__ = ["api_routes", "root_routes", "DaguCollector", "CONTENT_TYPE", "exposition"]

logger = logging.getLogger(__name__)

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
DURATION_BUCKETS = (1, 5, 15, 30, 60, 120, 300, 600, 1800, 3600)
QUEUE_WAIT_BUCKETS = (1, 5, 10, 30, 60, 120, 300, 600)


def api_routes(settings: Any) -> list[Route]:
    """`GET /metrics` under each API base."""
    return [_route(settings)]


def root_routes(settings: Any) -> list[Route]:
    """`GET /metrics` at the base path."""
    return [_route(settings)]


class DaguCollector(Collector):
    """Dagu's metrics, read from the stores when collected.

    Args:
        settings: where the stores are.
        started_at: unix time the server started (for `dagu_uptime_seconds`).
        clock: unix time now; injected by tests.
    """

    def __init__(self, settings: Any, *, started_at: float | None = None, clock=time.time) -> None:
        self._settings = settings
        self._clock = clock
        self._started_at = clock() if started_at is None else started_at

    def collect(self) -> Iterator[Metric]:
        from dagu import __version__

        s = self._settings
        now = self._clock()
        yield _gauge("dagu_info", "Build information", [({"version": __version__, "go_version": "none"}, 1)])
        yield _gauge("dagu_uptime_seconds", "Seconds since the server started", [({}, now - self._started_at)])
        yield _gauge("dagu_dags_total", "DAG definition files", [({}, _count_dags(s.dags_dir))])
        yield _gauge("dagu_scheduler_running", "1 when a scheduler holds a live scheduler lock",
                     [({}, int(_is_scheduler_running(s, now)))])
        running = Counter(e.dag_name for e in list_alive(s.proc_dir, now=now))
        yield _gauge("dagu_dag_runs_currently_running", "Runs running now", [({}, sum(running.values()))])
        yield _gauge("dagu_dag_runs_currently_running_by_dag", "Runs running now, per DAG", _by_dag(running))
        queues = QueueStore(s.queue_dir)
        queued = Counter(i.dag_name for q in queues.queue_names() for i in queues.items(q))
        yield _gauge("dagu_dag_runs_queued_total", "Runs waiting in a queue", [({}, sum(queued.values()))])
        yield _gauge("dagu_dag_runs_queued_by_dag", "Runs waiting in a queue, per DAG", _by_dag(queued))
        yield from _today_metrics(RunStore(s.data_dir, s.log_dir), _start_of_today(now, s.tz))


def exposition(collectors: Iterable[Collector]) -> bytes:
    """Prometheus text format 0.0.4 of `collectors`.

    prometheus-client's own writer appends `_total` to every counter's TYPE line;
    Dagu's `dagu_dag_runs_total_by_dag` is a counter whose name does not end in
    `_total`, so the TYPE line here takes the name the samples actually carry.
    """
    out: list[str] = []
    for collector in collectors:
        for metric in collector.collect():
            samples = [smp for smp in metric.samples if not smp.name.endswith("_created")]
            name = metric.name
            if metric.type == "counter" and samples and samples[0].name == name + "_total":
                name += "_total"
            kind = {"unknown": "untyped", "info": "gauge", "stateset": "gauge"}.get(metric.type, metric.type)
            doc = metric.documentation.replace("\\", r"\\").replace("\n", r"\n")
            out.append(f"# HELP {name} {doc}\n# TYPE {name} {kind}\n")
            out.extend(_sample_line(smp.name, smp.labels, smp.value) for smp in samples)
    return "".join(out).encode()


# -- helpers ---------------------------------------------------------------------------


def _route(settings: Any) -> Route:
    collectors: list[Collector] = [DaguCollector(settings), ProcessCollector(registry=None)]

    async def metrics(request: Request) -> Response:
        if not getattr(settings, "metrics_public", False):
            require(request, Permission.READ)
        body = await run_in_threadpool(exposition, collectors)  # reads files: keep it off the event loop
        return Response(body, media_type=CONTENT_TYPE)

    return Route("/metrics", metrics, methods=["GET"])


def _today_metrics(store: RunStore, since: datetime) -> Iterator[Metric]:
    totals: Counter[str] = Counter({status.label: 0 for status in RunStatus})
    by_dag: Counter[tuple[str, str]] = Counter()
    durations: dict[str, list[float]] = defaultdict(list)
    waits: dict[str, list[float]] = defaultdict(list)
    for handle, rec in store.list_runs(since=since, limit=None):
        dag = rec.name or handle.dag_name
        totals[rec.status.label] += 1
        by_dag[(dag, rec.status.label)] += 1
        if not rec.status.is_active and rec.started_at and rec.finished_at:
            durations[dag].append((rec.finished_at - rec.started_at).total_seconds())
        if rec.queued_at and rec.started_at:
            waits[dag].append(max(0.0, (rec.started_at - rec.queued_at).total_seconds()))
    runs = Metric("dagu_dag_runs", "Runs created today, by status", "counter")
    for label, n in sorted(totals.items()):
        runs.add_sample("dagu_dag_runs_total", {"status": label}, n)
    yield runs
    runs_by_dag = Metric("dagu_dag_runs_total_by_dag", "Runs created today, by DAG and status", "counter")
    for (dag, label), n in sorted(by_dag.items()):
        runs_by_dag.add_sample("dagu_dag_runs_total_by_dag", {"dag": dag, "status": label}, n)
    yield runs_by_dag
    yield _histogram("dagu_dag_run_duration_seconds", "Duration of runs finished today", DURATION_BUCKETS, durations)
    yield _histogram("dagu_queue_wait_seconds", "Time from queued to started, runs of today", QUEUE_WAIT_BUCKETS, waits)


def _gauge(name: str, doc: str, samples: Iterable[tuple[dict[str, str], float]]) -> Metric:
    metric = Metric(name, doc, "gauge")
    for labels, value in samples:
        metric.add_sample(name, labels, value)
    return metric


def _histogram(name: str, doc: str, buckets: tuple[float, ...], values_by_dag: dict[str, list[float]]) -> Metric:
    metric = Metric(name, doc, "histogram")
    for dag, values in sorted(values_by_dag.items()):
        for bound in buckets:
            metric.add_sample(name + "_bucket", {"dag": dag, "le": floatToGoString(bound)}, sum(v <= bound for v in values))
        metric.add_sample(name + "_bucket", {"dag": dag, "le": "+Inf"}, len(values))
        metric.add_sample(name + "_sum", {"dag": dag}, sum(values))
        metric.add_sample(name + "_count", {"dag": dag}, len(values))
    return metric


def _by_dag(counts: Counter[str]) -> list[tuple[dict[str, str], float]]:
    return [({"dag": dag}, n) for dag, n in sorted(counts.items())]


def _sample_line(name: str, labels: dict[str, str], value: float) -> str:
    if not labels:
        return f"{name} {floatToGoString(value)}\n"
    text = ",".join(f'{k}="{_escape(v)}"' for k, v in sorted(labels.items()))
    return f"{name}{{{text}}} {floatToGoString(value)}\n"


def _escape(value: str) -> str:
    return value.replace("\\", r"\\").replace("\n", r"\n").replace('"', r"\"")


def _count_dags(dags_dir: os.PathLike[str]) -> int:
    try:
        with os.scandir(dags_dir) as it:
            return sum(1 for e in it if e.name.endswith((".yaml", ".yml")) and e.is_file())
    except (FileNotFoundError, NotADirectoryError):
        return 0


def _is_scheduler_running(settings: Any, now: float) -> bool:
    """A scheduler is running when its lock directory exists and was touched recently."""
    try:
        mtime = os.stat(scheduler_lock_dir(settings.data_dir)).st_mtime
    except OSError:
        return False
    return now - mtime < float(getattr(settings, "lock_stale_threshold_s", 30.0))


def _start_of_today(now: float, tz: str | None) -> datetime:
    """Midnight of today in the server's zone, as UTC."""
    zone = None
    if tz:
        from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

        try:
            zone = ZoneInfo(tz)
        except (ZoneInfoNotFoundError, ValueError):
            zone = None
    local = datetime.fromtimestamp(now, zone) if zone else datetime.fromtimestamp(now).astimezone()
    return local.replace(hour=0, minute=0, second=0, microsecond=0).astimezone(UTC)
