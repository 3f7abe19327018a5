"""Postgres access for the workers: schema, claims with leases, episode and activity commits."""

from __future__ import annotations

import re
from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime
from importlib import resources
from typing import Any
from uuid import UUID

from psycopg import AsyncConnection, sql
from psycopg.types.json import Jsonb
from psycopg_pool import AsyncConnectionPool

from . import queries as q
from .clock import DatabaseClock
from .model import TERMINAL, EpisodeOutcome, InboxRow, InstanceRow, NewMessage, Status

SCHEMA_NAME = re.compile(r"^[a-z_][a-z0-9_]{0,40}$")


class LeaseLost(Exception):
    """Another worker took over the claim (it expired): this worker's writes were rolled back."""


@dataclass(frozen=True)
class ClaimedEpisode:
    """An instance leased to this worker, with what its episode reads.

    `history` is None when the claim did not read it: this backend run wrote the last episode
    (its cache should have it), or the instance is finished (its episodes replay nothing).
    `stale`: the messages and history were read before another worker's commit that the claimed
    row already reflects: read them again (see queries.CLAIM_EPISODES).
    """

    row: InstanceRow
    inbox: list[InboxRow]
    history: list[str] | None
    stale: bool


@dataclass
class StoreCounters:
    """What the workers asked of the database: round trips, and commits (writing transactions)."""

    round_trips: int = 0
    commits: int = 0


@dataclass(frozen=True)
class ClaimedActivity:
    """An activity call leased to this worker."""

    id: int
    instance_id: str
    execution_id: str
    task_id: int
    name: str
    input: str | None
    token: UUID


def channel_name(schema: str) -> str:
    """The LISTEN/NOTIFY channel the schema's triggers notify (see sql/schema.sql)."""
    return f"{schema}_durable"


def check_schema_name(schema: str) -> str:
    if not SCHEMA_NAME.match(schema):
        raise ValueError(f"invalid schema name {schema!r}: use lower-case letters, digits, _")
    return schema


def connection_kwargs(schema: str) -> dict[str, Any]:
    return {"autocommit": True, "options": f"-c search_path={check_schema_name(schema)}"}


async def create_schema(dsn: str, schema: str) -> None:
    """Create the schema and its tables idempotently; an advisory lock serialises starters."""
    ddl = resources.files(__package__).joinpath("sql/schema.sql").read_text()
    async with await AsyncConnection.connect(dsn, autocommit=True) as conn, conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", (f"devhost.durable.{schema}",))
        await conn.execute(sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(sql.Identifier(schema)))
        await conn.execute(sql.SQL("SET LOCAL search_path = {}").format(sql.Identifier(schema)))
        await conn.execute(ddl)  # type: ignore[arg-type]  # trusted file shipped with the package


