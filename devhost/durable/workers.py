"""The worker loops: orchestrator episodes and activity calls, claimed from Postgres with leases."""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
from collections import OrderedDict
from collections.abc import Callable
from concurrent.futures import Executor, ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID, uuid4

from .activities import run_activity, timed_out
from .clock import DatabaseClock
from .episode import decide, give_up
from .model import TERMINAL, EpisodeOutcome, InstanceRow
from .registry import ActivityFunction
from .replay import Session
from .store import ClaimedActivity, ClaimedEpisode, LeaseLost, StoreCounters, WorkerStore

log = logging.getLogger("devhost.durable")


@dataclass
class WorkerStats(StoreCounters):
    """Counters a test or benchmark can read (with the store's round trips and commits)."""

    episodes: int = 0
    activities: int = 0
    leases_lost: int = 0
    episodes_failed: int = 0  #: attempts that raised (each retried after a backoff)
    instances_given_up: int = 0  #: instances failed because their episode kept failing
    activities_timed_out: int = 0  #: activity calls abandoned after functionTimeout
    episodes_resumed: int = 0  #: committed episodes that ran in a live session (no full replay)
    activities_claimed: int = 0  #: activity calls this host took with a claim query
    activities_dispatched: int = 0  #: activity calls its episode commits leased to it (local dispatch)


class Wakeup:
    """A set of events woken together (by NOTIFY or by local work), waited on one per loop."""

    def __init__(self) -> None:
        self.events: list[asyncio.Event] = []
        self.idle: list[asyncio.Event] = []  #: of loops asleep in `sleep`

    def new(self) -> asyncio.Event:
        self.events.append(asyncio.Event())
        return self.events[-1]

    def wake(self) -> None:
        for item in self.events:
            item.set()

    def wake_one(self) -> None:
        """Local work for one claim: wake one sleeping loop, not all (the others would each
        make an empty claim); when none sleeps, all, as the busy ones look again after their work."""
        for item in self.idle:
            if not item.is_set():
                item.set()
                return
        self.wake()

    async def sleep(self, event: asyncio.Event, seconds: float) -> None:
        self.idle.append(event)
        try:
            await sleep_until_set(event, seconds)
        finally:
            self.idle.remove(event)


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

    def __init__(self, refresh: float, clock: DatabaseClock) -> None:
        self.refresh = refresh
        self.clock = clock
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
        left = (self.due - self.clock.now()).total_seconds()
        if left <= 0:
            self.due = None
            return 0.0
        return min(cap, left)


