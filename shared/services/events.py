"""The team event stream (outbox) as clients read it for backfill."""

from __future__ import annotations

from uuid import UUID

from shared.db.database import Database
from shared.domain.models import TeamEventPublic

_LIST = """
SELECT type, seq, team_id, task_id, created_at AS at, payload AS data FROM team_events
WHERE team_id = %(team_id)s AND seq > %(after_seq)s ORDER BY seq LIMIT %(limit)s
"""


class EventStream:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def after(self, team_id: UUID, after_seq: int = 0, *, limit: int = 1000) -> list[TeamEventPublic]:
        async with self.db.connection() as conn:
            cur = await conn.execute(_LIST, {"team_id": team_id, "after_seq": after_seq, "limit": limit})
            return [TeamEventPublic.model_validate(r) for r in await cur.fetchall()]
