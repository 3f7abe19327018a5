"""The connection pool and the unit of work every write goes through.

A `Tx` collects what a transaction changed (companies, teams) so that, after the commit, listeners
can invalidate caches and kick the real-time publisher. Listeners never run for a rolled-back
transaction and a failing listener never fails the write that already committed.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any
from uuid import UUID

import psycopg
from psycopg.rows import dict_row
from psycopg_pool import AsyncConnectionPool

from shared.domain.errors import DependencyDown

log = logging.getLogger(__name__)

Conn = psycopg.AsyncConnection[Any]


@dataclass
class Changes:
    companies: set[UUID] = field(default_factory=set)  #: team or task data changed
    teams: set[UUID] = field(default_factory=set)
    audit_companies: set[UUID] = field(default_factory=set)  #: only audit rows were written
    events: int = 0


ChangeListener = Callable[[Changes], Awaitable[None]]


class Tx:
    """An open transaction plus the record of what it changed."""

    def __init__(self, conn: Conn) -> None:
        self.conn = conn
        self.changes = Changes()

    def audited(self, company_id: UUID) -> None:
        """Only audit rows of the company changed (e.g. a login): team and task caches stay valid."""
        self.changes.audit_companies.add(company_id)

    def touched(self, company_id: UUID, team_id: UUID | None = None) -> None:
        self.changes.companies.add(company_id)
        if team_id is not None:
            self.changes.teams.add(team_id)


class Database:
    def __init__(self, pool: AsyncConnectionPool) -> None:
        self.pool = pool
        self.listeners: list[ChangeListener] = []

    @asynccontextmanager
    async def connection(self) -> AsyncIterator[Conn]:
        try:
            async with self.pool.connection() as conn:
                conn.row_factory = dict_row  # type: ignore[assignment]
                yield conn
        except (psycopg.OperationalError, TimeoutError) as exc:
            if isinstance(exc, psycopg.errors.QueryCanceled):
                raise
            raise DependencyDown("the database is not reachable") from exc

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[Tx]:
        async with self.connection() as conn, conn.transaction():
            tx = Tx(conn)
            yield tx
        if tx.changes.companies or tx.changes.teams or tx.changes.audit_companies:
            await self.notify(tx.changes)

    async def notify(self, changes: Changes) -> None:
        for listener in self.listeners:
            try:
                await listener(changes)
            except Exception:
                log.exception("change listener failed; the write itself is committed")


def make_pool(dsn: str, *, min_size: int = 1, max_size: int = 10, name: str = "ghost-pirates") -> AsyncConnectionPool:
    """A pool that is not opened yet (open it inside the running event loop)."""
    return AsyncConnectionPool(
        dsn,
        min_size=min_size,
        max_size=max_size,
        open=False,
        name=name,
        timeout=10,
        max_idle=300,
        max_lifetime=1800,
        # No per-checkout liveness check: it costs a round trip on every request. A connection
        # broken by a server restart fails its query once and the pool replaces it.
        kwargs={"autocommit": True, "prepare_threshold": 5},
    )
