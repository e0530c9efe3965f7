"""The `schedule` field: cron strings in string, list or start/stop/restart map form.

Owns checking each expression (exactly five fields, valid for croniter, a known
`CRON_TZ=`/`TZ=` zone). Computing fire times belongs to the scheduler. croniter is
imported only when a schedule is present.
"""

from __future__ import annotations

from dagu.spec.issues import IssueLog, describe
from dagu.spec.keys import key_table, read_mapping
from dagu.spec.model import CronEntry, Schedules
from dagu.spec.nodes import Node, scalar_text

__all__ = ["read_schedule", "parse_cron"]

_SCHEDULE_KEYS = key_table("schedule", ("start", "stop", "restart"))
_TZ_PREFIXES = ("CRON_TZ=", "TZ=")
_CRON_HINT = 'write five fields, e.g. "30 2 * * *" (optionally prefixed by "CRON_TZ=Area/City ")'
_TZ_HINT = "use an IANA time zone name such as Europe/Berlin or Asia/Tokyo"


def read_schedule(node: Node, field: str, log: IssueLog) -> Schedules:
    """Read `schedule` in any of its forms; bad entries are logged and left out."""
    if node.is_map:
        fields = read_mapping(node, _SCHEDULE_KEYS, field, log)
        parts = {}
        for key in ("start", "stop", "restart"):
            value = fields.get(key)
            parts[key] = _entries(value, fields.field(key), log) if value is not None else ()
        return Schedules(**parts)
    return Schedules(start=_entries(node, field, log))


def parse_cron(text: str) -> tuple[CronEntry | None, str | None]:
    """Parse one cron text -> (entry, None) or (None, error message)."""
    expression = text.strip()
    tz = None
    for prefix in _TZ_PREFIXES:
        if expression.startswith(prefix):
            tz, _, expression = expression[len(prefix) :].partition(" ")
            expression = expression.strip()
            tz_error = _check_tz(tz)
            if tz_error:
                return None, tz_error
            break
    fields = expression.split()
    if len(fields) != 5:
        return None, f"invalid schedule {text.strip()!r}: expected exactly 5 fields (minute hour day month weekday), found {len(fields)}"
    from croniter import croniter  # imported here so loading unscheduled DAGs never pays for it

    if not croniter.is_valid(" ".join(fields)):
        return None, f"invalid schedule {text.strip()!r}: not a valid cron expression"
    return CronEntry(" ".join(fields), tz, text), None


def _entries(node: Node, field: str, log: IssueLog) -> tuple[CronEntry, ...]:
    items = node.value if node.is_seq else [node]
    entries = []
    for i, item in enumerate(items):
        path = f"{field}[{i}]" if node.is_seq else field
        if not item.is_scalar or not isinstance(item.value, str):
            log.add(item, path, f"expected a cron expression string, got {describe(item)}", 'write `schedule: "0 * * * *"`')
            continue
        entry, error = parse_cron(scalar_text(item))
        if error:
            log.add(item, path, error, _TZ_HINT if "time zone" in error else _CRON_HINT)
        else:
            entries.append(entry)
    return tuple(entries)


def _check_tz(name: str) -> str | None:
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        return f"unknown time zone {name!r} in schedule"
    return None
