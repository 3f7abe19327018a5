"""The team event stream (outbox) as clients read it for backfill."""

from __future__ import annotations

from uuid import UUID

from shared.db import rows
from shared.db.database import Conn
from shared.domain.models import TeamEventPublic

#: events_after -- a team's events after a seq, oldest first
AFTER = """
SELECT type, seq, team_id, task_id, created_at AS at, payload AS data FROM team_events
WHERE team_id = %(team_id)s AND seq > %(after_seq)s ORDER BY seq LIMIT %(limit)s
"""


async def after(conn: Conn, team_id: UUID, after_seq: int, limit: int) -> list[TeamEventPublic]:
    return await rows.many(conn, TeamEventPublic, AFTER, {"team_id": team_id, "after_seq": after_seq, "limit": limit})
