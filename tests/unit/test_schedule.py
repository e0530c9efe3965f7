"""Cron maths, catch-up slots and the skip rules of `dagu.schedule` (pure functions, fixed times)."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from dagu.schedule import (
    MAX_CATCHUP_SLOTS,
    catchup_run_id,
    due_slots,
    next_fire_time,
    previous_fire_time,
    resolve_zone,
    should_start,
)
from dagu.spec.cron import parse_cron
from dagu.status import RunStatus
from dagu.store import RunRecord

NY = ZoneInfo("America/New_York")
TOKYO = ZoneInfo("Asia/Tokyo")


def cron(text: str):
    entry, error = parse_cron(text)
    assert error is None, error
    return entry


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


def record(status: RunStatus, *, began: datetime | None = None, run_id: str = "r1") -> RunRecord:
    return RunRecord("etl", run_id, status=status, started_at=began)


# -- next_fire_time -------------------------------------------------------------------------


def test_next_fire_time_is_strictly_after_and_utc():
    at = next_fire_time(cron("*/15 * * * *"), utc(2025, 1, 1, 10, 15), UTC)
    assert at == utc(2025, 1, 1, 10, 30)
    assert at.tzinfo is UTC


def test_next_fire_time_reads_the_expression_in_the_configured_zone():
    # 09:00 in New York in January (EST, UTC-5) is 14:00 UTC.
    assert next_fire_time(cron("0 9 * * *"), utc(2025, 1, 6, 0, 0), NY) == utc(2025, 1, 6, 14, 0)


def test_cron_tz_prefix_overrides_the_configured_zone():
    entry = cron("CRON_TZ=Asia/Tokyo 0 9 * * *")
    assert entry.tz == "Asia/Tokyo"
    # 09:00 in Tokyo (UTC+9) is 00:00 UTC, whatever zone the scheduler runs in.
    assert next_fire_time(entry, utc(2025, 1, 5, 12, 0), NY) == utc(2025, 1, 6, 0, 0)
    assert next_fire_time(cron("TZ=Asia/Tokyo 0 9 * * *"), utc(2025, 1, 5, 12, 0), UTC) == utc(2025, 1, 6, 0, 0)


def test_naive_after_is_taken_as_utc():
    assert next_fire_time(cron("0 * * * *"), datetime(2025, 1, 1, 10, 30), UTC) == utc(2025, 1, 1, 11, 0)


def test_weekday_names_and_ranges():
    # 2025-01-04 is a Saturday: MON-FRI next fires on Monday the 6th.
    assert next_fire_time(cron("30 8 * * MON-FRI"), utc(2025, 1, 3, 9, 0), UTC) == utc(2025, 1, 6, 8, 30)


def test_spring_forward_skips_the_wall_clock_time_that_does_not_exist():
    # 2024-03-10: New York clocks jump from 02:00 to 03:00; 02:30 never happens that day.
    entry = cron("30 2 * * *")
    first = next_fire_time(entry, utc(2024, 3, 9, 12, 0), NY)
    assert first.astimezone(NY) == datetime(2024, 3, 11, 2, 30, tzinfo=NY)
    assert first == utc(2024, 3, 11, 6, 30)  # EDT, UTC-4


def test_spring_forward_hourly_job_loses_only_the_missing_hour():
    slots = due_slots(cron("0 * * * *"), utc(2024, 3, 10, 5, 30), utc(2024, 3, 10, 8, 30), NY)
    assert [s.astimezone(NY).hour for s in slots] == [1, 3, 4]  # no 02:00
    assert slots[1] - slots[0] == timedelta(hours=1)


def test_fall_back_fires_an_ambiguous_time_once_at_its_first_occurrence():
    # 2024-11-03: New York clocks go from 02:00 EDT back to 01:00 EST; 01:30 happens twice.
    entry = cron("30 1 * * *")
    first = next_fire_time(entry, utc(2024, 11, 2, 12, 0), NY)
    assert first == utc(2024, 11, 3, 5, 30)  # 01:30 EDT
    second = next_fire_time(entry, first, NY)
    assert second == utc(2024, 11, 4, 6, 30)  # not 01:30 EST the same night


def test_fall_back_from_inside_the_repeated_hour_does_not_go_back_in_time():
    after = utc(2024, 11, 3, 6, 10)  # 01:10 EST, the second 01:10 of the night
    at = next_fire_time(cron("*/30 * * * *"), after, NY)
    # 01:30 already fired in its first (EDT) occurrence; the next slot is 02:00 EST.
    assert at == utc(2024, 11, 3, 7, 0)
    assert at > after


def test_expression_that_never_fires_raises_value_error():
    with pytest.raises(ValueError):
        next_fire_time(cron("0 0 31 2 *"), utc(2025, 1, 1), UTC)


def test_previous_fire_time_is_strictly_before():
    entry = cron("0 */6 * * *")
    assert previous_fire_time(entry, utc(2025, 1, 1, 12, 0), UTC) == utc(2025, 1, 1, 6, 0)
    assert previous_fire_time(entry, utc(2025, 1, 1, 12, 1), UTC) == utc(2025, 1, 1, 12, 0)


def test_list_of_entries_fires_at_the_earliest_of_them():
    entries = [cron("0 12 * * *"), cron("CRON_TZ=Asia/Tokyo 0 12 * * *"), cron("45 6 * * *")]
    after = utc(2025, 1, 1, 0, 0)
    times = sorted(next_fire_time(e, after, UTC) for e in entries)
    assert times == [utc(2025, 1, 1, 3, 0), utc(2025, 1, 1, 6, 45), utc(2025, 1, 1, 12, 0)]


def test_resolve_zone_names_the_bad_zone():
    assert resolve_zone("Asia/Tokyo") == TOKYO
    assert resolve_zone(None) is not None
    with pytest.raises(ValueError, match="Mars/Olympus"):
        resolve_zone("Mars/Olympus")


# -- due_slots and catch-up IDs ------------------------------------------------------------


def test_due_slots_excludes_since_includes_until_oldest_first():
    slots = due_slots(cron("*/10 * * * *"), utc(2025, 1, 1, 10, 0), utc(2025, 1, 1, 10, 30), UTC)
    assert slots == [utc(2025, 1, 1, 10, 10), utc(2025, 1, 1, 10, 20), utc(2025, 1, 1, 10, 30)]


def test_due_slots_keeps_at_most_1000_oldest():
    slots = due_slots(cron("* * * * *"), utc(2025, 1, 1), utc(2025, 1, 3), UTC)
    assert len(slots) == MAX_CATCHUP_SLOTS
    assert slots[0] == utc(2025, 1, 1, 0, 1)
    assert slots == sorted(slots)


def test_due_slots_is_empty_when_nothing_is_due():
    assert due_slots(cron("0 0 * * *"), utc(2025, 1, 1, 1), utc(2025, 1, 1, 23), UTC) == []


def test_catchup_run_id_is_deterministic_and_names_the_utc_slot():
    slot = datetime(2025, 1, 2, 12, 30, tzinfo=TOKYO)  # 03:30 UTC
    digest = hashlib.sha256(b"etl").hexdigest()[:12]
    assert catchup_run_id("etl", slot) == f"catchup-{digest}-20250102T033000"
    assert catchup_run_id("etl", slot.astimezone(UTC)) == catchup_run_id("etl", slot)
    assert catchup_run_id("etl2", slot) != catchup_run_id("etl", slot)


# -- should_start ----------------------------------------------------------------------------

SLOT = utc(2025, 1, 1, 10, 0)
PREV = utc(2025, 1, 1, 9, 0)


def live(latest, *, skip_if_successful=False, overlap_policy="skip"):
    return should_start(latest, SLOT, PREV, skip_if_successful=skip_if_successful, overlap_policy=overlap_policy, is_catchup=False)


def catchup(latest, overlap_policy):
    return should_start(latest, SLOT, None, skip_if_successful=True, overlap_policy=overlap_policy, is_catchup=True)


def test_first_run_starts():
    assert live(None).is_start


@pytest.mark.parametrize("status", [RunStatus.RUNNING, RunStatus.QUEUED, RunStatus.WAITING])
def test_live_slot_is_skipped_while_the_latest_run_is_active(status):
    decision = live(record(status, began=PREV - timedelta(hours=1)), overlap_policy="all")
    assert decision.action == "skip"
    assert "overlap" in decision.reason


def test_live_slot_is_skipped_when_the_latest_run_began_at_or_after_it():
    assert live(record(RunStatus.FAILED, began=SLOT)).action == "skip"
    assert live(record(RunStatus.FAILED, began=SLOT + timedelta(seconds=5))).action == "skip"
    assert live(record(RunStatus.FAILED, began=SLOT - timedelta(seconds=1))).is_start


def test_queued_time_counts_as_when_the_run_began():
    latest = RunRecord("etl", "r1", status=RunStatus.SUCCEEDED, queued_at=SLOT, started_at=SLOT + timedelta(minutes=1))
    assert live(latest).action == "skip"


def test_skip_if_successful_skips_after_a_success_since_the_previous_slot():
    latest = record(RunStatus.SUCCEEDED, began=PREV + timedelta(minutes=5))
    assert live(latest, skip_if_successful=True).action == "skip"
    assert live(latest, skip_if_successful=False).is_start


def test_skip_if_successful_starts_after_a_failure_or_an_older_success():
    assert live(record(RunStatus.FAILED, began=PREV + timedelta(minutes=5)), skip_if_successful=True).is_start
    assert live(record(RunStatus.SUCCEEDED, began=PREV - timedelta(minutes=5)), skip_if_successful=True).is_start


def test_catchup_slot_starts_when_nothing_runs_even_if_a_later_run_exists():
    # NOTE: the live rules would skip this (the latest run began after the slot).
    latest = record(RunStatus.SUCCEEDED, began=SLOT + timedelta(hours=3))
    assert catchup(latest, "skip").is_start


@pytest.mark.parametrize(("policy", "action"), [("skip", "skip"), ("all", "wait"), ("latest", "wait")])
def test_catchup_slot_while_running_follows_the_overlap_policy(policy, action):
    assert catchup(record(RunStatus.RUNNING, began=SLOT), policy).action == action
    assert catchup(record(RunStatus.QUEUED), policy).action == action


def test_catchup_slot_without_previous_runs_starts():
    assert catchup(None, "all").is_start
