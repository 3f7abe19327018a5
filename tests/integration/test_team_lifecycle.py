"""Teams through the services on a real PostgreSQL: the original plan's integration tests and more."""

from __future__ import annotations

import asyncio
from decimal import Decimal

import pytest

from shared.domain.errors import IllegalTransition, NotFound
from shared.domain.models import Actor, TeamCreate
from shared.domain.states import TeamStatus

SYSTEM = Actor.system()


async def test_created_team_is_pending_and_keeps_its_goal(make_team, services, principal):
    team = await make_team("Build a web scraper for product prices", budget_usd=Decimal("5"))

    assert team.status == TeamStatus.PENDING
    assert team.goal == "Build a web scraper for product prices"
    assert team.budget_usd == Decimal("5")
    assert [m.role for m in team.members].count("manager") == 1
    assert len([m for m in team.members if m.role == "worker"]) == 3
    fetched = await services.teams.get(principal.company_id, team.id)
    assert fetched.id == team.id and fetched.tasks == []


async def test_lifecycle_pending_planning_active_completed_sets_completed_at(make_team, services, principal):
    team = await make_team()
    await services.teams.start(team.id, principal.actor)
    await services.teams.activate(team.id, SYSTEM)
    done = await services.teams.complete(team.id, SYSTEM, result="all done")

    assert done.status == "completed"
    fetched = await services.teams.get(principal.company_id, team.id)
    assert fetched.completed_at is not None
    history = await services.audit.query(principal.company_id, team_id=team.id, event_type="team.status_changed")
    assert [(e.payload["from"], e.payload["to"]) for e in reversed(history.items)] == [
        ("pending", "planning"), ("planning", "active"), ("active", "completed"),
    ]


async def test_pause_and_resume_round_trip(make_team, services, principal):
    team = await make_team()
    await services.teams.start(team.id, principal.actor)
    await services.teams.activate(team.id, SYSTEM)
    await services.teams.pause(team.id, principal.actor, company_id=principal.company_id)
    resumed = await services.teams.resume(team.id, principal.actor, company_id=principal.company_id)
    assert resumed.status == "active"


@pytest.mark.parametrize(
    ("steps", "illegal"),
    [
        ([], "activate"),
        ([], "complete"),
        ([], "pause"),
        (["start"], "resume"),
        (["start", "activate", "complete"], "cancel"),
        (["cancel"], "start"),
    ],
)
async def test_illegal_team_transition_is_rejected_and_changes_nothing(make_team, services, principal, steps, illegal):
    team = await make_team()
    calls = {
        "start": lambda: services.teams.start(team.id, principal.actor),
        "activate": lambda: services.teams.activate(team.id, SYSTEM),
        "complete": lambda: services.teams.complete(team.id, SYSTEM, result="x"),
        "pause": lambda: services.teams.pause(team.id, SYSTEM),
        "resume": lambda: services.teams.resume(team.id, SYSTEM),
        "cancel": lambda: services.teams.cancel(team.id, SYSTEM),
    }
    for step in steps:
        await calls[step]()
    before = await services.teams.get(principal.company_id, team.id)
    events_before = await services.events.after(team.id)

    with pytest.raises(IllegalTransition):
        await calls[illegal]()

    after = await services.teams.get(principal.company_id, team.id)
    assert after.model_dump() == before.model_dump()
    assert await services.events.after(team.id) == events_before


async def test_team_of_another_company_is_not_found(make_team, services, make_company):
    team = await make_team()
    other = await make_company("Other Inc")
    with pytest.raises(NotFound):
        await services.teams.get(other.company_id, team.id)
    with pytest.raises(NotFound):
        await services.teams.cancel(team.id, other.actor, company_id=other.company_id)


async def test_concurrent_starts_of_one_team_exactly_one_wins(make_team, services, principal):
    team = await make_team()
    results = await asyncio.gather(
        *(services.teams.start(team.id, principal.actor) for _ in range(6)), return_exceptions=True
    )
    assert sum(not isinstance(r, BaseException) for r in results) == 1
    assert all(isinstance(r, IllegalTransition) for r in results if isinstance(r, BaseException))
    changes = await services.audit.query(principal.company_id, team_id=team.id, event_type="team.status_changed")
    assert len(changes.items) == 1


async def test_list_is_newest_first_with_keyset_pages_and_includes(services, principal):
    for i in range(5):
        await services.teams.create(principal, TeamCreate(goal=f"goal {i}", workers=1))
    first = await services.teams.list_page(principal.company_id, limit=2, include_members=True)
    assert [t.goal for t in first.items] == ["goal 4", "goal 3"]
    assert first.items[0].members and first.items[0].tasks is None
    second = await services.teams.list_page(principal.company_id, limit=2, cursor=first.next_cursor)
    third = await services.teams.list_page(principal.company_id, limit=2, cursor=second.next_cursor)
    assert [t.goal for t in second.items + third.items] == ["goal 2", "goal 1", "goal 0"]
    assert third.next_cursor is None
    pending = await services.teams.list_page(principal.company_id, status=TeamStatus.ACTIVE)
    assert pending.items == []
