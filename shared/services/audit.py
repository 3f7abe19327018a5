"""The audit log: append for changes that are not status transitions, and the keyset-paged query."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from shared.db import journal
from shared.db.database import Database, Tx
from shared.db.pagination import Page, to_page
from shared.db.repositories import audit as repo
from shared.domain.models import Actor, AuditEventPublic


class AuditLog:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def append(
        self,
        *,
        company_id: UUID,
        actor: Actor,
        event_type: str,
        payload: dict[str, Any] | None = None,
        team_id: UUID | None = None,
        task_id: UUID | None = None,
    ) -> None:
        async def work(tx: Tx) -> None:
            await journal.audit(tx, company_id=company_id, actor=actor, event_type=event_type, payload=payload,
                                team_id=team_id, task_id=task_id)

        await self.db.atomic(work)

    async def query(
        self,
        company_id: UUID,
        *,
        team_id: UUID | None = None,
        event_type: str | None = None,
        limit: int = 100,
        cursor: str | None = None,
    ) -> Page[AuditEventPublic]:
        """Newest first."""
        async with self.db.connection() as conn:
            found = await repo.page(conn, company_id, team_id=team_id, event_type=event_type, limit=limit,
                                    cursor=cursor)
        return to_page(found, limit)
