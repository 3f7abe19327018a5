"""Fire timer triggers on their schedules, one asyncio task per timer function.

Like the host (which holds a singleton lock per timer), a timer never overlaps itself: the next
occurrence is computed after the previous run ends, and a run that starts more than a second after
its due time is marked `past_due`. `run_on_startup` fires once when devhost starts.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from concurrent.futures import Executor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from azure.functions.timer import TimerRequest

from devhost.invoker import Invoker
from devhost.ncrontab import Schedule, parse_schedule

__all__ = ["TimerScheduler"]

logger = logging.getLogger("devhost.timers")

_PAST_DUE_AFTER = timedelta(seconds=1)


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat().replace("+00:00", "Z") if moment else None


@dataclass
class _Timer:
    invoker: Invoker
    schedule: Schedule
    run_on_startup: bool
    last: datetime | None = None


class TimerScheduler:
    """Runs the timer functions of the app until `stop()`."""

    def __init__(
        self,
        invokers: list[Invoker],
        executor: Executor,
        *,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._timers: list[_Timer] = []
        for invoker in invokers:
            timer = invoker.entry.timer
            if timer is None:
                raise ValueError(f"{invoker.entry.name} is not a timer function")
            self._timers.append(_Timer(invoker, parse_schedule(timer.schedule), timer.run_on_startup))
        self._executor = executor
        self._clock = clock
        self._tasks: list[asyncio.Task[None]] = []
        self._stopping = asyncio.Event()
        self.fired: dict[str, int] = {t.invoker.entry.name: 0 for t in self._timers}

    def start(self) -> None:
        for timer in self._timers:
            name = f"timer:{timer.invoker.entry.name}"
            self._tasks.append(asyncio.create_task(self._run(timer), name=name))

    def next_due(self, name: str) -> datetime:
        """When the timer `name` fires next after now (for the banner and tests)."""
        timer = next(t for t in self._timers if t.invoker.entry.name == name)
        return timer.schedule.next_after(self._clock())

    async def stop(self, grace: float) -> None:
        """Stop scheduling; give a running invocation up to `grace` seconds, then cancel it."""
        self._stopping.set()
        tasks, self._tasks = self._tasks, []
        if not tasks:
            return
        _, pending = await asyncio.wait(tasks, timeout=grace)
        for task in pending:
            logger.warning("timer %s did not stop within %.1fs: cancelled", task.get_name(), grace)
            task.cancel()
        if pending:
            await asyncio.wait(pending)

    async def _run(self, timer: _Timer) -> None:
        if timer.run_on_startup:
            await self._fire(timer, due=self._clock())
        while not self._stopping.is_set():
            now = self._clock()
            due = timer.schedule.next_after(now)
            try:
                await asyncio.wait_for(self._stopping.wait(), max(0.0, (due - now).total_seconds()))
            except TimeoutError:
                await self._fire(timer, due=due)

    async def _fire(self, timer: _Timer, *, due: datetime) -> None:
        started = self._clock()
        request = TimerRequest(
            past_due=started - due > _PAST_DUE_AFTER,
            schedule_status={
                "Last": _iso(timer.last),
                "Next": _iso(timer.schedule.next_after(due)),
                "LastUpdated": _iso(started),
            },
            schedule={"AdjustForDST": True},
        )
        timer.last = started
        name = timer.invoker.entry.name
        self.fired[name] += 1
        try:
            await timer.invoker.invoke(request, self._executor)
        except Exception:
            logger.exception("timer function %s failed", name)
