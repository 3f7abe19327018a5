"""Cost tracking: every LLM call's tokens priced once, summed per team, checked against the budget."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from uuid import UUID

from shared.db import journal
from shared.db.database import Database
from shared.domain.costs import OFFICIAL, PriceTable
from shared.domain.errors import NotFound
from shared.domain.ids import uuid7
from shared.domain.models import Actor, CostBreakdown, TeamCosts

_INSERT = """
WITH ins AS (
    INSERT INTO cost_tracking (id, company_id, team_id, task_id, member_id, provider, model, input_tokens,
                               output_tokens, cost_usd, purpose, idempotency_key)
    SELECT %(id)s, t.company_id, t.id, %(task_id)s, %(member_id)s, %(provider)s, %(model)s,
           %(input_tokens)s, %(output_tokens)s, %(cost_usd)s, %(purpose)s, %(key)s
    FROM teams t WHERE t.id = %(team_id)s
    ON CONFLICT (idempotency_key) DO NOTHING
    RETURNING company_id, cost_usd
)
UPDATE teams SET spent_usd = spent_usd + ins.cost_usd FROM ins WHERE teams.id = %(team_id)s
RETURNING ins.company_id, teams.spent_usd, teams.budget_usd
"""

_BREAKDOWN = """
SELECT {key} AS key, coalesce(sum(c.cost_usd), 0) AS total_usd, coalesce(sum(c.input_tokens), 0) AS input_tokens,
       coalesce(sum(c.output_tokens), 0) AS output_tokens, count(*) AS calls
FROM cost_tracking c {join} WHERE c.team_id = %(team_id)s GROUP BY 1 ORDER BY 2 DESC, 1
"""
_BY_MODEL = _BREAKDOWN.format(key="c.model", join="")
_BY_MEMBER = _BREAKDOWN.format(
    key="coalesce(m.name, 'unattributed')", join="LEFT JOIN team_members m ON m.id = c.member_id"
)
_TEAM_BUDGET = "SELECT spent_usd, budget_usd FROM teams WHERE id = %(team_id)s"


@dataclass(frozen=True)
class BudgetStatus:
    spent_usd: Decimal
    budget_usd: Decimal | None

    @property
    def exceeded(self) -> bool:
        return self.budget_usd is not None and self.spent_usd >= self.budget_usd

    @property
    def remaining_usd(self) -> Decimal | None:
        return None if self.budget_usd is None else self.budget_usd - self.spent_usd


class CostTracker:
    def __init__(self, db: Database, *, prices: PriceTable = OFFICIAL) -> None:
        self.db = db
        self.prices = prices  #: official prices plus the settings' price of compatible-server models

    async def record(
        self,
        *,
        team_id: UUID,
        provider: str,
        model: str,
        input_tokens: int,
        output_tokens: int,
        actor: Actor,
        task_id: UUID | None = None,
        member_id: UUID | None = None,
        purpose: str = "llm",
        idempotency_key: str | None = None,
    ) -> BudgetStatus:
        """Record one call (once per idempotency key) and return the team's budget position."""
        cost = self.prices.cost(model, input_tokens, output_tokens)
        async with self.db.transaction() as tx:
            cur = await tx.conn.execute(
                _INSERT,
                {"id": uuid7(), "team_id": team_id, "task_id": task_id, "member_id": member_id,
                 "provider": provider, "model": model, "input_tokens": input_tokens,
                 "output_tokens": output_tokens, "cost_usd": cost, "purpose": purpose, "key": idempotency_key},
            )
            row = await cur.fetchone()
            if row is None:  # already recorded (or no such team)
                cur = await tx.conn.execute(_TEAM_BUDGET, {"team_id": team_id})
                team = await cur.fetchone()
                if team is None:
                    raise NotFound("team not found")
                return BudgetStatus(team["spent_usd"], team["budget_usd"])
            data = {"provider": provider, "model": model, "input_tokens": input_tokens,
                    "output_tokens": output_tokens, "cost_usd": str(cost), "purpose": purpose,
                    "spent_usd": str(row["spent_usd"]),
                    "member_id": str(member_id) if member_id else None}
            await journal.audit(tx, company_id=row["company_id"], team_id=team_id, task_id=task_id, actor=actor,
                                event_type="llm.call", payload=data)
            await journal.emit(tx, team_id=team_id, task_id=task_id, event_type="cost.recorded", data=data)
        return BudgetStatus(row["spent_usd"], row["budget_usd"])

    async def budget(self, team_id: UUID) -> BudgetStatus:
        async with self.db.connection() as conn:
            cur = await conn.execute(_TEAM_BUDGET, {"team_id": team_id})
            row = await cur.fetchone()
        if row is None:
            raise NotFound("team not found")
        return BudgetStatus(row["spent_usd"], row["budget_usd"])

    async def totals(self, team_id: UUID) -> TeamCosts:
        async with self.db.connection() as conn:
            by_model = await (await conn.execute(_BY_MODEL, {"team_id": team_id})).fetchall()
            by_member = await (await conn.execute(_BY_MEMBER, {"team_id": team_id})).fetchall()
            team = await (await conn.execute(_TEAM_BUDGET, {"team_id": team_id})).fetchone()
        if team is None:
            raise NotFound("team not found")
        return TeamCosts(
            total_usd=team["spent_usd"], budget_usd=team["budget_usd"],
            by_model=[CostBreakdown.model_validate(r) for r in by_model],
            by_member=[CostBreakdown.model_validate(r) for r in by_member],
        )
