"""Tasks through the services: lifecycle, revisions, races, and the audit/outbox rows of each change."""

from __future__ import annotations

import asyncio

import pytest

from shared.domain.errors import Conflict, IllegalTransition, Invalid
from shared.domain.models import Actor, PlannedTaskIn
from shared.domain.states import TaskStatus

SYSTEM = Actor.system()


def plan(n: int = 3) -> list[PlannedTaskIn]:
    return [
        PlannedTaskIn(key=f"t{i}", title=f"Task {i}", description=f"Do part {i}",
                      acceptance_criteria=[f"part {i} works"], dependencies=[f"t{i - 1}"] if i else [])
        for i in range(n)
    ]


@pytest.fixture
async def team_with_tasks(make_team, services, principal):
    team = await make_team()
    tasks = await services.tasks.create_plan(team.id, plan(), SYSTEM)
    worker = next(m for m in team.members if m.role == "worker")
    return team, tasks, worker


async def test_plan_is_persisted_once_in_dependency_order(make_team, services):
    team = await make_team()
    first = await services.tasks.create_plan(team.id, plan(), SYSTEM)
    again = await services.tasks.create_plan(team.id, plan(), SYSTEM)

    assert [t.id for t in again] == [t.id for t in first]
    assert [t.title for t in first] == ["Task 0", "Task 1", "Task 2"]
    assert first[1].dependencies == [first[0].id]
    assert all(t.status == TaskStatus.PENDING for t in first)


async def test_plan_with_a_cycle_is_invalid(make_team, services):
    team = await make_team()
    cyclic = [
        PlannedTaskIn(key="a", title="A", acceptance_criteria=["x"], dependencies=["b"]),
        PlannedTaskIn(key="b", title="B", acceptance_criteria=["y"], dependencies=["a"]),
    ]
    with pytest.raises(Invalid):
        await services.tasks.create_plan(team.id, cyclic, SYSTEM)
    assert await services.tasks.list_for_team(team.id) == []


async def test_assign_start_review_approve_sets_completion_time(team_with_tasks, services):
    _, tasks, worker = team_with_tasks
    task = tasks[0]
    assigned = await services.tasks.assign(task.id, worker.id, SYSTEM)
    started = await services.tasks.start(task.id, SYSTEM)
    reviewed = await services.tasks.submit_for_review(task.id, "the output", SYSTEM)
    approved = await services.tasks.approve(task.id, SYSTEM)

    assert assigned.assigned_to == worker.id
    assert started.started_at is not None
    assert reviewed.output == "the output"
    assert approved.status == TaskStatus.COMPLETED
    assert approved.completion_time is not None
    assert approved.version == task.version + 4


async def test_revision_flow_counts_revisions_and_keeps_feedback(team_with_tasks, services):
    _, tasks, worker = team_with_tasks
    task = tasks[0]
    await services.tasks.assign(task.id, worker.id, SYSTEM)
    await services.tasks.start(task.id, SYSTEM)
    await services.tasks.submit_for_review(task.id, "draft", SYSTEM)

    revised = await services.tasks.request_revision(task.id, "cite your sources", SYSTEM)
    assert revised.status == TaskStatus.REVISION_REQUESTED
    assert revised.revision_count == 1
    assert revised.feedback == "cite your sources"

    resubmitted = await services.tasks.submit_for_review(task.id, "draft with sources", SYSTEM)
    approved = await services.tasks.approve(task.id, SYSTEM)
    assert resubmitted.status == TaskStatus.REVIEW
    assert approved.status == TaskStatus.COMPLETED and approved.revision_count == 1


async def test_every_transition_writes_one_audit_row_and_one_event(team_with_tasks, services, principal):
    team, tasks, worker = team_with_tasks
    task = tasks[0]
    await services.tasks.assign(task.id, worker.id, SYSTEM)
    await services.tasks.start(task.id, SYSTEM)
    await services.tasks.submit_for_review(task.id, "out", SYSTEM)
    await services.tasks.approve(task.id, SYSTEM)

    history = await services.tasks.history(task.id, company_id=principal.company_id)
    changes = [(e.payload["from"], e.payload["to"]) for e in history if e.event_type == "task.status_changed"]
    assert changes == [("pending", "assigned"), ("assigned", "in_progress"), ("in_progress", "review"),
                       ("review", "completed")]
    events = [e for e in await services.events.after(team.id) if e.task_id == task.id]
    assert [(e.type, e.data.get("to")) for e in events] == [
        ("task.created", None), ("task.status_changed", "assigned"), ("task.status_changed", "in_progress"),
        ("task.status_changed", "review"), ("task.status_changed", "completed"),
    ]


