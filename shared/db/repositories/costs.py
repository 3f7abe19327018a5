"""LLM call costs: reservations against the team's budget, their settlement, and the breakdowns.

Every statement that changes a cost row locks the team row first (lock order: team, then the rest),
and keeps `teams.spent_usd` / `teams.reserved_usd` equal to the sums over the team's cost rows.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from uuid import UUID

from shared.db import rows
from shared.db.database import Conn
from shared.domain.models import CostBreakdown

#: reserve_call -- hold a call's worst case against the budget, only if it fits
RESERVE = """
WITH team AS (
    UPDATE teams SET reserved_usd = reserved_usd + %(reserve)s
    WHERE id = %(team_id)s
      AND (budget_usd IS NULL OR spent_usd + reserved_usd + %(reserve)s <= budget_usd)
    RETURNING id, company_id, spent_usd, reserved_usd, budget_usd
), ins AS (
    INSERT INTO cost_tracking (id, company_id, team_id, task_id, member_id, provider, model, input_tokens,
                               output_tokens, cost_usd, purpose, idempotency_key, status, reserved_usd,
                               max_tokens, expires_at)
    SELECT %(id)s, team.company_id, team.id, %(task_id)s, %(member_id)s, %(provider)s, %(model)s,
           %(input_tokens)s, %(max_tokens)s, 0, %(purpose)s, %(id)s::text, 'reserved', %(reserve)s,
           %(max_tokens)s, clock_timestamp() + %(ttl_seconds)s * interval '1 second'
    FROM team
    RETURNING id
)
SELECT team.company_id, team.spent_usd, team.reserved_usd, team.budget_usd FROM team, ins
"""

#: reserve_tool_call -- hold a tool call's declared maximum; only while the budget has something left
RESERVE_TOOL = """
WITH team AS (
    UPDATE teams SET reserved_usd = reserved_usd + %(reserve)s
    WHERE id = %(team_id)s
      AND (budget_usd IS NULL OR (spent_usd + reserved_usd < budget_usd
                                  AND spent_usd + reserved_usd + %(reserve)s <= budget_usd))
    RETURNING id, company_id, spent_usd, reserved_usd, budget_usd
), ins AS (
    INSERT INTO cost_tracking (id, company_id, team_id, task_id, member_id, provider, model, input_tokens,
                               output_tokens, cost_usd, purpose, idempotency_key, status, reserved_usd, expires_at)
    SELECT %(id)s, team.company_id, team.id, %(task_id)s, %(member_id)s, 'mcp', %(tool)s, 0, 0, 0, 'tool',
           %(id)s::text, 'reserved', %(reserve)s, clock_timestamp() + %(ttl_seconds)s * interval '1 second'
    FROM team
    RETURNING id
)
SELECT team.company_id, team.spent_usd, team.reserved_usd, team.budget_usd FROM team, ins
"""

#: bill_tool_call -- a cost a tool server reported for a call nothing was reserved for
BILL_TOOL = """
WITH team AS (
    UPDATE teams SET spent_usd = spent_usd + %(cost)s WHERE id = %(team_id)s
    RETURNING id, company_id, spent_usd, reserved_usd, budget_usd
), ins AS (
    INSERT INTO cost_tracking (id, company_id, team_id, task_id, member_id, provider, model, input_tokens,
                               output_tokens, cost_usd, purpose, idempotency_key, status, settled_at)
    SELECT %(id)s, team.company_id, team.id, %(task_id)s, %(member_id)s, 'mcp', %(tool)s, 0, 0, %(cost)s, 'tool',
           %(id)s::text, 'settled', clock_timestamp()
    FROM team
    RETURNING id
)
SELECT team.spent_usd, team.reserved_usd, team.budget_usd FROM team, ins
"""

#: lock_call -- a call's cost row, its team locked first
LOCK_CALL = """
WITH team AS (SELECT id FROM teams WHERE id = %(team_id)s FOR UPDATE)
SELECT c.id, c.company_id, c.team_id, c.task_id, c.member_id, c.provider, c.model, c.status, c.purpose,
       c.reserved_usd, c.cost_usd, c.input_tokens, c.output_tokens
