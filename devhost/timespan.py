""".NET `TimeSpan` text as the Functions host reads and writes it (`functionTimeout`, timer intervals).

Accepted: `[d.]hh:mm[:ss[.fffffff]]` (what `TimeSpan.Parse` takes for the settings devhost reads);
written: the invariant "c" format (`00:10:00`, `00:00:00.5000000`, `1.02:00:00`), the text the host
puts into its messages (e.g. a function timeout's).
"""

from __future__ import annotations

import re
from datetime import timedelta

__all__ = ["format_timespan", "parse_timespan"]

_TIMESPAN = re.compile(r"^(?:(\d+)\.)?(\d{1,2}):(\d{1,2})(?::(\d{1,2})(?:\.(\d{1,7}))?)?$")


def parse_timespan(text: str) -> timedelta:
    """Parse a TimeSpan; raise ValueError for anything else (hours > 23 etc. included)."""
    found = _TIMESPAN.match(text.strip())
    if found is None:
        raise ValueError(f"not a TimeSpan (expected [d.]hh:mm:ss): {text!r}")
    days, hours, minutes, seconds, fraction = found.groups()
    hour, minute, second = int(hours), int(minutes), int(seconds or 0)
    if hour > 23 or minute > 59 or second > 59:
        raise ValueError(f"TimeSpan field out of range: {text!r}")
    ticks = int((fraction or "0").ljust(7, "0"))  # 100 ns units, like .NET
    return timedelta(days=int(days or 0), hours=hour, minutes=minute, seconds=second,
                     microseconds=ticks / 10)


def format_timespan(span: timedelta) -> str:
    """The .NET "c" format: `[d.]hh:mm:ss[.fffffff]`, the fraction only when there is one."""
    total_us = round(span.total_seconds() * 1_000_000)
    sign = "-" if total_us < 0 else ""
    total_us = abs(total_us)
    seconds, micros = divmod(total_us, 1_000_000)
    minutes, second = divmod(seconds, 60)
    hours, minute = divmod(minutes, 60)
    days, hour = divmod(hours, 24)
    text = f"{sign}{f'{days}.' if days else ''}{hour:02d}:{minute:02d}:{second:02d}"
    return f"{text}.{micros * 10:07d}" if micros else text
