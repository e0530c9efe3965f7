"""Cron maths and the scheduler's skip rules, as pure functions: no threads, no files, no clock.

Owns when a cron entry fires (in its own or the configured zone, across DST
changes), which slots a catch-up replays and under which run IDs, and whether a
due slot should start a run given the DAG's latest run. It does not load DAGs,
keep time or start anything; that is `actors/scheduler.py`. croniter is imported
here at module level, so only the scheduler process pays for it.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from datetime import UTC, datetime, tzinfo
from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from croniter import croniter

from dagu.spec.model import CronEntry
from dagu.status import RunStatus
from dagu.store.records import RunRecord

__all__ = [
    "MAX_CATCHUP_SLOTS",
    "OVERLAP_POLICIES",
    "Decision",
    "catchup_run_id",
    "due_slots",
    "host_zone",
    "next_fire_time",
    "previous_fire_time",
    "resolve_zone",
    "should_start",
]

MAX_CATCHUP_SLOTS = 1000
OVERLAP_POLICIES = ("skip", "all", "latest")
# A DST gap or overlap spans at most a few hours of wall-clock minutes; past this many
# rejected candidates something is wrong with the expression, not with the zone.
_MAX_REJECTED = 10_000


@dataclass(frozen=True, slots=True)
class Decision:
    """What to do with one due slot: `start` it, `skip` it for good, or `wait` and ask again later."""

    action: Literal["start", "skip", "wait"]
    reason: str = ""

    @property
    def is_start(self) -> bool:
        return self.action == "start"


def resolve_zone(name: str | None) -> tzinfo:
    """The zone called `name` (IANA), or the host's zone when `name` is empty.

    Raises:
        ValueError: `name` is not a known zone.
    """
    if not name:
        return host_zone()
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError) as exc:
        raise ValueError(f"unknown time zone {name!r}; use an IANA name such as Europe/Berlin") from exc


def host_zone() -> tzinfo:
    """The host's zone with its DST rules: `$TZ`, else /etc/localtime, else a fixed offset."""
    name = os.environ.get("TZ", "").lstrip(":")
    if name:
        try:
            return ZoneInfo(name)
        except (ZoneInfoNotFoundError, ValueError, OSError):
            pass  # a POSIX rule string such as "EST5EDT,M3.2.0,M11.1.0": fall through
    try:
        target = os.readlink("/etc/localtime")
        if "zoneinfo/" in target:
            return ZoneInfo(target.split("zoneinfo/", 1)[1])
    except (OSError, ZoneInfoNotFoundError, ValueError):
        pass
    try:
        with open("/etc/localtime", "rb") as f:
            return ZoneInfo.from_file(f, key="localtime")
    except (OSError, ValueError):
        # NOTE: a fixed offset does not follow DST; only reached on hosts without tzdata.
        return datetime.now().astimezone().tzinfo or UTC


def next_fire_time(entry: CronEntry, after: datetime, default_tz: tzinfo) -> datetime:
    """The first slot of `entry` strictly after `after`, as an aware UTC datetime.

    The expression is read in `entry.tz` when it carried `CRON_TZ=`, else in
    `default_tz`. A wall-clock time that does not exist (spring forward) is
    skipped; one that happens twice (fall back) fires once, at its first occurrence.

    Raises:
        ValueError: the expression never fires (e.g. `0 0 31 2 *`).
    """
    zone = _zone_of(entry, default_tz)
    after = _aware(after)
    it = croniter(entry.expression, after.astimezone(zone).replace(tzinfo=None))
    for _ in range(_MAX_REJECTED):
        slot = _to_utc(it.get_next(datetime), zone)
        if slot is not None and slot > after:
            return slot
    raise ValueError(f"cron {entry.expression!r} found no slot after {after.isoformat()}")


def previous_fire_time(entry: CronEntry, before: datetime, default_tz: tzinfo) -> datetime | None:
    """The last slot of `entry` strictly before `before` (UTC), or None if it never fired."""
    zone = _zone_of(entry, default_tz)
    before = _aware(before)
    it = croniter(entry.expression, before.astimezone(zone).replace(tzinfo=None))
    for _ in range(_MAX_REJECTED):
        try:
            naive = it.get_prev(datetime)
        except ValueError:
            return None
        slot = _to_utc(naive, zone)
        if slot is not None and slot < before:
            return slot
    return None


