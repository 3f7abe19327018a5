"""The backend's one clock: the database's, as seen from this process without a round trip.

Leases and timers are decided by the database (`now()` in the claim and due-time queries), so
history timestamps, timers' FireAt and the wake-up horizon must use the same time, or two hosts
with skewed clocks disagree (a host one hour ahead would schedule every timer an hour late).
Every claim already returns the database's `now()`; `DatabaseClock` keeps the offset between that
and this process's clock, so `now()` costs no query. An episode uses its claim's own `now()`.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta

from .history import utc_now


class DatabaseClock:
    """The database's time: this process's clock plus the offset measured at the last calibration.

    `process_clock` is injectable so a test can skew it; the offset then absorbs the skew.
    """

    def __init__(self, process_clock: Callable[[], datetime] = utc_now) -> None:
        self.process_clock = process_clock
        self.offset = timedelta(0)

    def calibrate(self, database_now: datetime, sent: datetime, received: datetime) -> None:
        """`database_now` was read by a query sent at `sent` and answered at `received` (process clock).

        The server took its `now()` somewhere in between; the midpoint errs by at most half the
        round trip (well under a millisecond on a local database).
        """
        self.offset = database_now - (sent + (received - sent) / 2)

    def now(self) -> datetime:
        return self.process_clock() + self.offset
