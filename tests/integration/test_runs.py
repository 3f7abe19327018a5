"""The run steps the Durable activities call, on a real database with the offline provider.

Activities are delivered at least once, so each step is run twice here: the second run must change
nothing (no second transition, checkpoint, cost row or event)."""

from __future__ import annotations

from decimal import Decimal

import pytest

from shared.agents.offline import OfflineProvider
from shared.domain.failures import ClassifiedFailure, FailureType
from shared.domain.models import Actor
from shared.domain.states import TaskStatus
from shared.services.runs import TeamRun


async def execute(team_run: TeamRun, task_id) -> dict:
    """What the task orchestrator does: worker steps until one is final (no tools in these tests)."""
    for _ in range(10):
        step = await team_run.execute_step(task_id)
        assert not step["tool_calls"]
        if step["done"]:
            return step
    raise AssertionError("the steps never finished")


@pytest.fixture
def team_run(services) -> TeamRun:
    return TeamRun(services, OfflineProvider(latency_ms=0), manager_model="offline-manager",
                   worker_model="offline-worker")


async def counts(services, team_id) -> dict[str, int]:
    async with services.db.connection() as conn:
        row = await (await conn.execute(
            "SELECT (SELECT count(*) FROM team_events WHERE team_id = %(t)s) AS events,"
            " (SELECT count(*) FROM audit_events WHERE team_id = %(t)s) AS audit,"
            " (SELECT count(*) FROM cost_tracking WHERE team_id = %(t)s) AS costs,"
            " (SELECT count(*) FROM checkpoints c JOIN tasks k ON k.id = c.task_id WHERE k.team_id = %(t)s)"
            " AS checkpoints", {"t": team_id})).fetchone()
    return dict(row)


async def started_team(make_team, services, principal, **kwargs):
    team = await make_team("Build a web scraper for product prices", **kwargs)
    await services.teams.start(team.id, principal.actor)
    return team


async def test_every_step_twice_changes_nothing_the_second_time(make_team, services, principal, team_run):
    team = await started_team(make_team, services, principal)
    plan = await team_run.plan(team.id)
    before = await counts(services, team.id)
    assert await team_run.plan(team.id) == plan
    assert await counts(services, team.id) == before
    assert await team_run.activate(team.id) == await team_run.activate(team.id) == "active"

    task_id = plan["tasks"][0]["id"]
    for step in ("assign", "start"):
        first = await getattr(team_run, step)(task_id)
        snapshot = await counts(services, team.id)
        assert await getattr(team_run, step)(task_id) == first
        assert await counts(services, team.id) == snapshot
    executed = await execute(team_run, task_id)
    snapshot = await counts(services, team.id)
    assert await team_run.execute_step(task_id) == executed  # a final step delivered again: nothing new
    assert await counts(services, team.id) == snapshot
    assert snapshot["checkpoints"] >= 2
    assert await team_run.submit(task_id, executed["output"]) == "review"
    assert await team_run.submit(task_id, executed["output"]) == "review"
    verdict = await team_run.review(task_id)
    snapshot = await counts(services, team.id)
    again = await team_run.review(task_id)
    assert again["verdict"] == verdict["verdict"] and await counts(services, team.id) == snapshot


async def test_execution_resumes_after_the_latest_checkpoint(make_team, services, principal, team_run):
    team = await started_team(make_team, services, principal)
    task_id = (await team_run.plan(team.id))["tasks"][0]["id"]
    await team_run.activate(team.id)
    await team_run.assign(task_id)
    await team_run.start(task_id)
    await services.checkpoints.create(task_id, 1, {"title": "Earlier", "content": "done before the crash",
                                                   "is_final": False}, Actor.system(), state={"round": 0})
    result = await execute(team_run, task_id)
    checkpoints = await services.checkpoints.list(task_id)
    assert checkpoints[0].step_output["content"] == "done before the crash"
    assert [c.step_number for c in checkpoints] == list(range(1, len(checkpoints) + 1))
    assert "done before the crash" in result["output"]


