"""The hard budget cap and exact billing, on a real PostgreSQL.

Every LLM call reserves its worst case before it is made and settles with its real usage after; a
call that does not fit is never made; each attempt is billed; a call abandoned mid-flight is billed
at its worst case. The invariant `spent_usd <= budget_usd` holds at every instant, with parallel
workers.
"""

from __future__ import annotations

import asyncio
import uuid
from decimal import Decimal

import pytest
from psycopg_pool import AsyncConnectionPool

from shared.agents.llm import Completion, Message, ProviderOutputInvalid
from shared.db.database import Database
from shared.domain.costs import compute_cost, input_token_bound, worst_case_cost
from shared.domain.failures import ClassifiedFailure, FailureType
from shared.domain.models import Actor
from shared.services.costs import BudgetExhausted, CallUsage, CostTracker
from shared.services.metering import CallScope, MeteredProvider

SYSTEM = Actor.system()
MODEL = "offline-worker"


class CountingProvider:
    """A provider edge that records every call it serves (what a provider would bill)."""

    name = "offline"

    def __init__(self, *, output_tokens: int = 50, latency: float = 0.0, fail_with: Exception | None = None) -> None:
        self.output_tokens = output_tokens
        self.latency = latency
        self.fail_with = fail_with
        self.served = 0

    async def complete(self, messages, *, model, schema=None, max_tokens=2048, temperature=0.2, **_):
        await asyncio.sleep(self.latency)
        if self.fail_with is not None:
            raise self.fail_with
        self.served += 1
        output = min(self.output_tokens, max_tokens)
        return Completion(text="ok", parsed=None, input_tokens=40, output_tokens=output, model=model,
                          provider=self.name, latency_ms=1.0)


async def team_row(services, team_id):
    async with services.db.connection() as conn:
        return await (await conn.execute(
            "SELECT spent_usd, reserved_usd, budget_usd,"
            " (SELECT count(*) FROM cost_tracking c WHERE c.team_id = t.id AND c.status IN ('settled', 'estimated'))"
            " AS billed, (SELECT coalesce(sum(cost_usd), 0) FROM cost_tracking c WHERE c.team_id = t.id) AS summed"
            " FROM teams t WHERE id = %(id)s", {"id": team_id})).fetchone()


def metered(services, provider, team_id, **kwargs) -> MeteredProvider:
    return MeteredProvider(provider, services.costs, CallScope(team_id=team_id, purpose="execute", actor=SYSTEM),
                           **kwargs)


PROMPT = [Message("user", "write one line")]


async def test_a_call_reserves_its_worst_case_and_bills_its_real_cost(make_team, services):
    team = await make_team(budget_usd=Decimal("1"))
    provider = CountingProvider(output_tokens=50)
    completion = await metered(services, provider, team.id).complete(PROMPT, model=MODEL, max_tokens=300)

    row = await team_row(services, team.id)
    assert row["spent_usd"] == completion.cost_usd == compute_cost(MODEL, 40, 50)
    assert row["reserved_usd"] == 0 and row["billed"] == 1 and row["summed"] == row["spent_usd"]
    bound = input_token_bound(["write one line"], messages=1)
    assert worst_case_cost(MODEL, bound, 300) >= completion.cost_usd
    [event] = [e for e in await services.events.after(team.id) if e.type == "cost.recorded"]
    assert event.data["cost_usd"] == str(completion.cost_usd) and event.data["estimated"] is False


async def test_a_call_that_does_not_fit_the_budget_is_never_made(make_team, services):
    worst = worst_case_cost(MODEL, input_token_bound(["write one line"], messages=1), 4096)
    team = await make_team(budget_usd=(worst - Decimal("0.0001")).quantize(Decimal("0.0001")))
    provider = CountingProvider()
    with pytest.raises(BudgetExhausted) as refused:
        await metered(services, provider, team.id).complete(PROMPT, model=MODEL, max_tokens=4096)
    assert refused.value.failure_type is FailureType.BUDGET_EXCEEDED
    assert provider.served == 0
    row = await team_row(services, team.id)
    assert row["spent_usd"] == 0 and row["reserved_usd"] == 0 and row["billed"] == 0


