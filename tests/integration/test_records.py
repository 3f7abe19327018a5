"""Checkpoints, costs, escalations, messages, audit and auth on a real PostgreSQL."""

from __future__ import annotations

import asyncio
from decimal import Decimal

import pytest

from shared.domain.errors import Conflict, NotFound
from shared.domain.models import Actor, EscalationResolve, PlannedTaskIn, RegisterRequest
from shared.domain.states import TaskStatus
from shared.services.auth import InvalidCredentials

SYSTEM = Actor.system()


@pytest.fixture
async def task(make_team, services):
    team = await make_team(budget_usd=Decimal("0.01"))
    [task] = await services.tasks.create_plan(
        team.id, [PlannedTaskIn(key="only", title="Only task", acceptance_criteria=["done"])], SYSTEM
    )
    return task


async def test_five_checkpoints_latest_is_step_4_and_all_are_listed_in_order(task, services):
    for step in range(5):
        await services.checkpoints.create(task.id, step, {"text": f"step {step}"}, SYSTEM)

    latest = await services.checkpoints.latest(task.id)
    listed = await services.checkpoints.list(task.id)
    assert latest is not None and latest.step_number == 4
    assert listed[2].step_output == {"text": "step 2"}
    assert [c.step_number for c in listed] == [0, 1, 2, 3, 4]


async def test_checkpoint_of_a_replayed_step_keeps_the_first(task, services):
    first = await services.checkpoints.create(task.id, 1, {"text": "first"}, SYSTEM)
    again = await services.checkpoints.create(task.id, 1, {"text": "second"}, SYSTEM)
    assert again.step_output == first.step_output == {"text": "first"}
    events = [e for e in await services.events.after(task.team_id) if e.type == "checkpoint.created"]
    assert len(events) == 1


async def test_escalation_opens_once_and_a_resolution_is_idempotent_but_cannot_change(task, services, principal):
    opened = await asyncio.gather(*(
        services.escalations.open(team_id=task.team_id, task_id=task.id, reason="stuck",
                                  failure_type="network_timeout", actor=SYSTEM, instance_id="inst-1")
        for _ in range(3)
    ))
    assert len({e.id for e in opened}) == 1
    assert (await services.tasks.get(task.id)).status == TaskStatus.ESCALATED
    assert [e.id for e in await services.escalations.list(principal.company_id)] == [opened[0].id]

    decision = EscalationResolve(action="retry", note="try again")
    resolved = await services.control.resolve_escalation(principal, opened[0].id, decision, None)
    again = await services.control.resolve_escalation(principal, opened[0].id, decision, None)
    assert resolved.status == again.status == "resolved" and resolved.action == again.action == "retry"
    with pytest.raises(Conflict):
        await services.control.resolve_escalation(principal, opened[0].id, EscalationResolve(action="skip"), None)

    # One signal for the waiting orchestration, written with the decision (not sent: no client here).
    [signal] = await services.signals.pending(task.team_id)
    assert (signal.instance_id, signal.name) == ("inst-1", "escalation_resolved")
    assert signal.payload["escalation_id"] == str(opened[0].id) and signal.payload["action"] == "retry"
    resolved_events = [e for e in await services.events.after(task.team_id) if e.type == "escalation.resolved"]
    assert len(resolved_events) == 1


async def test_escalation_of_another_company_is_not_found(task, services, make_company):
    opened = await services.escalations.open(team_id=task.team_id, task_id=task.id, reason="r",
                                             failure_type="unknown", actor=SYSTEM)
    other = await make_company("Other")
    with pytest.raises(NotFound):
        await services.control.resolve_escalation(other, opened.id, EscalationResolve(action="fail"), None)


async def test_messages_are_listed_oldest_first_and_emit_events(task, services):
    await services.messages.post(team_id=task.team_id, sender="Manager", content="plan ready")
    await services.messages.post(team_id=task.team_id, sender="Worker 1", content="on it", task_id=task.id)
    messages = await services.messages.list(task.team_id)
    assert [m.content for m in messages] == ["plan ready", "on it"]
    later = await services.messages.list(task.team_id, after=messages[0].created_at)
    assert [m.content for m in later] == ["on it"]


async def test_audit_query_pages_newest_first(task, services, principal):
    for i in range(5):
        await services.audit.append(company_id=principal.company_id, actor=SYSTEM, event_type="test.event",
                                    payload={"i": i}, team_id=task.team_id)
    page = await services.audit.query(principal.company_id, event_type="test.event", limit=3)
    rest = await services.audit.query(principal.company_id, event_type="test.event", limit=3,
                                      cursor=page.next_cursor)
    assert [e.payload["i"] for e in page.items + rest.items] == [4, 3, 2, 1, 0]


async def test_login_fails_the_same_way_for_unknown_email_and_wrong_password(services):
    user = await services.auth.register(RegisterRequest(company_name="Co", email="Ada@Example.com",
                                                        password="correct horse", full_name="Ada"))
    assert user.email == "ada@example.com" and user.role == "admin"
    assert (await services.auth.login("ADA@example.com", "correct horse")).id == user.id
    with pytest.raises(InvalidCredentials) as wrong:
        await services.auth.login("ada@example.com", "wrong horse")
    with pytest.raises(InvalidCredentials) as unknown:
        await services.auth.login("nobody@example.com", "correct horse")
    assert str(wrong.value) == str(unknown.value)


async def test_registering_an_email_twice_conflicts(services):
    request = RegisterRequest(company_name="Co", email="dup@example.com", password="password-one-1", full_name="D")
    await services.auth.register(request)
    with pytest.raises(Conflict):
        await services.auth.register(request)