async def test_a_step_whose_call_does_not_fit_the_budget_stops_as_budget_exceeded(make_team, services, principal,
                                                                                 team_run):
    team = await started_team(make_team, services, principal, budget_usd=Decimal("1"))
    task_id = (await team_run.plan(team.id))["tasks"][0]["id"]
    await team_run.activate(team.id)
    await team_run.assign(task_id)
    await team_run.start(task_id)
    spent = (await services.costs.budget(team.id)).spent_usd
    assert await services.teams.set_budget(team.id, spent, Actor.system())  # nothing left for another call
    before = await counts(services, team.id)
    with pytest.raises(ClassifiedFailure) as failure:
        await execute(team_run, task_id)
    assert failure.value.failure_type is FailureType.BUDGET_EXCEEDED
    assert await counts(services, team.id) == before  # no call made: no cost row, no event, no checkpoint
    assert (await services.costs.budget(team.id)).spent_usd == spent
    paused = await team_run.pause_for_budget(team.id, "inst")
    assert paused["status"] == "paused" and paused["escalation_id"]
    assert (await team_run.pause_for_budget(team.id, "inst"))["escalation_id"] == paused["escalation_id"]
    assert await team_run.apply_budget_decision(team.id, "retry", "$5") == "active"
    assert (await services.costs.budget(team.id)).budget_usd == Decimal("5")


async def test_escalation_decisions_move_the_task(make_team, services, principal, team_run):
    team = await started_team(make_team, services, principal)
    tasks = (await team_run.plan(team.id))["tasks"]
    await team_run.activate(team.id)
    for task, (action, expected) in zip(tasks, [("retry", "in_progress"), ("skip", "completed"),
                                                ("provide_input", "completed"), ("fail", "failed")], strict=False):
        await team_run.assign(task["id"])
        await team_run.start(task["id"])
        assert await team_run.escalate(task["id"], "stuck", "network_timeout", "inst") != "completed"
        assert await team_run.apply_escalation_decision(task["id"], action, "note", "human answer") == expected
        assert await team_run.apply_escalation_decision(task["id"], action, "note", None) == expected


async def test_summary_completes_the_team_once(make_team, services, principal, team_run):
    team = await started_team(make_team, services, principal)
    tasks = (await team_run.plan(team.id))["tasks"]
    await team_run.activate(team.id)
    for task in tasks:
        await team_run.assign(task["id"])
        await team_run.start(task["id"])
        for _ in range(4):
            output = (await execute(team_run, task["id"]))["output"]
            await team_run.submit(task["id"], output)
            if (await team_run.review(task["id"]))["verdict"] == "approve":
                break
            await team_run.start(task["id"])
    assert all(t.status == TaskStatus.COMPLETED for t in await services.tasks.list_for_team(team.id))
    assert await team_run.summarize(team.id) == "completed"
    assert await team_run.summarize(team.id) == "completed"
    done = await services.teams.get(principal.company_id, team.id)
    assert done.result and "Highlights" in done.result


async def test_failed_task_reopens_for_retry_and_the_team_can_fail(make_team, services, principal, team_run):
    team = await started_team(make_team, services, principal)
    task_id = (await team_run.plan(team.id))["tasks"][0]["id"]
    await team_run.activate(team.id)
    await team_run.assign(task_id)
    await team_run.start(task_id)
    assert await team_run.fail_task(task_id, "auth") == "failed"
    assert await team_run.fail_task(task_id, "auth") == "failed"
    assert await team_run.reopen(task_id) == "in_progress"
    assert await team_run.fail(team.id, "gave up") == "failed"
    assert await team_run.fail(team.id, "gave up") == "failed"
    with pytest.raises(ClassifiedFailure):
        await execute(team_run, task_id)


async def test_a_cancelled_team_stops_review_and_submission(make_team, services, principal, team_run):
    team = await started_team(make_team, services, principal)
    task_id = (await team_run.plan(team.id))["tasks"][0]["id"]
    await team_run.activate(team.id)
    await team_run.assign(task_id)
    await team_run.start(task_id)
    output = (await execute(team_run, task_id))["output"]
    await services.teams.cancel(team.id, principal.actor)
    with pytest.raises(ClassifiedFailure) as stopped:
        await team_run.submit(task_id, output)
    assert stopped.value.failure_type is FailureType.TEAM_STOPPED
