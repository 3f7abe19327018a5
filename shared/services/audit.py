"""The audit log: append for changes that are not status transitions, and the keyset-paged query."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from shared.db import journal
from shared.db.database import Database
from shared.db.pagination import Page, after_cursor, to_page
from shared.domain.models import Actor, AuditEventPublic

_COLUMNS = "id, team_id, task_id, actor_type, actor_id, event_type, payload, created_at"


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
        async with self.db.transaction() as tx:
            await journal.audit(tx, company_id=company_id, actor=actor, event_type=event_type, payload=payload,
                                team_id=team_id, task_id=task_id)

    async def query(
        self,
        company_id: UUID,
        *,
        team_id: UUID | None = None,
        event_type: str | None = None,
        limit: int = 100,
        cursor: str | None = None,
    ) -> Page[AuditEventPublic]:
        """Newest first. Each filter combination has an index that serves it (see the migration)."""
        where = ["company_id = %(company_id)s"]
        params: dict[str, Any] = {"company_id": company_id, "limit": limit + 1}
        if team_id is not None:
            where.append("team_id = %(team_id)s")
            params["team_id"] = team_id
        if event_type is not None:
            where.append("event_type = %(event_type)s")
            params["event_type"] = event_type
        if cursor:
            where.append(after_cursor(cursor, params))
        statement = (
            f"SELECT {_COLUMNS} FROM audit_events WHERE " + " AND ".join(where)
            + " ORDER BY created_at DESC, id DESC LIMIT %(limit)s"
        )
        async with self.db.connection() as conn:
            cur = await conn.execute(statement, params)
            rows = await cur.fetchall()
        return to_page(rows, limit, AuditEventPublic)
