"""Agent messages of a team's feed."""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

from shared.db import rows
from shared.db.database import Conn
from shared.domain.models import MessagePublic

_COLUMNS = "id, team_id, task_id, member_id, sender, kind, content, created_at"

#: insert_message -- one message (idempotent per id: a re-run step posts its message once)
INSERT = f"""
INSERT INTO messages (id, team_id, task_id, member_id, sender, kind, content)
VALUES (%(id)s, %(team_id)s, %(task_id)s, %(member_id)s, %(sender)s, %(kind)s, %(content)s)
ON CONFLICT (id) DO NOTHING
RETURNING {_COLUMNS}
"""  # noqa: S608 - SQL built from this module's constants
#: get_message -- one message
GET = f"SELECT {_COLUMNS} FROM messages WHERE id = %(id)s"  # noqa: S608 - SQL built from this module's constants
#: list_messages -- a team's messages, oldest first, after a time
LIST = """
SELECT id, team_id, task_id, member_id, sender, kind, content, created_at FROM messages
WHERE team_id = %(team_id)s AND (%(after)s::timestamptz IS NULL OR created_at > %(after)s::timestamptz)
ORDER BY created_at, id LIMIT %(limit)s
"""


async def insert(conn: Conn, *, message_id: UUID, team_id: UUID, task_id: UUID | None, member_id: UUID | None,
                 sender: str, kind: str, content: str) -> MessagePublic | None:
    return await rows.one(conn, MessagePublic, INSERT, {
        "id": message_id, "team_id": team_id, "task_id": task_id, "member_id": member_id, "sender": sender,
        "kind": kind, "content": content})


async def for_team(conn: Conn, team_id: UUID, *, after: datetime | None, limit: int) -> list[MessagePublic]:
    return await rows.many(conn, MessagePublic, LIST, {"team_id": team_id, "after": after, "limit": limit})


async def get(conn: Conn, message_id: UUID) -> MessagePublic | None:
    return await rows.one(conn, MessagePublic, GET, {"id": message_id})