def due_slots(
    entry: CronEntry, since: datetime, until: datetime, tz: tzinfo, *, limit: int = MAX_CATCHUP_SLOTS
) -> list[datetime]:
    """Slots of `entry` in `(since, until]`, oldest first, at most `limit` (the oldest ones)."""
    slots: list[datetime] = []
    until = _aware(until)
    cursor = _aware(since)
    while len(slots) < limit:
        try:
            cursor = next_fire_time(entry, cursor, tz)
        except ValueError:
            break
        if cursor > until:
            break
        slots.append(cursor)
    return slots


def catchup_run_id(dag_name: str, slot: datetime) -> str:
    """The deterministic run ID of a replayed slot: `catchup-<12 hex of sha256(name)>-<YYYYMMDDTHHMMSS>`.

    The same slot always gets the same ID, so a replay that is repeated (after a
    crash, or by a second scheduler) is refused by the run store as a duplicate.
    """
    digest = hashlib.sha256(dag_name.encode()).hexdigest()[:12]
    return f"catchup-{digest}-{_aware(slot).astimezone(UTC):%Y%m%dT%H%M%S}"


def should_start(
    latest: RunRecord | None,
    slot: datetime,
    prev_slot: datetime | None,
    *,
    skip_if_successful: bool,
    overlap_policy: str,
    is_catchup: bool,
) -> Decision:
    """Whether the due `slot` of a DAG starts a run, given the DAG's latest run (service.md 5.2-5.3).

    Live slots (1.30): skip while the latest run is active (overlap), when it
    began at or after this slot (someone already ran it), and with
    `skip_if_successful` when it succeeded after beginning at or after `prev_slot`.

    Catch-up slots (2.x) only meet the overlap rule, by `overlap_policy`: `skip`
    drops the slot, `all` and `latest` wait (the caller keeps only the newest
    pending slot for `latest`). The other two rules would drop every replayed
    slot after the first, since the first replay begins long after them all;
    duplicates are refused instead through the deterministic run ID.
    """
    if latest is None:
        return Decision("start", "no previous run")
    if latest.status.is_active:
        why = f"overlap: run {latest.run_id} is {latest.status.label}"
        if is_catchup and overlap_policy in ("all", "latest"):
            return Decision("wait", why)
        return Decision("skip", why)
    if is_catchup:
        return Decision("start", f"catch-up; latest run {latest.run_id} is {latest.status.label}")
    began = _began_at(latest)
    slot = _aware(slot)
    if began is not None and began >= slot:
        return Decision("skip", f"run {latest.run_id} already began at {began.isoformat()}, at or after this slot")
    if (
        skip_if_successful
        and latest.status == RunStatus.SUCCEEDED
        and began is not None
        and prev_slot is not None
        and began >= _aware(prev_slot)
    ):
        return Decision("skip", f"skip_if_successful: run {latest.run_id} succeeded since the previous slot")
    return Decision("start", f"latest run {latest.run_id} is {latest.status.label}")


def _began_at(record: RunRecord) -> datetime | None:
    # The moment the run came into being: queued, else started. A run queued before the
    # slot but started after it still belongs to an earlier slot (or a manual start).
    for moment in (record.queued_at, record.started_at, record.created_at):
        if moment is not None:
            return _aware(moment)
    return None


def _zone_of(entry: CronEntry, default_tz: tzinfo) -> tzinfo:
    return ZoneInfo(entry.tz) if entry.tz else default_tz


def _aware(moment: datetime) -> datetime:
    # Naive datetimes are UTC throughout the store; say so instead of guessing the host zone.
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def _to_utc(naive: datetime, zone: tzinfo) -> datetime | None:
    """The UTC moment of a wall-clock time in `zone`; None if the clocks skip it.

    `fold=0` picks the first of two moments when the wall-clock time repeats.
    """
    local = naive.replace(tzinfo=zone, fold=0)
    moment = local.astimezone(UTC)
    if moment.astimezone(zone).replace(tzinfo=None) != naive:
        return None  # in the spring-forward gap: this wall-clock time never happens
    return moment
