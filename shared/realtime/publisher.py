"""The outbox publisher: sends unpublished `team_events` rows to Web PubSub, per team in `seq` order.

Delivery is at least once: a row is marked `published_at` only after the service accepted it, so a
crash between the send and the commit of the mark sends that row again (clients drop a `seq` they
have already seen). Publishers in several processes never send a row twice nor out of order: a
team's rows are read, sent and marked while holding that team's transaction-scoped advisory lock,
and a publisher stops at the first failed send (later rows wait behind it).

Kicked after each committing transaction that wrote events (`on_commit`, a `Database` listener),
and swept by a timer (`sweep`) so nothing stays behind after a crash or a Web PubSub outage.

A kick waits `coalesce_s` (15 ms) before it reads the team's rows: the commits of a step burst
(a step, the next one's start, a review right after) then go out in one publish, one transaction
instead of one each, and the publish runs after the durable hand-off to the team's next step
instead of competing with it for the event loop. A person watching cannot see 15 ms.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from uuid import UUID

import psycopg
from azure.core.exceptions import AzureError
from azure.messaging.webpubsubservice.aio import WebPubSubServiceClient

from shared.db.database import Changes, Database
from shared.db.repositories import events as events_repo
from shared.db.repositories.events import PendingEvent
from shared.domain.models import TeamEventPublic
from shared.realtime.service import company_group, team_group

__all__ = ["COMPANY_EVENT_TYPES", "OutboxPublisher", "PublishFailed"]

log = logging.getLogger(__name__)

#: Event types the company's dashboard (team list) also wants: sent to `company_<id>` as well.
COMPANY_EVENT_TYPES = frozenset({"team.status_changed", "escalation.created", "escalation.resolved"})

class PublishFailed(Exception):
    """Web PubSub did not accept a send; the row and those after it stay in the outbox."""


@dataclass
class _Run:
    task: asyncio.Task[None]
    again: bool = False


class OutboxPublisher:
    """One per process, sharing the app's pool and one service client."""

    def __init__(
        self,
        db: Database,
        client: WebPubSubServiceClient,
        *,
        concurrency: int = 8,
        batch_size: int = 100,
        lock_timeout_ms: int = 5000,
        max_kicked_teams: int = 1000,
        retry_after_failure_s: float = 1.0,
        coalesce_s: float = 0.015,
    ) -> None:
        self.db = db
        self.coalesce_s = coalesce_s
        self.client = client
        self.batch_size = batch_size
        self.lock_timeout_ms = lock_timeout_ms
        self.max_kicked_teams = max_kicked_teams
        self.retry_after_failure_s = retry_after_failure_s
        self._slots = asyncio.Semaphore(concurrency)
        self._runs: dict[UUID, _Run] = {}
        self._quiet_until = 0.0
        self.sent = 0

    # -- after commits ---------------------------------------------------------------------------

    async def on_commit(self, changes: Changes) -> None:
        """Database listener: start publishing the teams that got events; never waits for the sends."""
        if changes.events:
            for team_id in changes.teams:
                self.kick(team_id)

    def kick(self, team_id: UUID) -> None:
        """Publish the team's pending rows in the background (coalesced: one run per team at a time)."""
        running = self._runs.get(team_id)
        if running is not None:
            running.again = True
            return
        loop = asyncio.get_running_loop()
        if loop.time() < self._quiet_until or len(self._runs) >= self.max_kicked_teams:
            return  # Web PubSub just failed, or too much in flight: the timer's sweep sends these.
        self._runs[team_id] = _Run(loop.create_task(self._background(team_id), name=f"publish:{team_id}"))

    async def _background(self, team_id: UUID) -> None:
        run = self._runs[team_id]
        try:
            while True:
                if self.coalesce_s > 0:
                    await asyncio.sleep(self.coalesce_s)  # later commits of the burst join this publish
                run.again = False
                async with self._slots:
                    await self.publish_team(team_id)
                if not run.again:
                    return
        except PublishFailed as exc:
            self._quiet_until = asyncio.get_running_loop().time() + self.retry_after_failure_s
            log.warning("Web PubSub refused or unreachable; events wait in the outbox: %s", exc)
        except (psycopg.Error, OSError, TimeoutError) as exc:
            log.warning("publishing team %s failed; the sweep retries: %s", team_id, exc)
        finally:
            del self._runs[team_id]

    async def drain(self, seconds: float = 5.0) -> None:
        """Wait (bounded) for background runs started by kicks."""
        tasks = [run.task for run in self._runs.values()]
        if tasks:
            await asyncio.wait(tasks, timeout=seconds)

    # -- the work ----------------------------------------------------------------------------------

    async def publish_team(self, team_id: UUID) -> int:
        """Send the team's pending rows in seq order; the number sent. Raises PublishFailed after
        marking whatever went out before the failure."""
        total = 0
        while True:
            sent, fetched, failure = await self._publish_batch(team_id)
            total += sent
            self.sent += sent
            if failure is not None:
                raise PublishFailed(f"{type(failure).__name__}: {failure}") from failure
            if fetched < self.batch_size:
                return total

    async def _publish_batch(self, team_id: UUID) -> tuple[int, int, BaseException | None]:
        async with self.db.pool.connection() as conn, conn.transaction():
            # Waits for another publisher of this team (in any process) to finish its batch, then
            # reads what is still pending; a publisher that waits too long gives up to the sweep.
            await events_repo.lock_team_outbox(conn, team_id, timeout_ms=self.lock_timeout_ms)
            rows = await events_repo.unpublished(conn, team_id, self.batch_size)
            sent, failure = await self._send_in_order(rows)
            if sent:
                await events_repo.mark_published(conn, team_id, sent)
        return len(sent), len(rows), failure

    async def _send_in_order(self, rows: Sequence[PendingEvent]) -> tuple[list[int], BaseException | None]:
        sent: list[int] = []
        for event in rows:
            try:
                await self._send(event, event.company_id)
            except (AzureError, OSError, TimeoutError) as exc:
                return sent, exc
            sent.append(event.seq)
        return sent, None

    async def _send(self, event: TeamEventPublic, company_id: UUID) -> None:
        body = event.model_dump(mode="json", exclude={"company_id"})  # the contract's event, not the row
        team = team_group(event.team_id)
        if event.type in COMPANY_EVENT_TYPES:
            # One call reaches both groups, and a connection in both receives the event once.
            reach = f"'{team}' in groups or '{company_group(company_id)}' in groups"
            await self.client.send_to_all(body, filter=reach, content_type="application/json")
        else:
            await self.client.send_to_group(team, body, content_type="application/json")

    async def sweep(self, *, max_teams: int = 500) -> int:
        """Publish every team with pending rows (oldest first); the number sent. Stops early when
        Web PubSub fails, leaving the rest for the next sweep."""
        async with self.db.pool.connection() as conn:
            teams = await events_repo.teams_with_unpublished(conn, max_teams)
        down = asyncio.Event()
        sent = [0]

        async def one(team_id: UUID) -> None:
            async with self._slots:
                if down.is_set():
                    return
                try:
                    sent[0] += await self.publish_team(team_id)
                except PublishFailed as exc:
                    if not down.is_set():
                        log.warning("sweep: Web PubSub refused or unreachable; %d team(s) wait: %s",
                                    len(teams), exc)
                    down.set()
                except psycopg.errors.LockNotAvailable:
                    pass  # another publisher is on this team right now

        await asyncio.gather(*(one(team_id) for team_id in teams))
        return sent[0]
