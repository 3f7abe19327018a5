"""Agent messages: what the manager and workers said, shown in the team's feed."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

from shared.db import journal
from shared.db.database import Database, Tx
from shared.db.repositories import messages as repo
from shared.db.repositories import teams as team_repo
from shared.domain.errors import NotFound
from shared.domain.ids import uuid7
from shared.domain.models import MessagePublic


class MessageService:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def post(
        self,
        *,
        team_id: UUID,
        sender: str,
        content: str,
        kind: str = "note",
        task_id: UUID | None = None,
        member_id: UUID | None = None,
        message_id: UUID | None = None,
        tx: Tx | None = None,
    ) -> MessagePublic:
        """Post (in `tx` when given). With a `message_id` made from the step it belongs to, a re-run
        step posts its message once."""
        message_id = message_id or uuid7()
        return await self.db.within(tx, lambda tx: self._post(tx, message_id, team_id, task_id, member_id, sender,
                                                              kind, content))

    async def _post(self, tx: Tx, message_id: UUID, team_id: UUID, task_id: UUID | None, member_id: UUID | None,
                    sender: str, kind: str, content: str) -> MessagePublic:
        team = await team_repo.lock(tx.conn, team_id)
        if team is None:
            raise NotFound("team not found")
        message = await repo.insert(tx.conn, message_id=message_id, team_id=team_id, task_id=task_id,
                                    member_id=member_id, sender=sender, kind=kind, content=content)
        if message is None:  # posted by an earlier run of the same step
            existing = await repo.get(tx.conn, message_id)
            assert existing is not None
            return existing
        data: dict[str, Any] = {
            "id": str(message.id), "sender": sender, "kind": kind, "content": content[:2000],
            "member_id": str(member_id) if member_id else None,
        }
        await journal.emit(tx, team_id=team_id, task_id=task_id, event_type="message.created", data=data)
        tx.touched(team.company_id, team_id)
        return message

    async def list(self, team_id: UUID, *, after: datetime | None = None, limit: int = 200) -> list[MessagePublic]:
        async with self.db.connection() as conn:
            return await repo.for_team(conn, team_id, after=after, limit=limit)