@pytest.mark.parametrize("illegal", ["start", "approve", "submit", "revise"])
async def test_illegal_task_transition_is_rejected_and_leaves_the_row(team_with_tasks, services, illegal):
    _, tasks, _ = team_with_tasks
    task = tasks[0]
    calls = {
        "start": lambda: services.tasks.start(task.id, SYSTEM),
        "approve": lambda: services.tasks.approve(task.id, SYSTEM),
        "submit": lambda: services.tasks.submit_for_review(task.id, "x", SYSTEM),
        "revise": lambda: services.tasks.request_revision(task.id, "x", SYSTEM),
    }
    with pytest.raises(IllegalTransition):
        await calls[illegal]()
    assert (await services.tasks.get(task.id)).model_dump() == task.model_dump()


async def test_completed_task_cannot_fail_or_escalate(team_with_tasks, services):
    _, tasks, worker = team_with_tasks
    task = tasks[0]
    for step in (lambda: services.tasks.assign(task.id, worker.id, SYSTEM),
                 lambda: services.tasks.start(task.id, SYSTEM),
                 lambda: services.tasks.submit_for_review(task.id, "o", SYSTEM),
                 lambda: services.tasks.approve(task.id, SYSTEM)):
        await step()
    with pytest.raises(IllegalTransition):
        await services.tasks.fail(task.id, "late", SYSTEM)
    with pytest.raises(IllegalTransition):
        await services.escalations.open(team_id=task.team_id, task_id=task.id, reason="late",
                                        failure_type="unknown", actor=SYSTEM)


async def test_two_concurrent_approvals_exactly_one_wins(team_with_tasks, services, principal):
    _, tasks, worker = team_with_tasks
    task = tasks[0]
    await services.tasks.assign(task.id, worker.id, SYSTEM)
    await services.tasks.start(task.id, SYSTEM)
    await services.tasks.submit_for_review(task.id, "out", SYSTEM)

    results = await asyncio.gather(
        services.tasks.approve(task.id, SYSTEM), services.tasks.approve(task.id, SYSTEM), return_exceptions=True
    )
    assert sorted(type(r).__name__ for r in results) == ["IllegalTransition", "TaskRecord"]
    history = await services.tasks.history(task.id, company_id=principal.company_id)
    assert [e.payload["to"] for e in history if e.event_type == "task.status_changed"].count("completed") == 1


async def test_stale_version_conflicts(team_with_tasks, services):
    _, tasks, worker = team_with_tasks
    task = tasks[0]
    await services.tasks.assign(task.id, worker.id, SYSTEM)
    with pytest.raises(Conflict, match="stale version"):
        await services.tasks.start(task.id, SYSTEM, expected_version=task.version)


async def test_event_seq_is_gap_free_under_concurrent_writers(make_team, services):
    team = await make_team()
    tasks = await services.tasks.create_plan(team.id, plan(6), SYSTEM)
    worker = next(m for m in team.members if m.role == "worker")

    async def run(task_id):
        await services.tasks.assign(task_id, worker.id, SYSTEM)
        await services.tasks.start(task_id, SYSTEM)
        await services.checkpoints.create(task_id, 1, {"text": "step"}, SYSTEM)
        await services.tasks.submit_for_review(task_id, "out", SYSTEM)

    await asyncio.gather(*(run(t.id) for t in tasks))
    seqs = [e.seq for e in await services.events.after(team.id)]
    assert seqs == list(range(1, len(seqs) + 1))
    assert len(seqs) == 1 + 6 + 6 * 4


async def test_failed_or_escalated_task_can_be_reopened_for_retry(team_with_tasks, services, principal):
    _, tasks, worker = team_with_tasks
    task = tasks[0]
    await services.tasks.assign(task.id, worker.id, SYSTEM)
    await services.tasks.start(task.id, SYSTEM)
    await services.tasks.fail(task.id, "provider down", SYSTEM)
    reopened = await services.tasks.reopen_for_retry(task.id, principal.actor)
    assert reopened.status == TaskStatus.IN_PROGRESS
    with pytest.raises(Conflict):
        await services.tasks.reopen_for_retry(task.id, principal.actor)


async def test_company_task_listing_filters_active_and_pages(team_with_tasks, services, principal):
    _, tasks, worker = team_with_tasks
    await services.tasks.assign(tasks[0].id, worker.id, SYSTEM)
    await services.tasks.start(tasks[0].id, SYSTEM)
    await services.tasks.fail(tasks[0].id, "x", SYSTEM)

    active = await services.tasks.list_for_company(principal.company_id, status="active")
    assert {t.id for t in active.items} == {tasks[1].id, tasks[2].id}
    page = await services.tasks.list_for_company(principal.company_id, limit=2)
    rest = await services.tasks.list_for_company(principal.company_id, limit=2, cursor=page.next_cursor)
    assert len(page.items) == 2 and len(rest.items) == 1 and rest.next_cursor is None
