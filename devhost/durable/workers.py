"""The worker loops: orchestrator episodes and activity calls, claimed from Postgres with leases."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import OrderedDict
from collections.abc import Callable
from concurrent.futures import Executor
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID, uuid4

from .activities import run_activity
from .episode import decide
from .history import utc_now
from .model import TERMINAL, EpisodeOutcome, InstanceRow
from .registry import ActivityFunction
from .store import ClaimedActivity, LeaseLost, WorkerStore

log = logging.getLogger("devhost.durable")


@dataclass
class WorkerStats:
    """Counters a test or benchmark can read."""

    episodes: int = 0
    activities: int = 0
    leases_lost: int = 0


class Wakeup:
    """A set of events woken together (by NOTIFY or by local work), waited on one per loop."""

    def __init__(self) -> None:
        self.events: list[asyncio.Event] = []

    def new(self) -> asyncio.Event:
        self.events.append(asyncio.Event())
        return self.events[-1]

    def wake(self) -> None:
        for item in self.events:
            item.set()


async def sleep_until_set(event: asyncio.Event, seconds: float) -> None:
    """Wait for `event`, at most `seconds` (the polling fallback when no NOTIFY arrives)."""
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(seconds):
            await event.wait()


class TimerHorizon:
    """When the next durable timer is due, without asking the database on every idle moment.

    Timers this process writes are noted directly; others' are learned by a query that runs at
    most every `refresh` seconds (NOTIFY wakes the loops for them anyway).
    """

    def __init__(self, refresh: float) -> None:
        self.refresh = refresh
        self.due: datetime | None = None
        self.checked = -1e9

    def note(self, moment: datetime) -> None:
        if self.due is None or moment < self.due:
            self.due = moment

    async def seconds_until_due(self, store: WorkerStore, cap: float) -> float:
        loop_now = asyncio.get_running_loop().time()
        if loop_now - self.checked > self.refresh:
            self.checked = loop_now
            self.due = await store.next_due()
        if self.due is None:
            return cap
        left = (self.due - utc_now()).total_seconds()
        if left <= 0:
            self.due = None
            return 0.0
        return min(cap, left)


class HistoryCache:
    """Histories this worker wrote last, so a following episode needs no history query.

    An entry is used only when its length equals the claimed row's `history_len`.
    """

    def __init__(self, capacity: int = 4096) -> None:
        self.capacity = capacity
        self.items: OrderedDict[str, tuple[str, list[str]]] = OrderedDict()

    def get(self, row: InstanceRow) -> list[str] | None:
        if row.history_len == 0:
            return []
        hit = self.items.get(row.instance_id)
        if hit is None or hit[0] != row.execution_id or len(hit[1]) != row.history_len:
            return None
        self.items.move_to_end(row.instance_id)
        return hit[1]

    def put(self, row: InstanceRow, history: list[str], out: EpisodeOutcome) -> None:
        if out.status in TERMINAL or out.new_execution is not None:
            self.items.pop(row.instance_id, None)
            return
        self.items[row.instance_id] = (row.execution_id, history + out.history)
        self.items.move_to_end(row.instance_id)
        while len(self.items) > self.capacity:
            self.items.popitem(last=False)

    def forget(self, instance_id: str) -> None:
        self.items.pop(instance_id, None)


class EpisodeWorker:
    """Claims instances with due messages, replays them off the loop, commits each episode."""

    def __init__(
        self,
        store: WorkerStore,
        orchestrators: dict[str, Callable[..., Any]],
        replay_executor: Executor,
        stats: WorkerStats,
        held: set[UUID],
        *,
        batch: int,
        poll_interval: float,
        inline_max_events: int,
    ) -> None:
        self.store = store
        self.orchestrators = orchestrators
        self.inline_max_events = inline_max_events
        self.executor = replay_executor
        self.stats = stats
        self.held = held
        self.batch = batch
        self.poll_interval = poll_interval
        self.cache = HistoryCache()
        self.horizon = TimerHorizon(refresh=poll_interval)
        self.stopping = False
        self.on_scheduled: Callable[[], None] = lambda: None
        self.on_messages: Callable[[], None] = lambda: None

    async def run(self, wake: asyncio.Event) -> None:
        """One lane: claim and process batches until stopped; sleep until woken or a timer is due."""
        while not self.stopping:
            wake.clear()
            try:
                if await self.run_batch():
                    continue
                timeout = await self.horizon.seconds_until_due(self.store, self.poll_interval)
            except Exception:  # a database hiccup must not kill the lane: log, back off, retry
                log.exception("durable episode lane failed; retrying")
                timeout = self.poll_interval
            if not self.stopping:
                await sleep_until_set(wake, timeout)

    async def run_batch(self) -> bool:
        token = uuid4()
        rows = await self.store.claim_episodes(self.batch, token)
        if not rows:
            return False
        self.held.add(token)
        try:
            ids = [r.instance_id for r in rows]
            inbox = await self.store.load_inbox(ids)
            cached = {r.instance_id: self.cache.get(r) for r in rows}
            loaded = await self.store.load_history([i for i, h in cached.items() if h is None])
            histories = {i: (h if h is not None else loaded.get(i, [])) for i, h in cached.items()}
            await asyncio.gather(
                *(self.process(r, histories[r.instance_id], inbox.get(r.instance_id, [])) for r in rows)
            )
        finally:
            self.held.discard(token)
        return True

    async def process(self, row: InstanceRow, history: list[str], inbox: list[Any]) -> None:
        loop = asyncio.get_running_loop()
        try:
            if len(history) <= self.inline_max_events:
                out = decide(row, history, inbox, self.orchestrators, utc_now())
            else:
                out = await loop.run_in_executor(
                    self.executor, decide, row, history, inbox, self.orchestrators, utc_now()
                )
            await self.store.commit_episode(row, out)
        except LeaseLost:
            self.stats.leases_lost += 1
            self.cache.forget(row.instance_id)
            return
        except Exception:  # left leased: it is retried when the lease expires
            log.exception("durable episode of %s failed", row.instance_id)
            self.cache.forget(row.instance_id)
            return
        self.cache.put(row, history, out)
        for message in out.messages:
            self.horizon.note(message.visible_at)
        if out.activities:
            self.on_scheduled()
        if out.messages or out.children:
            self.on_messages()
        if out.replayed:
            self.stats.episodes += 1


class ActivityWorker:
    """Claims activity calls up to a concurrency bound and records their completions in batches."""

    def __init__(
        self,
        store: WorkerStore,
        activities: dict[str, ActivityFunction],
        executor: Executor,
        stats: WorkerStats,
        held: set[UUID],
        *,
        concurrency: int,
        poll_interval: float,
    ) -> None:
        self.store = store
        self.activities = activities
        self.executor = executor
        self.stats = stats
        self.held = held
        self.concurrency = concurrency
        self.poll_interval = poll_interval
        self.running: dict[asyncio.Task[None], ClaimedActivity] = {}
        self.outstanding: dict[UUID, int] = {}
        self.done: asyncio.Queue[tuple[ClaimedActivity, str]] = asyncio.Queue()
        self.slot_free = asyncio.Event()
        self.stopping = False
        self.on_recorded: Callable[[], None] = lambda: None

    async def run(self, wake: asyncio.Event) -> None:
        while not self.stopping:
            free = self.concurrency - len(self.running)
            if free <= 0:
                self.slot_free.clear()
                await sleep_until_set(self.slot_free, self.poll_interval)
                continue
            wake.clear()
            try:
                claimed = await self.claim(free)
            except Exception:
                log.exception("durable activity claim failed; retrying")
                claimed = False
            if not claimed and not self.stopping:
                await sleep_until_set(wake, self.poll_interval)

    async def claim(self, limit: int) -> bool:
        token = uuid4()
        claims = await self.store.claim_activities(limit, token)
        if not claims:
            return False
        self.held.add(token)
        self.outstanding[token] = len(claims)
        for claim in claims:
            task = asyncio.create_task(self.execute(claim), name=f"activity {claim.name}")
            self.running[task] = claim
            task.add_done_callback(self._finished)
        return True

    async def execute(self, claim: ClaimedActivity) -> None:
        completion = await run_activity(self.activities.get(claim.name), claim, self.executor)
        await self.done.put((claim, completion))

    def _finished(self, task: asyncio.Task[None]) -> None:
        self.running.pop(task, None)
        self.slot_free.set()

    async def record_completions(self) -> None:
        """Drain finished calls and commit them together: one statement per burst, no added wait."""
        while True:
            batch = [await self.done.get()]
            while not self.done.empty():
                batch.append(self.done.get_nowait())
            await self.flush(batch)

    async def flush(self, batch: list[tuple[ClaimedActivity, str]]) -> None:
        for attempt in range(5):
            try:
                await self.store.complete_activities(batch)
            except Exception:  # unrecorded calls re-run after their lease expires (at-least-once)
                log.exception("recording %d activity completions failed (attempt %d)", len(batch), attempt)
                await asyncio.sleep(0.2 * (attempt + 1))
                continue
            self.stats.activities += len(batch)
            self.on_recorded()
            break
        for claim, _ in batch:
            left = self.outstanding.get(claim.token, 1) - 1
            if left <= 0:
                self.outstanding.pop(claim.token, None)
                self.held.discard(claim.token)
            else:
                self.outstanding[claim.token] = left

    async def drain(self) -> None:
        batch: list[tuple[ClaimedActivity, str]] = []
        while not self.done.empty():
            batch.append(self.done.get_nowait())
        if batch:
            await self.flush(batch)
