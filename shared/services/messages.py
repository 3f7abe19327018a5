"""Agent messages: what the manager and workers said, shown in the team's feed."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

from shared.db import journal
from shared.db.database import Database
from shared.domain.errors import NotFound
from shared.domain.ids import uuid7
from shared.domain.models import Actor, MessagePublic

_INSERT = """
INSERT INTO messages (id, team_id, task_id, member_id, sender, kind, content)
SELECT %(id)s, t.id, %(task_id)s, %(member_id)s, %(sender)s, %(kind)s, %(content)s FROM teams t
WHERE t.id = %(team_id)s
RETURNING id, team_id, task_id, member_id, sender, kind, content, created_at,
          (SELECT company_id FROM teams WHERE id = %(team_id)s) AS company_id
"""
_LIST = """
SELECT id, team_id, task_id, member_id, sender, kind, content, created_at FROM messages
WHERE team_id = %(team_id)s {after} ORDER BY created_at, id LIMIT %(limit)s
"""


class MessageService:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def post(
        self,
        *,
        team_id: UUID,
        sender: str,
        content: str,
        actor: Actor,
        kind: str = "note",
        task_id: UUID | None = None,
        member_id: UUID | None = None,
    ) -> MessagePublic:
        async with self.db.transaction() as tx:
            cur = await tx.conn.execute(
                _INSERT,
                {"id": uuid7(), "team_id": team_id, "task_id": task_id, "member_id": member_id,
                 "sender": sender, "kind": kind, "content": content},
            )
            row = await cur.fetchone()
            if row is None:
                raise NotFound("team not found")
            message = MessagePublic.model_validate(row)
            data: dict[str, Any] = {
                "id": str(message.id), "sender": sender, "kind": kind, "content": content[:2000],
                "member_id": str(member_id) if member_id else None,
            }
            await journal.emit(tx, team_id=team_id, task_id=task_id, event_type="message.created", data=data)
            tx.touched(row["company_id"], team_id)
        return message

    async def list(self, team_id: UUID, *, after: datetime | None = None, limit: int = 200) -> list[MessagePublic]:
        statement = _LIST.format(after="AND created_at > %(after)s" if after else "")
        async with self.db.connection() as conn:
            cur = await conn.execute(statement, {"team_id": team_id, "after": after, "limit": limit})
            return [MessagePublic.model_validate(r) for r in await cur.fetchall()]
