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

#: How long a claimed signal is this dispatcher's before another may send it.
CLAIM_SECONDS = 30.0
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
        """Send due signals (only `ids` when given); the number sent. Never raises for a failed send:
        the row stays pending and is retried."""
        if client is None or (ids is not None and not ids):
            return 0
        try:
            async with self.db.connection() as conn:
                claimed = await repo.claim(conn, limit=limit, lease_seconds=CLAIM_SECONDS,
                                           ids=list(ids) if ids is not None else None)
        except DependencyDown:
            log.warning("signals: the database is not reachable; the timer will send them")
            return 0
        by_instance: dict[str, list[SignalRow]] = {}
        for row in sorted(claimed, key=lambda r: (r.created_at, r.id)):
            by_instance.setdefault(row.instance_id, []).append(row)
        sent = 0
        for rows in by_instance.values():
            sent += await self._send_in_order(client, rows)
        return sent

    async def _send_in_order(self, client: OrchestrationClient, rows: list[SignalRow]) -> int:
        sent = 0
        for index, row in enumerate(rows):
            try:
                outcome = await self._send(client, row)
            except Exception as exc:  # the Durable client raises plain Exceptions for HTTP errors
                error = f"{type(exc).__name__}: {exc}"
                log.warning("signal %s %s to %s failed (attempt %d): %s", row.kind, row.name, row.instance_id,
                            row.attempts, error)
                async with self.db.connection() as conn:
                    for later in rows[index:]:  # keep the instance's order: nothing after a failure goes first
                        await repo.retry_later(conn, later.id, error=error, delay_seconds=_backoff(later.attempts))
                return sent
            async with self.db.connection() as conn:
                await repo.mark_sent(conn, row.id, outcome)
            sent += 1
        return sent

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
