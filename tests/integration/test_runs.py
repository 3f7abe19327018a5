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


async def test_a_cancelled_team_stops_review_and_the_next_step(make_team, services, principal, team_run):
    team = await started_team(make_team, services, principal)
    task_ids = [t["id"] for t in (await team_run.plan(team.id))["tasks"]]
    for task_id in task_ids[:2]:
        assert await team_run.begin(task_id) == "in_progress"
    assert (await execute(team_run, task_ids[0]))["status"] == "review"
    await services.teams.cancel(team.id, principal.actor)
    for stopped_step in (team_run.review(task_ids[0]), team_run.execute_step(task_ids[1])):
        with pytest.raises(ClassifiedFailure) as stopped:
            await stopped_step
        assert stopped.value.failure_type is FailureType.TEAM_STOPPED


async def test_plan_activates_the_team_in_its_commit_and_a_rerun_returns_the_same_plan(make_team, services,
                                                                                       principal, team_run):
    team = await started_team(make_team, services, principal)
    plan = await team_run.plan(team.id)
    assert plan["team_status"] == "active" and not plan["awaiting_approval"]
    before = await counts(services, team.id)
    assert await team_run.plan(team.id) == plan  # delivered again after the commit: the team is active now
    assert await counts(services, team.id) == before


async def test_begin_assigns_and_starts_in_one_transaction_once(make_team, services, principal, team_run):
    team = await started_team(make_team, services, principal)
    task_id = (await team_run.plan(team.id))["tasks"][0]["id"]
    assert await team_run.begin(task_id) == "in_progress"
    snapshot = await counts(services, team.id)
    assert await team_run.begin(task_id) == "in_progress"
    assert await counts(services, team.id) == snapshot
    async with services.db.connection() as conn:
        moves = await (await conn.execute(
            "SELECT payload->>'from' AS source, payload->>'to' AS target, xmin::text AS tx FROM audit_events"
            " WHERE task_id = %s AND event_type = 'task.status_changed' ORDER BY id", (task_id,))).fetchall()
    assert [(m["source"], m["target"]) for m in moves] == [("pending", "assigned"), ("assigned", "in_progress")]
    assert len({m["tx"] for m in moves}) == 1
    assert (await services.tasks.get(task_id)).assigned_to is not None


async def test_each_step_commits_its_checkpoint_message_and_cost_in_one_transaction(make_team, services, principal,
                                                                                    team_run):
    """The step path of a whole task: every worker step's checkpoint, message and settled call share
    one transaction id, the final one's hand-over to review too, and so do the review's verdict,
    message and call. Nothing stays reserved."""
    team = await started_team(make_team, services, principal)
    task_id = (await team_run.plan(team.id))["tasks"][0]["id"]
    await team_run.begin(task_id)
    executed = await execute(team_run, task_id)
    assert executed["status"] == "review" and executed["done"]
    assert (await services.tasks.get(task_id)).output == executed["output"]
    reviewed = await team_run.review(task_id)
    async with services.db.connection() as conn:
        steps = await (await conn.execute(
            "SELECT c.step_number, c.xmin::text AS checkpoint_tx, m.xmin::text AS message_tx FROM checkpoints c"
            " JOIN messages m ON m.task_id = c.task_id AND m.kind = 'step'"
            " AND m.content LIKE '%%step ' || (c.step_output->>'step_in_round') || ':%%'"
            " WHERE c.task_id = %s ORDER BY c.step_number", (task_id,))).fetchall()
        calls = await (await conn.execute(
            "SELECT purpose, status, xmin::text AS tx FROM cost_tracking WHERE task_id = %s ORDER BY id",
            (task_id,))).fetchall()
        moves = await (await conn.execute(
            "SELECT payload->>'to' AS target, xmin::text AS tx FROM audit_events WHERE task_id = %s"
            " AND event_type = 'task.status_changed' ORDER BY id", (task_id,))).fetchall()
        review_message = await (await conn.execute(
            "SELECT xmin::text AS tx FROM messages WHERE task_id = %s AND kind = 'review'", (task_id,))).fetchone()
        budget = await (await conn.execute("SELECT reserved_usd FROM teams WHERE id = %s", (team.id,))).fetchone()
    execute_calls = [c for c in calls if c["purpose"] == "execute"]
    assert len(steps) == len(execute_calls) >= 2 and all(c["status"] == "settled" for c in calls)
    for step, call in zip(steps, execute_calls, strict=True):
        assert step["checkpoint_tx"] == step["message_tx"] == call["tx"]
    to_review = next(m for m in moves if m["target"] == "review")
    assert to_review["tx"] == steps[-1]["checkpoint_tx"]
    review_call = next(c for c in calls if c["purpose"] == "review")
    verdict = next(m for m in moves if m["target"] in ("completed", "revision_requested"))
    assert review_call["tx"] == verdict["tx"] == review_message["tx"]
    assert budget["reserved_usd"] == 0
    if reviewed["verdict"] == "approve":
        assert reviewed["team"]["status"] == "active"


async def test_a_revision_round_starts_with_its_first_step(make_team, services, principal, team_run):
    team = await started_team(make_team, services, principal)
    task_id = (await team_run.plan(team.id))["tasks"][0]["id"]
    await team_run.begin(task_id)
    await execute(team_run, task_id)
    task = await services.tasks.get(task_id)
    await services.tasks.request_revision(task_id, "add a test", Actor.system(), expected_version=task.version)
    step = await team_run.execute_step(task_id)
    revised = await services.tasks.get(task_id)
    assert revised.status == (TaskStatus.REVIEW if step["done"] else TaskStatus.IN_PROGRESS)
    assert revised.revision_count == 1
