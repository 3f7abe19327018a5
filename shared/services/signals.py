"""Signals to orchestrations, sent from the outbox: never a call after a commit that could be lost.

A control action (start, pause, resolve an escalation, ...) writes its signal row in the transaction
of the state change (`shared.db.journal.signal`). `SignalDispatcher.dispatch` then sends it (start
the orchestration, or raise the event) and marks it sent; a send that fails is retried later with a
back-off, by the next dispatch or the timer (`functions/timers.py`). Delivery is at least once: the
orchestrators tolerate a repeated event (each names what it is about, e.g. the escalation id, and
the database is the truth they re-read). Rows of one instance are sent in the order they were written.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any, Protocol
from uuid import UUID

from shared.db.database import Database
from shared.db.repositories import signals as repo
from shared.db.repositories.signals import SignalRow
from shared.domain.errors import DependencyDown

log = logging.getLogger(__name__)

MAX_BACKOFF_SECONDS = 60.0


class OrchestrationClient(Protocol):
    """The part of `DurableOrchestrationClient` the dispatcher uses."""

    async def start_new(self, orchestration_function_name: str, instance_id: str | None = None,
                        client_input: Any = None) -> str: ...

    async def raise_event(self, instance_id: str, event_name: str, event_data: Any = None) -> None: ...

    async def get_status(self, instance_id: str) -> Any: ...


def _backoff(attempts: int) -> float:
    return float(min(MAX_BACKOFF_SECONDS, 0.5 * 2 ** max(0, attempts - 1)))


class SignalDispatcher:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def dispatch(self, client: OrchestrationClient | None, ids: Sequence[UUID] | None = None, *,
                       limit: int = 200) -> int:
        """Send due signals (only those of the orchestrations `ids` belong to, when given); the number
        sent. Never raises for a failed send: the row stays pending and is retried."""
        if client is None or (ids is not None and not ids):
            return 0
        try:
            async with self.db.connection() as conn:
                instances = await repo.due_instances(conn, limit=limit, ids=list(ids) if ids is not None else None)
            sent = 0
            for instance_id in instances:
                sent += await self._send_instance(client, instance_id)
            return sent
        except DependencyDown:
            log.warning("signals: the database is not reachable; the timer will send them")
            return 0

    async def _send_instance(self, client: OrchestrationClient, instance_id: str) -> int:
        async with self.db.connection() as conn, conn.transaction():
            if not await repo.lock_instance(conn, instance_id):
                return 0  # another dispatcher is sending this orchestration's signals right now
            rows = await repo.unsent_for_instance(conn, instance_id)
            for index, row in enumerate(rows):
                try:
                    outcome = await self._send(client, row)
                except Exception as exc:  # the Durable client raises plain Exceptions for HTTP errors
                    error = f"{type(exc).__name__}: {exc}"
                    log.warning("signal %s %s to %s failed (attempt %d): %s", row.kind, row.name, instance_id,
                                row.attempts + 1, error)
                    for later in rows[index:]:  # keep the order: nothing after a failure goes first
                        await repo.retry_later(conn, later.id, error=error, delay_seconds=_backoff(row.attempts + 1))
                    return index
                await repo.mark_sent(conn, row.id, outcome)
            return len(rows)

    async def _send(self, client: OrchestrationClient, row: SignalRow) -> str:
        if row.kind == "start":
            status = await client.get_status(row.instance_id)
            if status is not None and getattr(status, "runtime_status", None) is not None:
                return "already_started"  # an earlier send started it; only its answer was lost
            await client.start_new(row.name, row.instance_id, row.payload)
            return "started"
        try:
            await client.raise_event(row.instance_id, row.name, row.payload)
        except Exception as exc:
            if "is gone" in str(exc):  # 410: the orchestration has finished; nobody waits any more
                return "instance_finished"
            raise
        return "delivered"

    async def pending(self, team_id: UUID) -> list[SignalRow]:
        async with self.db.connection() as conn:
            return await repo.pending_for_team(conn, team_id)