class HistoryCache:
    """Histories this worker wrote last, so a following episode needs no history query, and the
    live sessions of the most recent `session_capacity` instances, so it needs no full replay
    (replay.py, Sessions).

    An entry is used only when its execution and length equal the claimed row's.
    """

    def __init__(self, capacity: int = 4096, session_capacity: int = 256) -> None:
        self.capacity = capacity
        self.items: OrderedDict[str, tuple[str, list[str]]] = OrderedDict()
        self.session_capacity = session_capacity
        self.sessions: OrderedDict[str, tuple[str, int, Session]] = OrderedDict()

    def session(self, row: InstanceRow) -> Session | None:
        """The live session left by this instance's last episode, if it is the claimed state;
        taken out (an episode advances it: only a committed one puts it back)."""
        hit = self.sessions.pop(row.instance_id, None)
        if hit is None or hit[0] != row.execution_id or hit[1] != row.history_len:
            return None
        return hit[2]

    def get(self, row: InstanceRow) -> list[str] | None:
        if row.history_len == 0:
            return []
        hit = self.items.get(row.instance_id)
        if hit is None or hit[0] != row.execution_id or len(hit[1]) != row.history_len:
            return None
        self.items.move_to_end(row.instance_id)
        return hit[1]

    def put(self, row: InstanceRow, history: list[str], out: EpisodeOutcome) -> None:
        """Keep `history` (extended by the episode's events) for the instance's next episode."""
        if out.status in TERMINAL or out.new_execution is not None:
            self.forget(row.instance_id)
            return
        history.extend(out.history)  # in place: no copy of the whole history per episode
        self.items[row.instance_id] = (row.execution_id, history)
        self.items.move_to_end(row.instance_id)
        while len(self.items) > self.capacity:
            self.items.popitem(last=False)
        if out.session is not None:
            self.sessions[row.instance_id] = (row.execution_id, len(history), out.session)
            while len(self.sessions) > self.session_capacity:
                self.sessions.popitem(last=False)

    def forget(self, instance_id: str) -> None:
        self.items.pop(instance_id, None)
        self.sessions.pop(instance_id, None)


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
        max_attempts: int = 5,
        retry_seconds: float = 1.0,
    ) -> None:
        self.store = store
        self.max_attempts = max_attempts
        self.retry_seconds = retry_seconds
        self.orchestrators = orchestrators
        self.inline_max_events = inline_max_events
        self.executor = replay_executor
        self.stats = stats
        self.held = held
        self.batch = batch
        self.poll_interval = poll_interval
        self.cache = HistoryCache()
        self.horizon = TimerHorizon(refresh=poll_interval, clock=store.clock)
        self.stopping = False
        self.on_scheduled: Callable[[], None] = lambda: None
        self.on_messages: Callable[[], None] = lambda: None
        #: Local dispatch (ActivityWorker.reserve / adopt): slots for an episode's new activity
        #: calls, which its commit then leases to this host; none by default.
        self.reserve_local: Callable[[int], int] = lambda wanted: 0
        self.adopt_local: Callable[[list[ClaimedActivity], int], None] = lambda claims, reserved: None

    async def run(self, wake: asyncio.Event, wakeup: Wakeup | None = None) -> None:
        """One lane: claim and process batches until stopped; sleep until woken or a timer is due.

        A batch that was not full took everything due: the lane claims again only when woken
        (local work and NOTIFY set `wake`, also while the batch ran) or when a timer is due,
        not at once, which would cost an empty claim per episode when the load is light.
        """
        while not self.stopping:
            wake.clear()
            try:
                if await self.run_batch() >= self.batch:
                    continue
                timeout = await self.horizon.seconds_until_due(self.store, self.poll_interval)
            except Exception:  # a database hiccup must not kill the lane: log, back off, retry
                log.exception("durable episode lane failed; retrying")
                timeout = self.poll_interval
            if not self.stopping:
                await (wakeup.sleep(wake, timeout) if wakeup else sleep_until_set(wake, timeout))

    async def run_batch(self) -> int:
        """Claim and process one batch; return how many instances it claimed."""
        token = uuid4()
        claims, claimed_at = await self.store.claim_episodes(self.batch, token)
        if not claims or claimed_at is None:
            return 0
        self.held.add(token)
        try:
            histories = {c.row.instance_id: self.history_of(c) for c in claims}
            inbox = {c.row.instance_id: c.inbox for c in claims}
            stale = [c.row.instance_id for c in claims if c.stale]
            if stale:  # read before a concurrent commit (queries.CLAIM_EPISODES): read again
                inbox.update(await self.store.load_inbox(stale))
                inbox.update({i: inbox.get(i, []) for i in stale})
            missing = [i for i, h in histories.items() if h is None]
            loaded = await self.store.load_history(missing)
            await asyncio.gather(
                *(self.process(c.row, history if history is not None else loaded.get(c.row.instance_id, []),
                               inbox[c.row.instance_id], claimed_at)
                  for c in claims for history in [histories[c.row.instance_id]])
            )
        finally:
            self.held.discard(token)
        return len(claims)

    def history_of(self, claim: ClaimedEpisode) -> list[str] | None:
        """The claimed instance's history: read by the claim, else cached; None: read it."""
        row = claim.row
        if claim.stale:
            self.cache.forget(row.instance_id)
            return [] if row.history_len == 0 else None
        if claim.history is not None and len(claim.history) == row.history_len:
            return list(claim.history)
        if row.status in TERMINAL:  # nothing is replayed: late messages are only discarded
            return []
        return self.cache.get(row)

    async def process(
        self, row: InstanceRow, history: list[str], inbox: list[Any], now: datetime
    ) -> None:
        """Replay and commit one episode; `now` is the claim's database time (OrchestratorStarted)."""
        if row.episode_attempts > self.max_attempts:  # the attempts never finished: crashed workers
            await self.give_up(row, now, row.last_error or "the episode never finished (its worker "
                               "stopped or lost the lease every time)")
            return
        loop = asyncio.get_running_loop()
        session = self.cache.session(row)
        try:
            if session is not None or len(history) <= self.inline_max_events:
                out = decide(row, history, inbox, self.orchestrators, now, session)
            else:
                out = await loop.run_in_executor(
                    self.executor, decide, row, history, inbox, self.orchestrators, now
                )
            leased = await self.commit(row, out)
        except LeaseLost:
            self.stats.leases_lost += 1
            self.cache.forget(row.instance_id)
            return
        except Exception as exc:  # counted; retried after a backoff; given up after max_attempts
            self.cache.forget(row.instance_id)
            await self.failed(row, now, exc)
            return
        self.stats.episodes_resumed += session is not None
        self.committed(row, history, out, leased)

    async def commit(self, row: InstanceRow, out: EpisodeOutcome) -> int:
        """Commit the episode, its new activity calls leased to this host as far as the activity
        worker has free slots (they start at once); how many were."""
        reserved = self.reserve_local(len(out.activities)) if out.activities else 0
        leased: list[ClaimedActivity] = []
        try:
            leased = await self.store.commit_episode(row, out, dispatch=reserved,
                                                     dispatch_token=uuid4() if reserved else None)
        finally:
            self.adopt_local(leased, reserved)  # also gives the slots back when the commit failed
        return len(leased)

    def committed(self, row: InstanceRow, history: list[str], out: EpisodeOutcome, leased: int = 0) -> None:
        self.cache.put(row, history, out)
        for message in out.messages:
            if message.visible_at is not None:
                self.horizon.note(message.visible_at)
        if len(out.activities) > leased:  # calls left for a claim (this host's or another's)
            self.on_scheduled()
        if out.messages or out.children:
            self.on_messages()
        if out.replayed:
            self.stats.episodes += 1

    async def failed(self, row: InstanceRow, now: datetime, exc: Exception) -> None:
        """Count a failed attempt: back off before the next, or give the instance up after the last."""
        self.stats.episodes_failed += 1
        error = f"{type(exc).__name__}: {exc}"
        attempt = row.episode_attempts
        if attempt >= self.max_attempts:
            await self.give_up(row, now, error, cause=exc)
            return
        delay = min(self.store.lease_seconds, self.retry_seconds * 2 ** (attempt - 1))
        log.warning(
            "durable episode of %s failed (attempt %d of %d); retrying in %.1f s: %s",
            row.instance_id, attempt, self.max_attempts, delay, error, exc_info=attempt == 1,
        )
        try:
            await self.store.record_episode_failure(row, error, delay)
        except Exception:  # not recorded: the lease expires and the attempt counts all the same
            log.exception("recording the failed episode of %s failed", row.instance_id)

    async def give_up(
        self, row: InstanceRow, now: datetime, error: str, cause: BaseException | None = None
    ) -> None:
        """Fail a poisoned instance with the last error as its reason, like the host shows it."""
        attempts = min(row.episode_attempts, self.max_attempts)
        reason = (
            f"Orchestrator function '{row.name}' failed: {error} (the episode failed {attempts} "
            "times; the devhost durable backend gave up on it)"
        )
        out = give_up(row, reason, now)
        try:
            await self.store.commit_episode(row, out)
        except LeaseLost:
            self.stats.leases_lost += 1
            return
        except Exception:  # try again after the longest backoff
            log.exception("failing the poisoned instance %s failed", row.instance_id)
            with contextlib.suppress(Exception):
                await self.store.record_episode_failure(row, error, self.store.lease_seconds)
            return
        self.cache.forget(row.instance_id)
        self.stats.instances_given_up += 1
        log.error("durable instance %s failed: %s", row.instance_id, reason, exc_info=cause)
        self.committed(row, [], out)