async def test_every_attempt_of_a_call_is_billed_as_the_provider_served_it(make_team, services):
    """A step re-executed after a crash or an activity retry makes its calls again: each is billed."""
    team = await make_team()
    provider = CountingProvider()
    for _attempt in range(3):  # the same step, three times
        await metered(services, provider, team.id).complete(PROMPT, model=MODEL, max_tokens=100)
    row = await team_row(services, team.id)
    assert provider.served == row["billed"] == 3
    assert row["spent_usd"] == 3 * compute_cost(MODEL, 40, 50)


async def test_an_error_answer_bills_nothing_and_an_invalid_answer_bills_its_usage(make_team, services):
    team = await make_team(budget_usd=Decimal("1"))
    down = CountingProvider(fail_with=ClassifiedFailure(FailureType.PROVIDER_UNAVAILABLE, "503"))
    with pytest.raises(ClassifiedFailure):
        await metered(services, down, team.id).complete(PROMPT, model=MODEL, max_tokens=100)
    row = await team_row(services, team.id)
    assert row["spent_usd"] == 0 and row["reserved_usd"] == 0 and row["billed"] == 0

    garbled = Completion(text="{not json", parsed=None, input_tokens=40, output_tokens=7, model=MODEL,
                         provider="offline", latency_ms=1.0)
    invalid = CountingProvider(fail_with=ProviderOutputInvalid("not JSON", completion=garbled))
    with pytest.raises(ProviderOutputInvalid):
        await metered(services, invalid, team.id).complete(PROMPT, model=MODEL, max_tokens=100)
    row = await team_row(services, team.id)
    assert row["spent_usd"] == garbled.cost_usd and row["reserved_usd"] == 0 and row["billed"] == 1


async def test_settling_a_call_twice_bills_it_once(make_team, services):
    team = await make_team()
    call_id = await services.costs.reserve(team_id=team.id, provider="offline", model=MODEL, input_tokens=100,
                                           max_tokens=100, worst_case_usd=Decimal("0.01"), ttl_seconds=60,
                                           purpose="execute")
    usage = CallUsage(model=MODEL, input_tokens=10, output_tokens=10, cost_usd=compute_cost(MODEL, 10, 10))
    await services.costs.settle(call_id, team.id, usage, SYSTEM)
    await services.costs.settle(call_id, team.id, usage, SYSTEM)
    row = await team_row(services, team.id)
    assert row["spent_usd"] == usage.cost_usd and row["billed"] == 1 and row["reserved_usd"] == 0


async def test_a_call_abandoned_mid_flight_is_billed_at_its_worst_case_never_dropped(make_team, services):
    team = await make_team(budget_usd=Decimal("1"))
    provider = CountingProvider(latency=30)
    call = asyncio.create_task(metered(services, provider, team.id, call_timeout_seconds=0).complete(
        PROMPT, model=MODEL, max_tokens=200))
    await asyncio.sleep(0.3)
    row = await team_row(services, team.id)
    held = row["reserved_usd"]
    assert held > 0 and row["spent_usd"] == 0
    call.cancel()  # the process gives up mid-call (a crash leaves the same row behind)
    with pytest.raises(asyncio.CancelledError):
        await call
    assert (await team_row(services, team.id))["reserved_usd"] == held  # kept until the sweep decides

    await asyncio.sleep(0.1)
    async with services.db.connection() as conn:  # its ceiling (0 s + the margin) has passed
        await conn.execute("UPDATE cost_tracking SET expires_at = now() - interval '1 second'"
                           " WHERE team_id = %(t)s AND status = 'reserved'", {"t": team.id})
    assert await services.costs.bill_abandoned() == 1
    assert await services.costs.bill_abandoned() == 0
    row = await team_row(services, team.id)
    assert row["spent_usd"] == held and row["reserved_usd"] == 0 and row["billed"] == 1
    [event] = [e for e in await services.events.after(team.id) if e.type == "cost.recorded"]
    assert event.data["estimated"] is True