class WorkerStore:
    """The queries the episode and activity workers run.

    Claims and the due-time query return the database's `now()`, which calibrates `clock`.
    `owner` is the host identity written on every claim (a restarted host reclaims its own
    claims at once); `holder` identifies this backend run, whose worker caches the histories it
    wrote, so its claims need not read them. `counters` count round trips and commits.
    """

    def __init__(
        self,
        pool: AsyncConnectionPool[AsyncConnection[Any]],
        lease_seconds: float,
        clock: DatabaseClock | None = None,
        *,
        owner: str = "",
        holder: UUID | None = None,
        counters: StoreCounters | None = None,
    ) -> None:
        self.pool = pool
        self.lease_seconds = lease_seconds
        self.clock = clock or DatabaseClock()
        self.owner = owner
        self.holder = holder
        self.counters = counters or StoreCounters()

    async def claim_episodes(self, limit: int, token: UUID) -> tuple[list[ClaimedEpisode], datetime | None]:
        """Lease up to `limit` instances with their due messages and (unless this run wrote it
        last) their history, in one round trip; also return the database's time of the claim."""
        sent = self.clock.process_clock()
        params = {"limit": limit, "token": token, "lease": self.lease_seconds, "owner": self.owner,
                  "holder": self.holder}
        async with self.pool.connection() as conn:
            cur = await conn.execute(q.CLAIM_EPISODES, params)
            rows = await cur.fetchall()
        self.counters.round_trips += 1
        if not rows:
            return [], None
        self.counters.commits += 1
        claimed_at: datetime = rows[0][-1]
        self.clock.calibrate(claimed_at, sent, self.clock.process_clock())
        found = []
        for r in rows:
            row = InstanceRow(
                instance_id=r[0], execution_id=r[1], name=r[2], version=r[3], status=Status(r[4]),
                input=r[5], custom_status=r[6], parent_instance_id=r[7], parent_execution_id=r[8],
                parent_task_id=r[9], next_event_id=r[10], history_len=r[11], open_ids=r[12],
                retries=r[13], actions=r[14], lease_token=r[15], episode_attempts=r[16],
                last_error=r[17],
            )
            messages = zip(r[19] or [], r[20] or [], r[21] or [], r[22] or [], strict=True)
            inbox = [InboxRow(*m) for m in messages]
            found.append(ClaimedEpisode(row, inbox, r[23], stale=bool(r[18])))
        return found, claimed_at

    async def load_inbox(self, instance_ids: list[str]) -> dict[str, list[InboxRow]]:
        found: dict[str, list[InboxRow]] = defaultdict(list)
        async with self.pool.connection() as conn:
            cur = await conn.execute(q.LOAD_INBOX, (instance_ids,))
            for message_id, instance_id, execution_id, kind, text in await cur.fetchall():
                found[instance_id].append(InboxRow(message_id, execution_id, kind, text))
        self.counters.round_trips += 1
        return found

    async def load_history(self, instance_ids: list[str]) -> dict[str, list[str]]:
        found: dict[str, list[str]] = defaultdict(list)
        if not instance_ids:
            return found
        async with self.pool.connection() as conn:
            cur = await conn.execute(q.LOAD_HISTORY, (instance_ids,))
            for instance_id, text in await cur.fetchall():
                found[instance_id].append(text)
        self.counters.round_trips += 1
        return found

    async def commit_episode(self, row: InstanceRow, out: EpisodeOutcome, *, dispatch: int = 0,
                             dispatch_token: UUID | None = None) -> list[ClaimedActivity]:
        """Apply an episode: one statement, so one round trip and one transaction, fenced by the
        claim's lease token; raise LeaseLost (nothing was written) if another worker took it.

        Local dispatch: the first `dispatch` of the episode's new activity calls come back leased to
        this host under `dispatch_token`, as a claim would have returned them (one round trip and
        one commit fewer per call, and no wait for a lane to wake and claim)."""
        restarted = out.new_execution is not None
        execution_id, raw_input = out.new_execution or (row.execution_id, row.input)
        messages, acts, children = out.messages, out.activities, out.children
        params = {
            "instance_id": row.instance_id, "token": row.lease_token,
            # the worker caches no history of a finished or restarted instance (HistoryCache.put)
            "holder": None if out.status in TERMINAL or restarted else self.holder,
            "status": out.status.value, "output": out.output, "custom_status": out.custom_status,
            "old_execution_id": row.execution_id, "execution_id": execution_id, "input": raw_input,
            "restarted": restarted, "next_event_id": out.next_event_id,
            "open_ids": Jsonb(out.open_ids), "retries": Jsonb(out.retries),
            "new_actions": Jsonb(out.new_actions),
            "history_from": row.history_len, "history": [] if restarted else out.history,
            "consumed": out.consumed, "drop_pending": out.drop_pending,
            "canceled_timers": out.canceled_timers,
            "activity_tasks": [a.task_id for a in acts], "activity_names": [a.name for a in acts],
            "activity_inputs": [a.input for a in acts],
            "message_instances": [m.instance_id for m in messages],
            "message_executions": [m.execution_id for m in messages],
            "message_kinds": [m.kind for m in messages], "message_events": [m.event for m in messages],
            "message_visible": [m.visible_at for m in messages],
            "message_tasks": [m.task_id for m in messages],
            "child_ids": [c.instance_id for c in children],
            "child_executions": [c.execution_id for c in children],
            "child_names": [c.name for c in children], "child_inputs": [c.input for c in children],
            "child_tasks": [c.parent_task_id for c in children],
            "child_started": [c.started_event for c in children],
            "child_failed": [c.failed_event for c in children],
            "dispatch_token": dispatch_token, "dispatch_owner": self.owner, "dispatch_lease": self.lease_seconds,
            "dispatch_limit": dispatch if dispatch_token is not None else 0,
        }
        async with self.pool.connection() as conn:
            cur = await conn.execute(q.COMMIT_EPISODE, params)
            result = await cur.fetchone()
        self.counters.round_trips += 1
        if result is None or result[0] is None:
            raise LeaseLost(row.instance_id)
        self.counters.commits += 1
        ids: list[int] = list(result[0])
        if not ids or dispatch_token is None:
            return []
        leased = sorted(acts[:dispatch], key=lambda a: a.task_id)  # the function returns ids in task order
        return [ClaimedActivity(i, row.instance_id, row.execution_id, a.task_id, a.name, a.input, dispatch_token)
                for i, a in zip(ids, leased, strict=True)]

    async def reclaim_own(self) -> tuple[int, int]:
        """Release the claims this host identity holds: at start, those of its dead previous run.

        Returns how many (instances, activities) were released; they are claimable at once.
        """
        async with self.pool.connection() as conn:
            cur = await conn.execute(q.RECLAIM_OWN, {"owner": self.owner})
            row = await cur.fetchone()
        self.counters.round_trips += 1
        return (int(row[0]), int(row[1])) if row else (0, 0)

    async def record_episode_failure(self, row: InstanceRow, error: str, delay: float) -> None:
        """Give a failed episode's claim back, claimable again after `delay` seconds."""
        async with self.pool.connection() as conn:
            await conn.execute(
                q.RECORD_EPISODE_FAILURE,
                {"error": error, "delay": delay, "instance_id": row.instance_id, "token": row.lease_token},
            )
        self.counters.round_trips += 1

    async def claim_activities(self, limit: int, token: UUID) -> list[ClaimedActivity]:
        sent = self.clock.process_clock()
        params = {"limit": limit, "token": token, "lease": self.lease_seconds, "owner": self.owner}
        async with self.pool.connection() as conn:
            cur = await conn.execute(q.CLAIM_ACTIVITIES, params)
            rows = await cur.fetchall()
        self.counters.round_trips += 1
        if rows:
            self.counters.commits += 1
            self.clock.calibrate(rows[0][-1], sent, self.clock.process_clock())
        return [ClaimedActivity(r[0], r[1], r[2], r[3], r[4], r[5], token) for r in rows]

    async def complete_activities(self, done: list[tuple[ClaimedActivity, str]]) -> None:
        """Record completions (event JSON per claim); claims no longer held are silently dropped."""
        async with self.pool.connection() as conn:
            await conn.execute(
                q.COMPLETE_ACTIVITIES,
                ([c.id for c, _ in done], [c.token for c, _ in done], [e for _, e in done]),
            )
        self.counters.round_trips += 1
        self.counters.commits += 1

    async def renew(self, tokens: list[UUID]) -> None:
        """The heartbeat: extend the leases of these claims (one round trip)."""
        async with self.pool.connection() as conn, conn.pipeline():
            await conn.execute(q.RENEW_ACTIVITIES, (self.lease_seconds, tokens))
            await conn.execute(q.RENEW_INSTANCES, (self.lease_seconds, tokens))
        self.counters.round_trips += 1
        self.counters.commits += 2

    async def release(self, tokens: list[UUID]) -> None:
        async with self.pool.connection() as conn, conn.pipeline():
            await conn.execute(q.RELEASE_ACTIVITIES, (tokens,))
            await conn.execute(q.RELEASE_INSTANCES, (tokens,))
        self.counters.round_trips += 1

    async def next_due(self) -> datetime | None:
        """When the next timer is due (database time); calibrates the clock on the way."""
        sent = self.clock.process_clock()
        async with self.pool.connection() as conn:
            cur = await conn.execute(q.NEXT_DUE)
            row = await cur.fetchone()
        self.counters.round_trips += 1
        if row is None:
            return None
        self.clock.calibrate(row[1], sent, self.clock.process_clock())
        due: datetime | None = row[0]
        return due