class ActivityWorker:
    """Claims activity calls up to a concurrency bound and records their completions in batches.

    A call running longer than `function_timeout` seconds is abandoned as the Functions host
    does: it fails with the host's FunctionTimeoutException text (the orchestrator's retry
    policy then applies) and a late result is discarded. An async call is cancelled; a sync one
    cannot be stopped, so its thread is left to finish on its own and sync calls move to a fresh
    executor (the host restarts the worker process instead).
    """

    def __init__(
        self,
        store: WorkerStore,
        activities: dict[str, ActivityFunction],
        executor_factory: Callable[[], ThreadPoolExecutor],
        stats: WorkerStats,
        held: set[UUID],
        *,
        concurrency: int,
        poll_interval: float,
        function_timeout: float | None = None,
    ) -> None:
        self.store = store
        self.activities = activities
        self.executor_factory = executor_factory
        self.executor = executor_factory()
        self.stats = stats
        self.held = held
        self.concurrency = concurrency
        self.poll_interval = poll_interval
        self.function_timeout = function_timeout
        self.running: dict[asyncio.Task[None], ClaimedActivity] = {}
        self.outstanding: dict[UUID, int] = {}
        self.done: asyncio.Queue[tuple[ClaimedActivity, str]] = asyncio.Queue()
        self.slot_free = asyncio.Event()
        self.stopping = False
        self.on_recorded: Callable[[int], None] = lambda count: None  #: completions recorded
        self.reserved = 0  #: slots promised to episode commits that lease calls to this host

    def free_slots(self) -> int:
        return self.concurrency - len(self.running) - self.reserved

    def reserve(self, wanted: int) -> int:
        """Promise up to `wanted` slots to an episode commit's local dispatch; how many."""
        granted = 0 if self.stopping else max(0, min(wanted, self.free_slots()))
        self.reserved += granted
        return granted

    def adopt(self, claims: list[ClaimedActivity], reserved: int) -> None:
        """Start the calls an episode's commit leased to this host; the rest of `reserved` is freed."""
        self.reserved -= reserved
        if claims:
            self.stats.activities_dispatched += len(claims)
            self.start(claims)
        elif reserved:
            self.slot_free.set()

    async def run(self, wake: asyncio.Event) -> None:
        while not self.stopping:
            free = self.free_slots()
            if free <= 0:
                self.slot_free.clear()
                await sleep_until_set(self.slot_free, self.poll_interval)
                continue
            wake.clear()
            try:
                claimed = await self.claim(free)
            except Exception:
                log.exception("durable activity claim failed; retrying")
                claimed = 0
            if claimed < free and not self.stopping:  # took all that was due: wait to be woken
                await sleep_until_set(wake, self.poll_interval)

    async def claim(self, limit: int) -> int:
        """Claim up to `limit` calls and start them; return how many."""
        token = uuid4()
        claims = await self.store.claim_activities(limit, token)
        if not claims:
            return 0
        self.stats.activities_claimed += len(claims)
        self.start(claims)
        return len(claims)

    def start(self, claims: list[ClaimedActivity]) -> None:
        """Run claimed calls (all under one lease token, renewed while any of them is held)."""
        token = claims[0].token
        self.held.add(token)
        self.outstanding[token] = self.outstanding.get(token, 0) + len(claims)
        for claim in claims:
            task = asyncio.create_task(self.execute(claim), name=f"activity {claim.name}")
            self.running[task] = claim
            task.add_done_callback(self._finished)

    async def execute(self, claim: ClaimedActivity) -> None:
        activity = self.activities.get(claim.name)
        executor = self.executor
        try:
            async with asyncio.timeout(self.function_timeout):
                completion = await run_activity(activity, claim, executor, self.store.clock.now)
        except TimeoutError:  # run_activity turns the activity's own errors into completions
            assert self.function_timeout is not None
            self.stats.activities_timed_out += 1
            log.error("activity %s (instance %s) exceeded functionTimeout (%.1f s): abandoned",
                      claim.name, claim.instance_id, self.function_timeout)
            if activity is not None and not inspect.iscoroutinefunction(activity.func):
                self.abandon_executor(executor)
            completion = timed_out(activity, claim, self.function_timeout, self.store.clock.now())
        await self.done.put((claim, completion))

    def abandon_executor(self, executor: ThreadPoolExecutor) -> None:
        """Leave a hung sync call's thread behind: later sync calls run in a fresh executor."""
        if executor is self.executor:
            self.executor = self.executor_factory()
        executor.shutdown(wait=False)

    def shutdown(self) -> None:
        self.executor.shutdown(wait=False, cancel_futures=True)

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
            self.on_recorded(len(batch))
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
