"""The team event stream (outbox) as clients read it for backfill."""

from __future__ import annotations

from uuid import UUID

from shared.db.database import Database
from shared.db.repositories import events as repo
from shared.domain.models import TeamEventPublic


class EventStream:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def after(self, team_id: UUID, after_seq: int = 0, *, limit: int = 1000) -> list[TeamEventPublic]:
        async with self.db.connection() as conn:
            return await repo.after(conn, team_id, after_seq, limit)
