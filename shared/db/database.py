"""The connection pool, the unit of work every write goes through, and driver-error translation.

A `Tx` collects what a transaction changed (companies, teams) so that, after the commit, listeners
can invalidate caches and kick the real-time publisher. Listeners never run for a rolled-back
transaction and a failing listener never fails the write that already committed.

Driver errors are translated here, once (the procrastinate way, `translate`):

    psycopg.OperationalError
    ├── deadlock (40P01), serialization failure (40001), lock timeout (55P03)
    │       -> TransientConflict: `Database.atomic` re-runs the unit of work a bounded number of
    │          times, then it is a 409 (someone else's change won; retrying later is safe)
    └── everything else (connection refused or lost, admin shutdown, statement timeout, pool timeout)
            -> DependencyDown: 503, "the database is not reachable"

Integrity errors (unique, foreign key, check) are the services' to translate: each means something
different to each use case.

Lock order (docs/architecture.md): a transaction that writes several rows locks the team row first,
then task rows, then everything else. `journal.transition` for a task locks its team first, so a
task transition and an escalation (team, then task) can never deadlock each other.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any, TypeVar
from uuid import UUID

import psycopg
from psycopg.rows import dict_row
from psycopg_pool import AsyncConnectionPool

from shared.domain.errors import Conflict, DependencyDown, DomainError

log = logging.getLogger(__name__)

Conn = psycopg.AsyncConnection[Any]
T = TypeVar("T")

#: SQLSTATEs after which re-running the whole transaction is the documented remedy.
RETRYABLE_SQLSTATES = frozenset({"40P01", "40001", "55P03"})
#: How often `atomic` runs a unit of work that keeps losing to concurrent ones.
ATOMIC_ATTEMPTS = 4


#: The connection `Database.reads` pinned for the current task's reads, if any.
_PINNED: ContextVar[Conn | None] = ContextVar("gp_pinned_connection", default=None)


class TransientConflict(Conflict):
    """The database aborted the transaction to resolve a conflict (deadlock, serialization, lock timeout)."""


def translate(exc: psycopg.Error) -> DomainError | None:
    """The domain error a driver error means, or None when the caller must decide (integrity errors)."""
    if not isinstance(exc, psycopg.OperationalError):
        return None
    if exc.sqlstate in RETRYABLE_SQLSTATES:
        return TransientConflict("a concurrent change to the same rows won; try again")
    if isinstance(exc, psycopg.errors.QueryCanceled):
        return DependencyDown("the database did not answer in time")
    return DependencyDown("the database is not reachable")


@dataclass
class Changes:
    companies: set[UUID] = field(default_factory=set)  #: team or task data changed
    teams: set[UUID] = field(default_factory=set)
    audit_companies: set[UUID] = field(default_factory=set)  #: only audit rows were written
    events: int = 0
    signals: int = 0  #: orchestration signals written to the outbox


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
        pinned = _PINNED.get()
        if pinned is not None:  # inside `reads`: its connection and its transaction
            yield pinned
            return
        try:
            async with self.pool.connection() as conn:
                conn.row_factory = dict_row  # type: ignore[assignment]
                yield conn
        except psycopg.Error as exc:
            translated = translate(exc)
            if translated is None:
                raise
            raise translated from exc
        except TimeoutError as exc:  # the pool had no connection to give in time
            raise DependencyDown("the database is not reachable") from exc

    @asynccontextmanager
    async def reads(self) -> AsyncIterator[None]:
        """The reads made inside share one connection and one read-only transaction: one commit
        instead of one per autocommit statement, and one consistent view. For the reads a step makes
        before its LLM call (never around the call: it would hold the connection). Nothing may write
        inside (`transaction` refuses)."""
        if _PINNED.get() is not None:
            yield
            return
        async with self.connection() as conn, conn.transaction():
            await conn.execute("SET TRANSACTION READ ONLY")
            token = _PINNED.set(conn)
            try:
                yield
            finally:
                _PINNED.reset(token)

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[Tx]:
        """One transaction; prefer `atomic`, which also re-runs the work after a transient conflict."""
        if _PINNED.get() is not None:
            raise RuntimeError("a write inside Database.reads(): leave the reads first")
        async with self.connection() as conn, conn.transaction():
            tx = Tx(conn)
            yield tx
        if tx.changes.companies or tx.changes.teams or tx.changes.audit_companies or tx.changes.signals:
            await self.notify(tx.changes)

    async def atomic(self, work: Callable[[Tx], Awaitable[T]], *, attempts: int = ATOMIC_ATTEMPTS) -> T:
        """Run `work` in one transaction; after a deadlock or serialization failure run it again.

        `work` must do nothing outside the transaction (no HTTP calls, no LLM calls): it may run
        several times. After the last attempt the TransientConflict (409) propagates.
        """
        for attempt in range(1, attempts + 1):
            try:
                async with self.transaction() as tx:
                    return await work(tx)
            except TransientConflict:
                if attempt >= attempts:
                    raise
                log.info("transaction lost a conflict (attempt %d of %d); running it again", attempt, attempts)
                await asyncio.sleep(random.uniform(0.005, 0.02) * attempt)
        raise AssertionError("unreachable")

    async def within(self, tx: Tx | None, work: Callable[[Tx], Awaitable[T]]) -> T:
        """`work` in the caller's transaction when there is one, else `atomic` in its own."""
        return await work(tx) if tx is not None else await self.atomic(work)

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
