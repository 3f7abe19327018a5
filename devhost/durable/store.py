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
from .model import TERMINAL, EpisodeOutcome, InboxRow, InstanceRow, NewChild, NewMessage, Status

SCHEMA_NAME = re.compile(r"^[a-z_][a-z0-9_]{0,40}$")


class LeaseLost(Exception):
    """Another worker took over the claim (it expired): this worker's writes were rolled back."""


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
    """

    def __init__(
        self,
        pool: AsyncConnectionPool[AsyncConnection[Any]],
        lease_seconds: float,
        clock: DatabaseClock | None = None,
    ) -> None:
        self.pool = pool
        self.lease_seconds = lease_seconds
        self.clock = clock or DatabaseClock()

    async def claim_episodes(self, limit: int, token: UUID) -> tuple[list[InstanceRow], datetime | None]:
        """Lease up to `limit` instances; also return the database's time of the claim."""
        sent = self.clock.process_clock()
        async with self.pool.connection() as conn:
            cur = await conn.execute(
                q.CLAIM_EPISODES, {"limit": limit, "token": token, "lease": self.lease_seconds}
            )
            rows = await cur.fetchall()
        if not rows:
            return [], None
        claimed_at: datetime = rows[0][-1]
        self.clock.calibrate(claimed_at, sent, self.clock.process_clock())
        found = [
            InstanceRow(
                instance_id=r[0], execution_id=r[1], name=r[2], version=r[3], status=Status(r[4]),
                input=r[5], custom_status=r[6], parent_instance_id=r[7], parent_execution_id=r[8],
                parent_task_id=r[9], next_event_id=r[10], history_len=r[11], open_ids=r[12],
                retries=r[13], actions=r[14], lease_token=r[15], episode_attempts=r[16],
                last_error=r[17],
            )
            for r in rows
        ]
        return found, claimed_at

    async def load_inbox(self, instance_ids: list[str]) -> dict[str, list[InboxRow]]:
        found: dict[str, list[InboxRow]] = defaultdict(list)
        async with self.pool.connection() as conn:
            cur = await conn.execute(q.LOAD_INBOX, (instance_ids,))
            for message_id, instance_id, execution_id, kind, text in await cur.fetchall():
                found[instance_id].append(InboxRow(message_id, execution_id, kind, text))
        return found

    async def load_history(self, instance_ids: list[str]) -> dict[str, list[str]]:
        found: dict[str, list[str]] = defaultdict(list)
        if not instance_ids:
            return found
        async with self.pool.connection() as conn:
            cur = await conn.execute(q.LOAD_HISTORY, (instance_ids,))
            for instance_id, text in await cur.fetchall():
                found[instance_id].append(text)
        return found

    async def commit_episode(self, row: InstanceRow, out: EpisodeOutcome) -> None:
        """Apply an episode in one transaction; raise LeaseLost (and write nothing) if fenced off."""
        restarted = out.new_execution is not None
        execution_id, raw_input = out.new_execution or (row.execution_id, row.input)
        async with self.pool.connection() as conn, conn.transaction():
            cur = await conn.execute(
                q.UPDATE_INSTANCE,
                {
                    "status": out.status.value,
                    "output": out.output,
                    "custom_status": out.custom_status,
                    "execution_id": execution_id,
                    "input": raw_input,
                    "next_event_id": out.next_event_id,
                    "history_len": 0 if restarted else row.history_len + len(out.history),
                    "open_ids": Jsonb(out.open_ids),
                    "retries": Jsonb(out.retries),
                    "reset_actions": restarted,
                    "new_actions": Jsonb(out.new_actions),
                    "instance_id": row.instance_id,
                    "token": row.lease_token,
                },
            )
            if cur.rowcount != 1:
                raise LeaseLost(row.instance_id)
            messages = list(out.messages)
            async with conn.pipeline():
                if restarted:
                    await conn.execute(q.DELETE_HISTORY, (row.instance_id,))
                    await conn.execute(q.DELETE_INBOX_EXECUTION, (row.instance_id, row.execution_id))
                elif out.history:
                    start = row.history_len
                    seqs = list(range(start, start + len(out.history)))
                    await conn.execute(q.APPEND_HISTORY, (row.instance_id, seqs, out.history))
                if out.consumed:
                    await conn.execute(q.DELETE_INBOX_IDS, (out.consumed,))
                if out.drop_pending:
                    await conn.execute(q.DELETE_INBOX_ALL, (row.instance_id,))
                if out.canceled_timers:
                    await conn.execute(
                        q.DELETE_TIMERS, (row.instance_id, row.execution_id, out.canceled_timers)
                    )
                if out.activities:
                    acts = out.activities
                    await conn.execute(
                        q.INSERT_ACTIVITIES,
                        (row.instance_id, row.execution_id, [a.task_id for a in acts],
                         [a.name for a in acts], [a.input for a in acts]),
                    )
            for child in out.children:
                messages.append(await self._create_child(conn, row, child))
            if messages:
                await insert_messages(conn, messages)

    async def _create_child(
        self, conn: AsyncConnection[Any], parent: InstanceRow, child: NewChild
    ) -> NewMessage:
        """Create a sub-orchestration; if its id belongs to a live instance, fail the call instead."""
        params = {
            "instance_id": child.instance_id, "execution_id": child.execution_id, "name": child.name,
            "version": "", "input": child.input, "parent_instance_id": parent.instance_id,
            "parent_execution_id": parent.execution_id, "parent_task_id": child.parent_task_id,
        }
        created = await create_or_replace_instance(conn, params)
        if created:
            return NewMessage(child.instance_id, child.execution_id, child.started_event, None)
        return NewMessage(
            parent.instance_id, parent.execution_id, child.failed_event, None, child.parent_task_id
        )

    async def record_episode_failure(self, row: InstanceRow, error: str, delay: float) -> None:
        """Give a failed episode's claim back, claimable again after `delay` seconds."""
        async with self.pool.connection() as conn:
            await conn.execute(
                q.RECORD_EPISODE_FAILURE,
                {"error": error, "delay": delay, "instance_id": row.instance_id, "token": row.lease_token},
            )

    async def claim_activities(self, limit: int, token: UUID) -> list[ClaimedActivity]:
        sent = self.clock.process_clock()
        async with self.pool.connection() as conn:
            cur = await conn.execute(
                q.CLAIM_ACTIVITIES, {"limit": limit, "token": token, "lease": self.lease_seconds}
            )
            rows = await cur.fetchall()
        if rows:
            self.clock.calibrate(rows[0][-1], sent, self.clock.process_clock())
        return [ClaimedActivity(r[0], r[1], r[2], r[3], r[4], r[5], token) for r in rows]

    async def complete_activities(self, done: list[tuple[ClaimedActivity, str]]) -> None:
        """Record completions (event JSON per claim); claims no longer held are silently dropped."""
        async with self.pool.connection() as conn:
            await conn.execute(
                q.COMPLETE_ACTIVITIES,
                ([c.id for c, _ in done], [c.token for c, _ in done], [e for _, e in done]),
            )

    async def renew(self, tokens: list[UUID]) -> None:
        async with self.pool.connection() as conn, conn.pipeline():
            await conn.execute(q.RENEW_ACTIVITIES, (self.lease_seconds, tokens))
            await conn.execute(q.RENEW_INSTANCES, (self.lease_seconds, tokens))

    async def release(self, tokens: list[UUID]) -> None:
        async with self.pool.connection() as conn, conn.pipeline():
            await conn.execute(q.RELEASE_ACTIVITIES, (tokens,))
            await conn.execute(q.RELEASE_INSTANCES, (tokens,))

    async def next_due(self) -> datetime | None:
        """When the next timer is due (database time); calibrates the clock on the way."""
        sent = self.clock.process_clock()
        async with self.pool.connection() as conn:
            cur = await conn.execute(q.NEXT_DUE)
            row = await cur.fetchone()
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
    "LeaseLost",
    "WorkerStore",
    "channel_name",
    "connection_kwargs",
    "create_or_replace_instance",
    "create_schema",
    "insert_messages",
]
