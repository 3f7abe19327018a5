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


# First key of the two-int advisory lock: keeps these locks apart from any other use of advisory locks.
OUTBOX_LOCK_NAMESPACE = 0x6F7574  # "out"

#: lock_team_outbox -- this publisher's turn on a team's outbox (both in one round trip; the select
#: list is evaluated left to right)
LOCK_TEAM_OUTBOX = """
SELECT set_config('lock_timeout', %(timeout)s, true), pg_advisory_xact_lock(%(ns)s, hashtext(%(team_id)s::text))
"""

#: unpublished_batch -- a team's events not yet sent, in seq order, with the team's company
UNPUBLISHED_BATCH = """
SELECT e.type, e.seq, e.team_id, e.task_id, e.created_at AS at, e.payload AS data, t.company_id
FROM team_events e JOIN teams t ON t.id = e.team_id
WHERE e.team_id = %(team_id)s AND e.published_at IS NULL
ORDER BY e.seq LIMIT %(limit)s
"""

#: mark_published -- Web PubSub accepted these
MARK_PUBLISHED = """
UPDATE team_events SET published_at = clock_timestamp()
WHERE team_id = %(team_id)s AND seq = ANY(%(seqs)s) AND published_at IS NULL
"""

#: teams_with_unpublished -- teams with events waiting, oldest waiting first
TEAMS_WITH_UNPUBLISHED = """
SELECT team_id FROM team_events WHERE published_at IS NULL GROUP BY team_id ORDER BY min(id) LIMIT %(limit)s
"""


class PendingEvent(TeamEventPublic):
    company_id: UUID


async def lock_team_outbox(conn: Conn, team_id: UUID, *, timeout_ms: int) -> None:
    """Wait (at most `timeout_ms`, then LockNotAvailable) for another publisher of this team."""
    await conn.execute(LOCK_TEAM_OUTBOX, {"ns": OUTBOX_LOCK_NAMESPACE, "team_id": team_id,
                                          "timeout": f"{timeout_ms}ms"})


async def unpublished(conn: Conn, team_id: UUID, limit: int) -> list[PendingEvent]:
    return await rows.many(conn, PendingEvent, UNPUBLISHED_BATCH, {"team_id": team_id, "limit": limit})


async def mark_published(conn: Conn, team_id: UUID, seqs: list[int]) -> None:
    await conn.execute(MARK_PUBLISHED, {"team_id": team_id, "seqs": seqs})


async def teams_with_unpublished(conn: Conn, limit: int) -> list[UUID]:
    return [UUID(str(v)) for v in await rows.values(conn, TEAMS_WITH_UNPUBLISHED, {"limit": limit})]
