"""Timer trigger schedules: NCRONTAB (`{second} {minute} {hour} {day} {month} {day-of-week}`) and
TimeSpan intervals (`hh:mm:ss`), as the Functions timer trigger reads them.

Fields take `*`, numbers, ranges `a-b`, steps `*/n`, `a-b/n`, `a/n`, lists `a,b`, and English names
for months (`Jan`) and days (`Mon`); day-of-week 0 (or 7) is Sunday. Like NCrontab, a time
matches when day-of-month AND day-of-week both match. A 5-field expression gets second 0.
Times are UTC (the host's default without WEBSITE_TIME_ZONE).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

__all__ = ["CronSchedule", "IntervalSchedule", "Schedule", "ScheduleError", "parse_schedule"]

_MONTHS = ["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"]
_DAYS = ["sun", "mon", "tue", "wed", "thu", "fri", "sat"]
_TIMESPAN = re.compile(r"^(?:(\d+)\.)?(\d{1,2}):(\d{2}):(\d{2})$")
_SEARCH_DAYS = 366 * 5


class ScheduleError(ValueError):
    """A schedule the timer trigger would reject."""


def _value(text: str, names: list[str] | None, low: int) -> int:
    lowered = text.lower()
    if names is not None and lowered[:3] in names and lowered.isalpha():
        return names.index(lowered[:3]) + low
    if not text.isdigit():
        raise ScheduleError(f"not a number: {text!r}")
    return int(text)


def _field(text: str, low: int, high: int, names: list[str] | None = None) -> tuple[int, ...]:
    values: set[int] = set()
    for part in text.split(","):
        spec, _, step_text = part.partition("/")
        step = int(step_text) if step_text else 1
        if step_text and (not step_text.isdigit() or step < 1):
            raise ScheduleError(f"bad step in {part!r}")
        if spec == "*":
            start, end = low, high
        elif "-" in spec:
            first, last = spec.split("-", 1)
            start, end = _value(first, names, low), _value(last, names, low)
        else:
            start = _value(spec, names, low)
            end = high if step_text else start
        if not (low <= start <= high and low <= end <= high) or start > end:
            raise ScheduleError(f"{part!r} is outside {low}-{high}")
        values.update(range(start, end + 1, step))
    return tuple(sorted(values))


@dataclass(frozen=True)
class CronSchedule:
    """A parsed NCRONTAB expression."""

    expression: str
    seconds: tuple[int, ...]
    minutes: tuple[int, ...]
    hours: tuple[int, ...]
    days: frozenset[int]
    months: frozenset[int]
    weekdays: frozenset[int]

    @classmethod
    def parse(cls, expression: str) -> CronSchedule:
        fields = expression.split()
        if len(fields) == 5:
            fields = ["0", *fields]
        if len(fields) != 6:
            raise ScheduleError(f"NCRONTAB needs 6 fields, got {expression!r}")
        weekdays = {d % 7 for d in _field(fields[5], 0, 7, _DAYS)}
        return cls(
            expression=expression,
            seconds=_field(fields[0], 0, 59),
            minutes=_field(fields[1], 0, 59),
            hours=_field(fields[2], 0, 23),
            days=frozenset(_field(fields[3], 1, 31)),
            months=frozenset(_field(fields[4], 1, 12, _MONTHS)),
            weekdays=frozenset(weekdays),
        )

    def _day_matches(self, day: date) -> bool:
        return (
            day.month in self.months and day.day in self.days and (day.weekday() + 1) % 7 in self.weekdays
        )

    def next_after(self, after: datetime) -> datetime:
        """The first occurrence strictly after `after` (an aware datetime), in UTC."""
        start = after.astimezone(UTC).replace(microsecond=0) + timedelta(seconds=1)
        day = start.date()
        for _ in range(_SEARCH_DAYS):
            if self._day_matches(day):
                today = day == start.date()
                for hour in self.hours:
                    if today and hour < start.hour:
                        continue
                    this_hour = today and hour == start.hour
                    for minute in self.minutes:
                        if this_hour and minute < start.minute:
                            continue
                        this_minute = this_hour and minute == start.minute
                        for second in self.seconds:
                            if this_minute and second < start.second:
                                continue
                            return datetime(day.year, day.month, day.day, hour, minute, second, tzinfo=UTC)
            day += timedelta(days=1)
        raise ScheduleError(f"{self.expression!r} never fires")


@dataclass(frozen=True)
class IntervalSchedule:
    """A TimeSpan schedule (`00:05:00`, `1.00:00:00`): every interval from the previous run."""

    expression: str
    interval: timedelta

    def next_after(self, after: datetime) -> datetime:
        return after.astimezone(UTC) + self.interval


Schedule = CronSchedule | IntervalSchedule


def parse_schedule(expression: str) -> Schedule:
    """Parse a timer trigger schedule (NCRONTAB or TimeSpan), or raise ScheduleError."""
    found = _TIMESPAN.match(expression.strip())
    if found is None:
        return CronSchedule.parse(expression)
    days, hours, minutes, seconds = (int(g) if g else 0 for g in found.groups())
    interval = timedelta(days=days, hours=hours, minutes=minutes, seconds=seconds)
    if interval <= timedelta(0) or hours > 23 or minutes > 59 or seconds > 59:
        raise ScheduleError(f"bad TimeSpan schedule {expression!r}")
    return IntervalSchedule(expression, interval)
