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

#: due_instances -- orchestrations whose oldest unsent signal is due (optionally: those of some signals)
DUE_INSTANCES = """
SELECT instance_id FROM (
    SELECT DISTINCT ON (instance_id) instance_id, next_attempt_at, created_at
    FROM orchestration_signals
    WHERE sent_at IS NULL
      AND (%(ids)s::uuid[] IS NULL
           OR instance_id IN (SELECT instance_id FROM orchestration_signals WHERE id = ANY(%(ids)s::uuid[])))
    ORDER BY instance_id, created_at, id
) head
WHERE head.next_attempt_at <= clock_timestamp()
ORDER BY head.created_at LIMIT %(limit)s
"""

#: lock_instance -- this dispatcher's turn on one orchestration's signals (until its transaction ends)
LOCK_INSTANCE = "SELECT pg_try_advisory_xact_lock(%(ns)s, hashtext(%(instance_id)s))"
#: First key of the two-int advisory lock: keeps these locks apart from other uses of advisory locks.
LOCK_NAMESPACE = 0x736967  # "sig"

#: unsent_for_instance -- one orchestration's unsent signals in the order they were written
UNSENT_FOR_INSTANCE = f"""
SELECT {_COLUMNS} FROM orchestration_signals
WHERE instance_id = %(instance_id)s AND sent_at IS NULL AND next_attempt_at <= clock_timestamp()
ORDER BY created_at, id
"""  # noqa: S608 - SQL built from this module's constants

#: mark_sent -- the orchestration has it (or no longer needs it)
MARK_SENT = """
UPDATE orchestration_signals SET sent_at = clock_timestamp(), outcome = %(outcome)s, last_error = NULL,
       attempts = attempts + 1
WHERE id = %(id)s AND sent_at IS NULL
"""

#: retry_later -- the send failed: this signal and the later ones of its orchestration wait a back-off
RETRY_LATER = """
UPDATE orchestration_signals SET attempts = attempts + 1, last_error = %(error)s,
       next_attempt_at = clock_timestamp() + %(delay_seconds)s * interval '1 second'
WHERE id = %(id)s AND sent_at IS NULL
"""

#: pending_for_team -- a team's unsent signals (tests, health)
PENDING_FOR_TEAM = f"""
SELECT {_COLUMNS} FROM orchestration_signals WHERE team_id = %(team_id)s AND sent_at IS NULL ORDER BY created_at
"""  # noqa: S608 - SQL built from this module's constants


async def due_instances(conn: Conn, *, limit: int, ids: list[UUID] | None = None) -> list[str]:
    return [str(v) for v in await rows.values(conn, DUE_INSTANCES, {"limit": limit, "ids": ids})]


async def lock_instance(conn: Conn, instance_id: str) -> bool:
    return bool(await rows.value(conn, LOCK_INSTANCE, {"ns": LOCK_NAMESPACE, "instance_id": instance_id}))


async def unsent_for_instance(conn: Conn, instance_id: str) -> list[SignalRow]:
    return await rows.many(conn, SignalRow, UNSENT_FOR_INSTANCE, {"instance_id": instance_id})


async def mark_sent(conn: Conn, signal_id: UUID, outcome: str) -> None:
    await conn.execute(MARK_SENT, {"id": signal_id, "outcome": outcome})


async def retry_later(conn: Conn, signal_id: UUID, *, error: str, delay_seconds: float) -> None:
    await conn.execute(RETRY_LATER, {"id": signal_id, "error": error[:500], "delay_seconds": delay_seconds})


async def pending_for_team(conn: Conn, team_id: UUID) -> list[SignalRow]:
    return await rows.many(conn, SignalRow, PENDING_FOR_TEAM, {"team_id": team_id})
