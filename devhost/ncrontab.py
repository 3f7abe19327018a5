"""Timer trigger schedules: NCRONTAB (`{second} {minute} {hour} {day} {month} {day-of-week}`) and
TimeSpan intervals (`hh:mm:ss`), as the Functions timer trigger reads them.

Occurrences come from `croniter`, with seconds as the first field (`second_at_beginning`) and, like
NCrontab, a time matching only when day-of-month AND day-of-week both match (`day_or=False`).
A 5-field expression gets second 0. Times are UTC (the host's default without WEBSITE_TIME_ZONE).

Two parts stay hand-written, because croniter would lose them:
- the field check: croniter accepts more than NCRONTAB does (a seventh "year" field, `L`, `W`,
  `#`, `?`, `H` hashes), so a schedule Azure refuses at startup would fire under devhost; each
  field is checked against NCRONTAB's own grammar (`*`, numbers, ranges `a-b`, steps `*/n`,
  `a-b/n`, `a/n`, lists `a,b`, English month and day names, full or three letters; croniter
  knows only the three-letter ones) before croniter sees it;
- TimeSpan schedules, which are not cron at all (parsed like the host's `TimeSpan`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from croniter import CroniterError, croniter  # type: ignore[import-untyped]

from devhost.timespan import parse_timespan

__all__ = ["CronSchedule", "IntervalSchedule", "Schedule", "ScheduleError", "parse_schedule"]

_NAMES = frozenset(
    ["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec",
     "sun", "mon", "tue", "wed", "thu", "fri", "sat"]
)
_ATOM = re.compile(r"^(\*|\d+|[A-Za-z]{3,9})$")
#: how many years ahead croniter searches for an occurrence before calling a schedule impossible
_SEARCH_YEARS = 5


class ScheduleError(ValueError):
    """A schedule the timer trigger would reject."""


def _check_field(text: str) -> str:
    """Refuse what croniter accepts but NCRONTAB does not (see the module docstring); return the
    field with full month/day names (`Monday`) shortened to the three letters croniter knows."""
    parts = []
    for part in text.split(","):
        spec, slash, step = part.partition("/")
        if slash and not step.isdigit():
            raise ScheduleError(f"bad step in {part!r}")
        atoms = []
        for atom in spec.split("-", 1):
            if not _ATOM.match(atom) or (atom.isalpha() and atom[:3].lower() not in _NAMES):
                raise ScheduleError(f"{atom!r} in {part!r} is not an NCRONTAB value")
            atoms.append(atom[:3].lower() if atom.isalpha() else atom)
        parts.append("-".join(atoms) + slash + step)
    return ",".join(parts)


@dataclass(frozen=True)
class CronSchedule:
    """A parsed NCRONTAB expression (six fields, seconds first)."""

    expression: str
    fields: str  #: the six fields croniter evaluates

    @classmethod
    def parse(cls, expression: str) -> CronSchedule:
        fields = expression.split()
        if len(fields) == 5:
            fields = ["0", *fields]
        if len(fields) != 6:
            raise ScheduleError(f"NCRONTAB needs 6 fields, got {expression!r}")
        text = " ".join(_check_field(field) for field in fields)
        try:
            croniter(text, second_at_beginning=True, day_or=False)
        except CroniterError as exc:
            raise ScheduleError(f"bad NCRONTAB expression {expression!r}: {exc}") from exc
        return cls(expression=expression, fields=text)

    def next_after(self, after: datetime) -> datetime:
        """The first occurrence strictly after `after` (an aware datetime), in UTC."""
        start = after.astimezone(UTC)
        try:
            found: datetime = croniter(
                self.fields, start, second_at_beginning=True, day_or=False,
                max_years_between_matches=_SEARCH_YEARS,
            ).get_next(datetime)
        except CroniterError as exc:  # e.g. 30 February: no occurrence at all
            raise ScheduleError(f"{self.expression!r} never fires") from exc
        return found.astimezone(UTC)


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
    if ":" not in expression:
        return CronSchedule.parse(expression)
    try:
        interval = parse_timespan(expression)
    except ValueError as exc:
        raise ScheduleError(f"bad TimeSpan schedule {expression!r}: {exc}") from exc
    if interval <= timedelta(0):
        raise ScheduleError(f"bad TimeSpan schedule {expression!r}: must be positive")
    return IntervalSchedule(expression, interval)
