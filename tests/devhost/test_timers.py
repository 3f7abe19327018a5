"""Timer triggers fire on their NCRONTAB schedule, with run_on_startup, and stop cleanly."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import pytest

from devhost.ncrontab import CronSchedule, IntervalSchedule, ScheduleError, parse_schedule
from devhost.timers import TimerScheduler
from tests.devhost.conftest import SampleHost

MAY_1_2024_WED = datetime(2024, 5, 1, 10, 0, 7, 500000, tzinfo=UTC)


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        ("*/5 * * * * *", datetime(2024, 5, 1, 10, 0, 10, tzinfo=UTC)),
        ("0 */5 * * * *", datetime(2024, 5, 1, 10, 5, tzinfo=UTC)),
        ("0 0 9 * * Mon-Fri", datetime(2024, 5, 2, 9, tzinfo=UTC)),
        ("0 30 9 * Jan Mon", datetime(2025, 1, 6, 9, 30, tzinfo=UTC)),
        ("0 0 0 29 2 *", datetime(2028, 2, 29, tzinfo=UTC)),
        ("0 0 0 31 * 0", datetime(2025, 8, 31, tzinfo=UTC)),
        ("5/15 * * * * *", datetime(2024, 5, 1, 10, 0, 20, tzinfo=UTC)),
        ("0 0 10,14 * * *", datetime(2024, 5, 1, 14, tzinfo=UTC)),
        ("1 10 * * *", datetime(2024, 5, 1, 10, 1, tzinfo=UTC)),
    ],
)
def test_ncrontab_next_occurrence(expression: str, expected: datetime) -> None:
    assert parse_schedule(expression).next_after(MAY_1_2024_WED) == expected


def test_timespan_schedule_is_an_interval() -> None:
    schedule = parse_schedule("01:30:00")
    assert isinstance(schedule, IntervalSchedule)
    assert (schedule.next_after(MAY_1_2024_WED) - MAY_1_2024_WED).total_seconds() == 5400


@pytest.mark.parametrize(
    "expression",
    [
        "* * * *", "61 * * * * *", "0 0 0 30 2 *", "*/0 * * * * *", "a b c d e f",
        # croniter extensions NCRONTAB does not have (the host refuses them at startup)
        "0 0 0 * * * 2030", "0 0 0 L * *", "0 0 0 ? * Mon", "0 0 0 * * 5#3", "H * * * * *",
        "25:00:00",
    ],
)
def test_invalid_or_impossible_schedules_are_rejected(expression: str) -> None:
    with pytest.raises(ScheduleError):
        parse_schedule(expression).next_after(MAY_1_2024_WED)


def test_day_seven_is_sunday_and_full_names_work_like_short_ones() -> None:
    assert parse_schedule("0 0 0 * * 7").next_after(MAY_1_2024_WED) == datetime(2024, 5, 5, tzinfo=UTC)
    assert parse_schedule("0 0 9 * January Monday-Friday").next_after(MAY_1_2024_WED) == datetime(
        2025, 1, 1, 9, tzinfo=UTC
    )
    with pytest.raises(ScheduleError):
        parse_schedule("0 0 0 * * Someday")


def test_a_cron_schedule_needs_day_of_month_and_weekday_to_match() -> None:
    schedule = CronSchedule.parse("0 0 0 13 * Fri")
    assert schedule.next_after(MAY_1_2024_WED) == datetime(2024, 9, 13, tzinfo=UTC)


async def test_timer_runs_on_startup_then_on_schedule_and_stops(sample_host: SampleHost) -> None:
    calls = sample_host.module.TIMER_CALLS
    calls.clear()
    scheduler = TimerScheduler(sample_host.plan.timers, sample_host.executor)
    loop = asyncio.get_running_loop()
    scheduler.start()
    try:
        deadline = loop.time() + 5
        while len(calls) < 3 and loop.time() < deadline:
            await asyncio.sleep(0.05)
    finally:
        await scheduler.stop(grace=2)
    assert len(calls) >= 3, calls
    past_due, status = calls[-1]
    assert past_due is False
    assert set(status) == {"Last", "Next", "LastUpdated"}
    assert status["Last"] is not None
    count = len(calls)
    await asyncio.sleep(1.2)
    assert len(calls) == count, "a stopped scheduler must not fire again"