FROM cost_tracking c JOIN team ON team.id = c.team_id
WHERE c.id = %(id)s FOR UPDATE OF c
"""

#: settle_call -- the real cost replaces the reservation (or a worst-case estimate made after a crash)
SETTLE = """
WITH upd AS (
    UPDATE cost_tracking SET status = 'settled', model = %(model)s, input_tokens = %(input_tokens)s,
           output_tokens = %(output_tokens)s, cost_usd = %(cost)s, settled_at = clock_timestamp()
    WHERE id = %(id)s AND status IN ('reserved', 'estimated')
    RETURNING team_id
)
UPDATE teams t SET spent_usd = t.spent_usd + %(cost)s - %(previous_cost)s,
                   reserved_usd = t.reserved_usd - %(held)s
FROM upd WHERE t.id = upd.team_id
RETURNING t.spent_usd, t.reserved_usd, t.budget_usd
"""

#: release_call -- the provider answered without usage: nothing to bill, the reservation goes back
RELEASE = """
WITH upd AS (
    UPDATE cost_tracking SET status = 'released', cost_usd = 0, output_tokens = 0, settled_at = clock_timestamp()
    WHERE id = %(id)s AND status = 'reserved'
    RETURNING team_id, reserved_usd
)
UPDATE teams t SET reserved_usd = t.reserved_usd - upd.reserved_usd FROM upd WHERE t.id = upd.team_id
"""

#: expired_reservations -- calls whose process died mid-call (their reservation outlived the call's ceiling)
EXPIRED = """
SELECT id, team_id FROM cost_tracking
WHERE status = 'reserved' AND expires_at < clock_timestamp()
ORDER BY expires_at LIMIT %(limit)s
"""

#: estimate_call -- bill an abandoned call at its worst case (the provider may have served it)
ESTIMATE = """
WITH upd AS (
    UPDATE cost_tracking SET status = 'estimated', cost_usd = reserved_usd, settled_at = clock_timestamp()
    WHERE id = %(id)s AND status = 'reserved' AND expires_at < clock_timestamp()
    RETURNING team_id, reserved_usd
)
UPDATE teams t SET spent_usd = t.spent_usd + upd.reserved_usd, reserved_usd = t.reserved_usd - upd.reserved_usd
FROM upd WHERE t.id = upd.team_id
RETURNING t.spent_usd, t.reserved_usd, t.budget_usd
"""

#: team_budget -- spent, reserved and budget of a team
TEAM_BUDGET = "SELECT spent_usd, reserved_usd, budget_usd FROM teams WHERE id = %(team_id)s"

_BREAKDOWN = """
SELECT {key} AS key, coalesce(sum(c.cost_usd), 0) AS total_usd, coalesce(sum(c.input_tokens), 0) AS input_tokens,
       coalesce(sum(c.output_tokens), 0) AS output_tokens, count(*) AS calls
