"""`dagu history [dag]`: recent runs, newest first, as a table, JSON or CSV."""

from __future__ import annotations

import re

__all__ = ["add_arguments", "run"]

_LAST = re.compile(r"^(\d+)([hdw])$")


def add_arguments(parser) -> None:
    parser.add_argument("dag", nargs="?", help="only runs of this DAG")
    parser.add_argument("--from", dest="since", metavar="DATE", help="UTC YYYY-MM-DD or YYYY-MM-DDTHH:MM:SSZ")
    parser.add_argument("--to", dest="until", metavar="DATE", help="UTC YYYY-MM-DD or YYYY-MM-DDTHH:MM:SSZ")
    parser.add_argument("--last", metavar="DUR", help="only runs of the last 24h, 7d, 1w ... (not with --from/--to)")
    parser.add_argument("--status", help="comma list: running,succeeded,failed,aborted,queued,...")
    parser.add_argument("--run-id", help="only run IDs containing this text")
    parser.add_argument("-f", "--format", choices=("table", "json", "csv"), default="table")
    parser.add_argument("-l", "--limit", type=int, default=100, help="at most this many runs (max 1000)")


def run(args, settings) -> int:
    import csv
    import sys
    from datetime import UTC, datetime, timedelta

    import orjson

    from dagu.cli.render import format_duration
    from dagu.errors import InvalidRequest
    from dagu.status import RunStatus
    from dagu.store import RunStore, format_time

    if args.last and (args.since or args.until):
        raise InvalidRequest("--last cannot be combined with --from/--to")
    now = datetime.now(UTC)
    since = _date(args.since) if args.since else now - timedelta(days=30)
    until = _date(args.until) if args.until else None
    if args.last:
        m = _LAST.match(args.last.strip())
        if not m:
            raise InvalidRequest(f"--last: expected a duration such as 24h, 7d or 1w, got {args.last!r}")
        n, unit = int(m.group(1)), m.group(2)
        since = now - timedelta(hours=n) if unit == "h" else now - timedelta(days=n * (7 if unit == "w" else 1))
    statuses = None
    if args.status:
        try:
            statuses = {RunStatus.from_label(s) for s in args.status.split(",") if s.strip()}
        except KeyError as exc:
            raise InvalidRequest(f"--status: unknown status {exc}; use {', '.join(s.label for s in RunStatus)}") from None
    limit = max(1, min(args.limit, 1000))
    store = RunStore(settings.data_dir, settings.log_dir)
    rows = store.list_runs(args.dag, since=since, until=until, statuses=statuses, limit=None if args.run_id else limit)
    if args.run_id:
        rows = [r for r in rows if args.run_id in r[1].run_id][:limit]
    records = [rec for _, rec in rows]
    if args.format == "json":
        doc = [
            {
                "name": r.name, "dagRunId": r.run_id, "status": r.status.label,
                "startedAt": format_time(r.started_at) if r.started_at else "",
                "finishedAt": format_time(r.finished_at) if r.finished_at else "",
                "duration": format_duration(r.started_at, r.finished_at), "params": r.params,
                "workerId": r.worker_id, "error": r.error,
            }
            for r in records
        ]
        print(orjson.dumps(doc, option=orjson.OPT_INDENT_2).decode())
        return 0
    header = ["DAG NAME", "RUN ID", "STATUS", "STARTED (UTC)", "DURATION", "PARAMS"]
    table = [
        [
            r.name, r.run_id, r.status.human,
            r.started_at.strftime("%Y-%m-%d %H:%M:%S") if r.started_at else "-",
            format_duration(r.started_at, r.finished_at) if r.started_at else "-",
            (r.params[:37] + "...") if len(r.params) > 40 else (r.params or "-"),
        ]
        for r in records
    ]
    if args.format == "csv":
        w = csv.writer(sys.stdout)
        w.writerow(header)
        w.writerows(table)
        return 0
    if not table:
        print("no runs found", file=sys.stderr)
        return 0
    widths = [max(len(str(row[i])) for row in [header, *table]) for i in range(len(header))]
    for row in [header, *table]:
        print("  ".join(str(c).ljust(w) for c, w in zip(row, widths)).rstrip())
    return 0


def _date(text: str):
    from datetime import UTC, datetime

    from dagu.errors import InvalidRequest

    for fmt in ("%Y-%m-%d", "%Y-%m-%dT%H:%M:%SZ"):
        try:
            return datetime.strptime(text, fmt).replace(tzinfo=UTC)
        except ValueError:
            continue
    raise InvalidRequest(f"expected a UTC date YYYY-MM-DD or YYYY-MM-DDTHH:MM:SSZ, got {text!r}")
