"""Cost tracking: every LLM call reserved against the budget before it is made, billed once after.

The hard cap (docs/architecture.md, "Budget"): `reserve` holds a call's worst-case cost in one guarded
statement that succeeds only while `spent + reserved + worst case <= budget`; `settle` replaces the
reservation with the real cost (never more than the reservation), `release` returns it when the
provider answered without usage. So concurrent workers cannot overshoot: `spent_usd <= budget_usd`
holds at every instant. A reservation left by a process that died mid-call is billed at its worst
case by `bill_abandoned` (the provider may have served the call), never dropped.

Each call attempt has its own cost row (the call id), so a call re-executed after a crash or a retry is
billed again, exactly as the provider billed it again.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from uuid import UUID

from shared.db import journal
from shared.db.database import Database, Tx
from shared.db.repositories import costs as repo
from shared.db.repositories.costs import Budget, CallRow
from shared.domain.errors import NotFound
from shared.domain.failures import ClassifiedFailure, FailureType
from shared.domain.ids import uuid7
from shared.domain.models import Actor, TeamCosts


@dataclass(frozen=True)
class BudgetStatus:
    spent_usd: Decimal
    budget_usd: Decimal | None
    reserved_usd: Decimal = Decimal(0)

    @property
    def exceeded(self) -> bool:
        return self.budget_usd is not None and self.spent_usd >= self.budget_usd

    @property
    def remaining_usd(self) -> Decimal | None:
        return None if self.budget_usd is None else self.budget_usd - self.spent_usd - self.reserved_usd


class BudgetExhausted(ClassifiedFailure):
    """The next LLM call's worst case does not fit in what is left of the team's budget."""

    def __init__(self, needed: Decimal, status: BudgetStatus) -> None:
        super().__init__(
            FailureType.BUDGET_EXCEEDED,
            f"the next call may cost up to ${needed} and ${status.remaining_usd} of the ${status.budget_usd} "
            "budget is left; the call was not made",
        )
        self.needed = needed
        self.status = status


@dataclass(frozen=True)
class CallUsage:
    """What the provider reported for one call."""

    model: str
    input_tokens: int
    output_tokens: int
    cost_usd: Decimal


def _status(budget: Budget) -> BudgetStatus:
    return BudgetStatus(budget.spent_usd, budget.budget_usd, budget.reserved_usd)


class CostTracker:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def reserve(
        self,
        *,
        team_id: UUID,
        provider: str,
        model: str,
        input_tokens: int,
        max_tokens: int,
        worst_case_usd: Decimal,
        ttl_seconds: float,
        purpose: str,
        task_id: UUID | None = None,
        member_id: UUID | None = None,
    ) -> UUID:
        """Hold `worst_case_usd` for a call about to be made; its call id. Raises BudgetExhausted."""
        call_id = uuid7()
        async with self.db.connection() as conn:
            reserved = await repo.reserve(conn, call_id=call_id, team_id=team_id, task_id=task_id,
                                          member_id=member_id, provider=provider, model=model, purpose=purpose,
                                          input_tokens=input_tokens, max_tokens=max_tokens,
                                          reserve=worst_case_usd, ttl_seconds=ttl_seconds)
            if reserved is None:
                budget = await repo.budget(conn, team_id)
                if budget is None:
                    raise NotFound("team not found")
                raise BudgetExhausted(worst_case_usd, _status(budget))
        return call_id

    async def reserve_tool(self, *, team_id: UUID, tool: str, reserve: Decimal, ttl_seconds: float,
                           task_id: UUID | None = None, member_id: UUID | None = None) -> UUID:
        """Hold a tool call's declared maximum; BudgetExhausted when the budget has nothing left."""
        call_id = uuid7()
        async with self.db.connection() as conn:
            reserved = await repo.reserve_tool(conn, call_id=call_id, team_id=team_id, task_id=task_id,
                                               member_id=member_id, tool=tool, reserve=reserve,
                                               ttl_seconds=ttl_seconds)
            if reserved is None:
                budget = await repo.budget(conn, team_id)
                if budget is None:
                    raise NotFound("team not found")
                raise BudgetExhausted(reserve, _status(budget))
        return call_id

    async def bill_tool_in(self, tx: Tx, *, team_id: UUID, tool: str, cost: Decimal, actor: Actor,
                           reservation: UUID | None, task_id: UUID | None = None,
                           member_id: UUID | None = None) -> None:
        """Bill what a tool server reported for a call (in the transaction that records its result):
        settle its reservation, or add a settled cost row when nothing was reserved and it cost something."""
        if reservation is not None:
            call = await repo.lock_call(tx.conn, reservation, team_id)
            if call is None or call.status not in ("reserved", "estimated"):
                return
            budget = await repo.settle(tx.conn, call, model=tool, input_tokens=0, output_tokens=0, cost=cost)
            assert budget is not None
        elif cost > 0:
            reservation = uuid7()
            budget = await repo.bill_tool(tx.conn, call_id=reservation, team_id=team_id, task_id=task_id,
                                          member_id=member_id, tool=tool, cost=cost)
            if budget is None:
                raise NotFound("team not found")
            call = await repo.lock_call(tx.conn, reservation, team_id)
            assert call is not None
        else:
            return
        await self._bill_event(tx, call, budget, model=tool, input_tokens=0, output_tokens=0, cost=cost, actor=actor,
                               estimated=False, audit_type="tool.cost")

    async def settle(self, call_id: UUID, team_id: UUID, usage: CallUsage, actor: Actor) -> BudgetStatus:
        """Bill the call's real usage (once: a second settle of the same call changes nothing)."""
        return await self.db.atomic(lambda tx: self.settle_in(tx, call_id, team_id, usage, actor))

    async def settle_in(self, tx: Tx, call_id: UUID, team_id: UUID, usage: CallUsage, actor: Actor) -> BudgetStatus:
        """`settle` inside the caller's transaction (a step's: its checkpoint, message and cost commit
        together). Locks the team row first, as every cost statement does."""
        call = await repo.lock_call(tx.conn, call_id, team_id)
        if call is None:
            raise NotFound("no such LLM call")
        if call.status not in ("reserved", "estimated"):
            return await self._budget(tx, team_id)
        budget = await repo.settle(tx.conn, call, model=usage.model, input_tokens=usage.input_tokens,
                                   output_tokens=usage.output_tokens, cost=usage.cost_usd)
        assert budget is not None
        await self._bill_event(tx, call, budget, model=usage.model, input_tokens=usage.input_tokens,
                               output_tokens=usage.output_tokens, cost=usage.cost_usd, actor=actor,
                               estimated=False)
        return _status(budget)

    async def release(self, call_id: UUID) -> None:
        """The call failed without usage: nothing is billed and its reservation goes back."""
        async with self.db.connection() as conn:
            await repo.release(conn, call_id)

    async def bill_abandoned(self, *, limit: int = 500) -> int:
        """Bill reservations whose process died mid-call at their worst case; how many were billed."""
        async with self.db.connection() as conn:
            expired = await repo.expired(conn, limit)
        billed = 0
        for item in expired:

            async def work(tx: Tx, item: repo.Expired = item) -> bool:
                call = await repo.lock_call(tx.conn, item.id, item.team_id)
                if call is None or call.status != "reserved":
                    return False
                budget = await repo.estimate(tx.conn, item.id)
                if budget is None:  # not expired any more (clock) or settled meanwhile
                    return False
                await self._bill_event(tx, call, budget, model=call.model, input_tokens=call.input_tokens,
                                       output_tokens=call.output_tokens, cost=call.reserved_usd,
                                       actor=Actor.system(), estimated=True)
                return True

            billed += await self.db.atomic(work)
        return billed

    async def _bill_event(self, tx: Tx, call: CallRow, budget: Budget, *, model: str, input_tokens: int,
                          output_tokens: int, cost: Decimal, actor: Actor, estimated: bool,
                          audit_type: str = "llm.call") -> None:
        data = {"call_id": str(call.id), "provider": call.provider, "model": model, "input_tokens": input_tokens,
                "output_tokens": output_tokens, "cost_usd": str(cost), "purpose": call.purpose,
                "spent_usd": str(budget.spent_usd), "member_id": str(call.member_id) if call.member_id else None,
                "estimated": estimated}
        await journal.audit(tx, company_id=call.company_id, team_id=call.team_id, task_id=call.task_id,
                            actor=actor, event_type=audit_type, payload=data)
        await journal.emit(tx, team_id=call.team_id, task_id=call.task_id, event_type="cost.recorded", data=data)

    async def _budget(self, tx: Tx, team_id: UUID) -> BudgetStatus:
        budget = await repo.budget(tx.conn, team_id)
        if budget is None:
            raise NotFound("team not found")
        return _status(budget)

    async def budget(self, team_id: UUID) -> BudgetStatus:
        async with self.db.connection() as conn:
            budget = await repo.budget(conn, team_id)
        if budget is None:
            raise NotFound("team not found")
        return _status(budget)

    async def totals(self, team_id: UUID) -> TeamCosts:
        async with self.db.connection() as conn:
            by_model = await repo.by_model(conn, team_id)
            by_member = await repo.by_member(conn, team_id)
            budget = await repo.budget(conn, team_id)
        if budget is None:
            raise NotFound("team not found")
        return TeamCosts(total_usd=budget.spent_usd, budget_usd=budget.budget_usd, reserved_usd=budget.reserved_usd,
                         by_model=by_model, by_member=by_member)