async def insert_messages(conn: AsyncConnection[Any], messages: list[NewMessage]) -> None:
    await conn.execute(
        q.INSERT_MESSAGES,
        (
            [m.instance_id for m in messages], [m.execution_id for m in messages],
            [m.kind for m in messages], [m.event for m in messages],
            [m.visible_at for m in messages], [m.task_id for m in messages],
        ),
    )


async def create_or_replace_instance(conn: AsyncConnection[Any], params: dict[str, Any]) -> bool:
    """Insert a Pending instance, or reuse the id of a finished one; False if the id is live.

    Must run inside a transaction; the caller then enqueues the ExecutionStarted message.
    """
    cur = await conn.execute(q.INSERT_INSTANCE, params)
    if await cur.fetchone() is not None:
        return True
    cur = await conn.execute(q.LOCK_INSTANCE, (params["instance_id"],))
    existing = await cur.fetchone()
    if existing is None or Status(existing[0]) not in TERMINAL:
        return False
    instance_id = params["instance_id"]
    async with conn.pipeline():
        await conn.execute(q.DELETE_HISTORY, (instance_id,))
        await conn.execute(q.DELETE_INBOX_ALL, (instance_id,))
        await conn.execute(q.DELETE_ACTIVITIES, (instance_id,))
        await conn.execute(q.REPLACE_INSTANCE, params)
    return True


__all__ = [
    "ClaimedActivity",
    "ClaimedEpisode",
    "LeaseLost",
    "StoreCounters",
    "WorkerStore",
    "channel_name",
    "connection_kwargs",
    "create_or_replace_instance",
    "create_schema",
    "insert_messages",
]