FROM cost_tracking c {join}
WHERE c.team_id = %(team_id)s AND c.status IN ('settled', 'estimated') GROUP BY 1 ORDER BY 2 DESC, 1
"""
#: costs_by_model -- billed calls per model
BY_MODEL = _BREAKDOWN.format(key="c.model", join="")
#: costs_by_member -- billed calls per member
BY_MEMBER = _BREAKDOWN.format(
    key="coalesce(m.name, 'unattributed')", join="LEFT JOIN team_members m ON m.id = c.member_id"
)


@dataclass(frozen=True)
class Budget:
    spent_usd: Decimal
    reserved_usd: Decimal
    budget_usd: Decimal | None


@dataclass(frozen=True)
class Reserved:
    company_id: UUID
    spent_usd: Decimal
    reserved_usd: Decimal
    budget_usd: Decimal | None


@dataclass(frozen=True)
class CallRow:
    id: UUID
    company_id: UUID
    team_id: UUID
    task_id: UUID | None
    member_id: UUID | None
    provider: str
    model: str
    status: str
    purpose: str
    reserved_usd: Decimal
    cost_usd: Decimal
    input_tokens: int
    output_tokens: int


@dataclass(frozen=True)
class Expired:
    id: UUID
    team_id: UUID


async def reserve(conn: Conn, *, call_id: UUID, team_id: UUID, task_id: UUID | None, member_id: UUID | None,
                  provider: str, model: str, purpose: str, input_tokens: int, max_tokens: int, reserve: Decimal,
                  ttl_seconds: float) -> Reserved | None:
    """The team's position after the reservation, or None when it does not fit (or no such team)."""
    return await rows.one(conn, Reserved, RESERVE, {
        "id": call_id, "team_id": team_id, "task_id": task_id, "member_id": member_id, "provider": provider,
        "model": model, "purpose": purpose, "input_tokens": input_tokens, "max_tokens": max_tokens,
        "reserve": reserve, "ttl_seconds": ttl_seconds})


async def reserve_tool(conn: Conn, *, call_id: UUID, team_id: UUID, task_id: UUID | None, member_id: UUID | None,
                       tool: str, reserve: Decimal, ttl_seconds: float) -> Reserved | None:
    """The team's position after the reservation, or None when the budget has nothing left for it."""
    return await rows.one(conn, Reserved, RESERVE_TOOL, {
        "id": call_id, "team_id": team_id, "task_id": task_id, "member_id": member_id, "tool": tool,
        "reserve": reserve, "ttl_seconds": ttl_seconds})


async def bill_tool(conn: Conn, *, call_id: UUID, team_id: UUID, task_id: UUID | None, member_id: UUID | None,
                    tool: str, cost: Decimal) -> Budget | None:
    return await rows.one(conn, Budget, BILL_TOOL, {
        "id": call_id, "team_id": team_id, "task_id": task_id, "member_id": member_id, "tool": tool, "cost": cost})


async def lock_call(conn: Conn, call_id: UUID, team_id: UUID) -> CallRow | None:
    return await rows.one(conn, CallRow, LOCK_CALL, {"id": call_id, "team_id": team_id})


async def settle(conn: Conn, call: CallRow, *, model: str, input_tokens: int, output_tokens: int,
                 cost: Decimal) -> Budget | None:
    held = call.reserved_usd if call.status == "reserved" else Decimal(0)
    previous = call.cost_usd if call.status == "estimated" else Decimal(0)
    return await rows.one(conn, Budget, SETTLE, {
        "id": call.id, "model": model, "input_tokens": input_tokens, "output_tokens": output_tokens, "cost": cost,
        "held": held, "previous_cost": previous})


async def release(conn: Conn, call_id: UUID) -> None:
    await conn.execute(RELEASE, {"id": call_id})


async def expired(conn: Conn, limit: int) -> list[Expired]:
    return await rows.many(conn, Expired, EXPIRED, {"limit": limit})


async def estimate(conn: Conn, call_id: UUID) -> Budget | None:
    return await rows.one(conn, Budget, ESTIMATE, {"id": call_id})


async def budget(conn: Conn, team_id: UUID) -> Budget | None:
    return await rows.one(conn, Budget, TEAM_BUDGET, {"team_id": team_id})


async def by_model(conn: Conn, team_id: UUID) -> list[CostBreakdown]:
    return await rows.many(conn, CostBreakdown, BY_MODEL, {"team_id": team_id})


async def by_member(conn: Conn, team_id: UUID) -> list[CostBreakdown]:
    return await rows.many(conn, CostBreakdown, BY_MEMBER, {"team_id": team_id})