async def _cut_connections(services, application_name: str) -> None:
    """What a database restart does to a process: every connection it holds is closed under it."""
    async with services.db.connection() as conn:
        await conn.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = %(a)s",
                           {"a": application_name})


@pytest.mark.parametrize("answer", ["served", "error"])
async def test_a_call_whose_step_met_a_database_restart_is_still_billed_exactly(make_team, services, database_url,
                                                                                answer):
    """The chaos run's gap: the step's commit failed because PostgreSQL restarted, and the settlement
    in its `finally` (or the release of an error answer) met the same dead connection; the
    reservation stayed and the sweep billed the call at its worst case instead of its real usage."""
    team = await make_team(budget_usd=Decimal("1"))
    name = f"gp-restart-{uuid.uuid4().hex[:8]}"
    own = AsyncConnectionPool(database_url, min_size=1, max_size=1, open=False, timeout=5,
                              kwargs={"autocommit": True, "application_name": name})
    await own.open(wait=True)
    try:
        tracker = CostTracker(Database(own))
        scope = CallScope(team_id=team.id, purpose="execute", actor=SYSTEM)
        if answer == "served":
            provider = MeteredProvider(CountingProvider(output_tokens=30), tracker, scope, defer_settlement=True)
            completion = await provider.complete(PROMPT, model=MODEL, max_tokens=200)
            await _cut_connections(services, name)
            await provider.settle_leftovers()  # what the step's `finally` does after its commit failed
            expected = completion.cost_usd
        else:
            down = CountingProvider(fail_with=ClassifiedFailure(FailureType.PROVIDER_UNAVAILABLE, "503"))
            provider = MeteredProvider(down, tracker, scope)
            down.latency = 0.2
            call = asyncio.create_task(provider.complete(PROMPT, model=MODEL, max_tokens=200))
            await asyncio.sleep(0.1)  # reserved; the answer (an error) arrives after the restart
            await _cut_connections(services, name)
            with pytest.raises(ClassifiedFailure):
                await call
            expected = Decimal(0)
    finally:
        await own.close()
    row = await team_row(services, team.id)
    assert row["reserved_usd"] == 0 and row["spent_usd"] == expected
    async with services.db.connection() as conn:
        statuses = [r["status"] for r in await (await conn.execute(
            "SELECT status FROM cost_tracking WHERE team_id = %(t)s", {"t": team.id})).fetchall()]
    assert statuses == (["settled"] if answer == "served" else ["released"])


async def test_parallel_workers_never_overshoot_the_budget(make_team, services):
    """Twelve workers race for a budget that fits only some of their calls; a sampler reads the team
    row the whole time: spent (and spent + reserved) never exceeds the budget, and every call that
    was made is billed."""
    worst = worst_case_cost(MODEL, input_token_bound(["write one line"], messages=1), 2000)
    budget = (worst * 5).quantize(Decimal("0.0001"))
    team = await make_team(budget_usd=budget)
    provider = CountingProvider(output_tokens=1500, latency=0.02)
    samples: list[tuple[Decimal, Decimal]] = []
    stop = asyncio.Event()

    async def sample() -> None:
        while not stop.is_set():
            row = await team_row(services, team.id)
            samples.append((row["spent_usd"], row["reserved_usd"]))
            await asyncio.sleep(0)

    async def work() -> int:
        made = 0
        wrapped = metered(services, provider, team.id)
        while True:
            try:
                await wrapped.complete(PROMPT, model=MODEL, max_tokens=2000)
            except BudgetExhausted:
                return made
            made += 1

    sampler = asyncio.create_task(sample())
    made = await asyncio.gather(*(work() for _ in range(12)))
    stop.set()
    await sampler
    row = await team_row(services, team.id)
    assert len(samples) > 10
    assert all(spent <= budget and spent + reserved <= budget for spent, reserved in samples)
    assert row["spent_usd"] <= budget and row["reserved_usd"] == 0
    assert sum(made) == provider.served == row["billed"] >= 5
    assert row["spent_usd"] == provider.served * compute_cost(MODEL, 40, 1500)
