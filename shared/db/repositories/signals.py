"""The orchestration signal outbox: claim what is due, record what happened to each send."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

from pydantic import BaseModel

from shared.db import rows
from shared.db.database import Conn


class SignalRow(BaseModel):
    id: UUID
    team_id: UUID
    instance_id: str
    kind: str
    name: str
    payload: dict[str, Any]
    created_at: datetime
    attempts: int


_COLUMNS = "id, team_id, instance_id, kind, name, payload, created_at, attempts"

#: claim_signals -- due, unsent signals (some by id), leased to this dispatcher for a while
CLAIM = f"""
UPDATE orchestration_signals s SET claimed_until = clock_timestamp() + %(lease_seconds)s * interval '1 second',
       attempts = s.attempts + 1
WHERE s.id IN (
    SELECT id FROM orchestration_signals
    WHERE sent_at IS NULL AND next_attempt_at <= clock_timestamp()
      AND (claimed_until IS NULL OR claimed_until < clock_timestamp())
      AND (%(ids)s::uuid[] IS NULL OR id = ANY(%(ids)s::uuid[]))
    ORDER BY created_at LIMIT %(limit)s
    FOR UPDATE SKIP LOCKED
)
RETURNING {_COLUMNS}
"""

#: mark_sent -- the orchestration has it (or no longer needs it)
MARK_SENT = """
UPDATE orchestration_signals SET sent_at = clock_timestamp(), claimed_until = NULL, outcome = %(outcome)s,
       last_error = NULL
WHERE id = %(id)s AND sent_at IS NULL
"""

#: retry_later -- the send failed: try again after a back-off
RETRY_LATER = """
UPDATE orchestration_signals SET claimed_until = NULL, last_error = %(error)s,
       next_attempt_at = clock_timestamp() + %(delay_seconds)s * interval '1 second'
WHERE id = %(id)s AND sent_at IS NULL
"""

#: pending_for_team -- a team's unsent signals (tests, health)
PENDING_FOR_TEAM = f"""
SELECT {_COLUMNS} FROM orchestration_signals WHERE team_id = %(team_id)s AND sent_at IS NULL ORDER BY created_at
"""


async def claim(conn: Conn, *, limit: int, lease_seconds: float, ids: list[UUID] | None = None) -> list[SignalRow]:
    return await rows.many(conn, SignalRow, CLAIM, {"limit": limit, "lease_seconds": lease_seconds, "ids": ids})


async def mark_sent(conn: Conn, signal_id: UUID, outcome: str) -> None:
    await conn.execute(MARK_SENT, {"id": signal_id, "outcome": outcome})


async def retry_later(conn: Conn, signal_id: UUID, *, error: str, delay_seconds: float) -> None:
    await conn.execute(RETRY_LATER, {"id": signal_id, "error": error[:500], "delay_seconds": delay_seconds})


async def pending_for_team(conn: Conn, team_id: UUID) -> list[SignalRow]:
    return await rows.many(conn, SignalRow, PENDING_FOR_TEAM, {"team_id": team_id})
