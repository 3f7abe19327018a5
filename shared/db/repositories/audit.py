"""The audit log's keyset-paged query (writes are `shared.db.journal.audit`)."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from shared.db import rows
from shared.db.database import Conn
from shared.db.pagination import after_cursor
from shared.domain.models import AuditEventPublic

_COLUMNS = "id, team_id, task_id, actor_type, actor_id, event_type, payload, created_at"


async def page(conn: Conn, company_id: UUID, *, team_id: UUID | None, event_type: str | None, limit: int,
               cursor: str | None) -> list[AuditEventPublic]:
    """Newest first, `limit + 1` rows. Each filter combination has an index that serves it."""
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
        f"SELECT {_COLUMNS} FROM audit_events WHERE " + " AND ".join(where)  # noqa: S608 - SQL built from this module's constants
        + " ORDER BY created_at DESC, id DESC LIMIT %(limit)s"
    )
    return await rows.many(conn, AuditEventPublic, statement, params)
