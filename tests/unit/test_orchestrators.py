"""Orchestrators driven by the SDK's orchestrator_generator_wrapper with a scripted context."""

from __future__ import annotations

from typing import Any

from functions.orchestrators import task_orchestrator, team_orchestrator
from shared.domain.failures import ClassifiedFailure, FailureType
from tests.unit.fake_durable import PENDING, FakeContext, run

TASK = {"task_id": "t1", "story": 2}
#: The input of a task orchestration started before `begin_task` (its history replays the old activities).
TASK_STORY_1 = {"task_id": "t1"}
#: What the review's commit read of the team (carried to the team orchestration in the task's result).
TEAM_STATE = {"status": "active", "budget_exceeded": False, "spent_usd": "0.01", "budget_usd": None}


def failing(failure_type: FailureType, times: int, then: Any):
    """An activity that fails `times` times the way the host reports it, then answers `then`."""
    state = {"n": 0}

    def activity(payload):
        state["n"] += 1
        if state["n"] <= times:
            error = ClassifiedFailure(failure_type, "boom")
            raise Exception(f"Activity function 'x' failed: ClassifiedFailure: {error}")
        return then(payload) if callable(then) else then

    return activity


def task_activities(**overrides):
    activities = {
        "begin_task": lambda p: "in_progress",
        "assign_task": lambda p: {"status": "assigned"},
        "start_task": lambda p: "in_progress",
        "execute_step": lambda p: {"status": "review", "done": True, "output": "the work", "tool_calls": []},
        "submit_task": lambda p: "review",
        "review_task": lambda p: {"verdict": "approve", "feedback": "", "team": TEAM_STATE},
        "escalate_task": lambda p: "esc-1",
        "apply_escalation_decision": lambda p: {"retry": "in_progress", "skip": "completed",
                                                "provide_input": "completed", "fail": "failed"}[p["action"]],
        "fail_task": lambda p: "failed",
    }
    activities.update(overrides)
    return activities


def test_task_happy_path_begins_executes_reviews_and_completes_with_the_team_state_it_read():
    ctx = FakeContext(TASK, task_activities())
    assert run(task_orchestrator, ctx) == {"status": "completed", "task_id": "t1", "team": TEAM_STATE}
    # begin = assign + start; the final step submitted the task for review
    assert ctx.activity_names() == ["begin_task", "execute_step", "review_task"]


def test_task_revision_round_starts_in_its_first_step_then_completes():
    reviews = iter([{"verdict": "revise", "feedback": "add tests"}, {"verdict": "approve", "feedback": ""}])
    ctx = FakeContext(TASK, task_activities(review_task=lambda p: next(reviews)))
    assert run(task_orchestrator, ctx) == {"status": "completed", "task_id": "t1"}
    assert ctx.activity_names() == ["begin_task", "execute_step", "review_task", "execute_step", "review_task"]


def test_a_task_history_from_before_begin_task_replays_assign_start_submit_and_start_again():
    """An instance started by the previous story (no `story` in its input, steps that did not submit)
    schedules the activities its history recorded, in the same order."""
    reviews = iter([{"verdict": "revise", "feedback": "add tests"}, {"verdict": "approve", "feedback": ""}])
    old_step = {"status": "in_progress", "done": True, "output": "the work", "tool_calls": []}
    ctx = FakeContext(TASK_STORY_1, task_activities(review_task=lambda p: next(reviews),
                                                    execute_step=lambda p: old_step))
    assert run(task_orchestrator, ctx) == {"status": "completed", "task_id": "t1"}
    assert ctx.activity_names() == ["assign_task", "start_task", "execute_step", "submit_task", "review_task",
                                    "start_task", "execute_step", "submit_task", "review_task"]
    assert ctx.calls[3][1]["output"] == "the work"


def test_a_final_step_that_did_not_submit_is_submitted_by_the_orchestrator():
    old_step = {"status": "in_progress", "done": True, "output": "the work", "tool_calls": []}
    ctx = FakeContext(TASK, task_activities(execute_step=lambda p: old_step))
    assert run(task_orchestrator, ctx)["status"] == "completed"
    assert ctx.activity_names() == ["begin_task", "execute_step", "submit_task", "review_task"]


def test_task_retries_with_growing_backoff_then_succeeds():
    execute = failing(FailureType.NETWORK_TIMEOUT, 2, {"status": "in_progress", "done": True, "output": "ok"})
    ctx = FakeContext(TASK, task_activities(execute_step=execute))
    assert run(task_orchestrator, ctx)["status"] == "completed"
    assert ctx.activity_names().count("execute_step") == 3
    assert len(ctx.timers) == 2 and ctx.timers[0] < ctx.timers[1]


def test_task_retries_exhausted_escalates_and_times_out_to_failed():
    execute = failing(FailureType.NETWORK_TIMEOUT, 99, None)
    ctx = FakeContext(TASK, task_activities(execute_step=execute))
    result = run(task_orchestrator, ctx)
    assert result["status"] == "failed" and result["reason"] == "escalation timed out"
    names = ctx.activity_names()
    assert names.count("execute_step") == 4
    assert names[-2:] == ["escalate_task", "fail_task"]
    assert ctx.calls[-2][1]["failure_type"] == "network_timeout"


def test_auth_failure_fails_the_task_at_once():
    ctx = FakeContext(TASK, task_activities(execute_step=failing(FailureType.AUTH_FAILED, 99, None)))
    assert run(task_orchestrator, ctx)["status"] == "failed"
    assert ctx.activity_names().count("execute_step") == 1 and "escalate_task" not in ctx.activity_names()


def _escalated(action: str, **extra):
    execute = failing(FailureType.NETWORK_TIMEOUT, 4, {"status": "in_progress", "done": True, "output": "fixed"})
    events = {"escalation_resolved": [{"action": action, "note": "try harder", **extra}]}
    ctx = FakeContext(TASK, task_activities(execute_step=execute), events=events)
    return run(task_orchestrator, ctx), ctx


def test_escalation_resolved_with_retry_runs_the_task_again():
    result, ctx = _escalated("retry")
    assert result["status"] == "completed"
    assert ctx.activity_names().count("execute_step") == 5
    decision = next(p for n, p in ctx.calls if n == "apply_escalation_decision")
    assert decision["action"] == "retry" and decision["note"] == "try harder"


def test_escalation_resolved_with_skip_completes_without_more_work():
    result, ctx = _escalated("skip")
    assert result["status"] == "completed"
    assert ctx.activity_names().count("execute_step") == 4


def test_escalation_resolved_with_fail_fails_the_task():
    result, _ = _escalated("fail")
    assert result["status"] == "failed"


def test_escalation_events_raised_as_json_text_are_understood():
    result, _ = _escalated("provide_input", input="the answer")
    ctx2 = FakeContext(TASK, task_activities(execute_step=failing(FailureType.NETWORK_TIMEOUT, 4, None)),
                       events={"escalation_resolved": ['{"action": "skip"}']})
    assert result["status"] == "completed"
    assert run(task_orchestrator, ctx2)["status"] == "completed"


def test_revisions_exhausted_escalate():
    ctx = FakeContext(TASK, task_activities(
        review_task=lambda p: {"verdict": "escalate", "feedback": "no", "reason": "still wrong"}),
        events={"escalation_resolved": [{"action": "skip"}]})
    assert run(task_orchestrator, ctx)["status"] == "completed"
    assert next(p for n, p in ctx.calls if n == "escalate_task")["reason"] == "still wrong"


def test_budget_exceeded_inside_a_task_returns_to_the_team():
    ctx = FakeContext(TASK, task_activities(execute_step=failing(FailureType.BUDGET_EXCEEDED, 99, None)))
    assert run(task_orchestrator, ctx) == {"status": "budget_exceeded", "task_id": "t1"}


PLAN = {"tasks": [
    {"id": "a", "title": "A", "status": "pending", "dependencies": []},
    {"id": "b", "title": "B", "status": "pending", "dependencies": []},
    {"id": "c", "title": "C", "status": "pending", "dependencies": ["a", "b"]},
], "awaiting_approval": False, "team_status": "active"}
#: A plan recorded before planning activated the team.
PLAN_STORY_1 = {key: value for key, value in PLAN.items() if key != "team_status"}


def team_activities(**overrides):
    activities = {
        "plan_team": lambda p: PLAN,
        "load_plan": lambda p: {"tasks": PLAN["tasks"], "team_status": "active"},
        "activate_team": lambda p: "active",
        "team_status": lambda p: {"status": "active", "budget_exceeded": False},
        "pause_for_budget": lambda p: {"status": "paused", "escalation_id": "esc-budget"},
        "apply_budget_decision": lambda p: "active",
        "summarize_team": lambda p: "completed",
        "fail_team": lambda p: "failed",
        "reopen_task": lambda p: "in_progress",
    }
    activities.update(overrides)
    return activities


def completed_tasks(name, payload):
    return {"status": "completed", "task_id": payload["task_id"]}


TEAM = {"team_id": "team-1", "settings": {"max_parallel": 2, "escalation_timeout_hours": 1}}
#: A human's answer to the budget escalation that `pause_for_budget` opened.
BUDGET_RAISED = {"escalation_id": "esc-budget", "action": "retry", "input": "5"}


def test_team_runs_tasks_in_dependency_order_within_the_parallel_limit_and_completes():
    ctx = FakeContext(TEAM, team_activities(), sub_orchestrators=completed_tasks)
    assert run(team_orchestrator, ctx) == {"status": "completed"}
    assert [c["task_id"] for c in ctx.sub_calls] == ["a", "b", "c"]
    assert all(c["story"] == 2 for c in ctx.sub_calls)
    assert ctx.activity_names()[0] == "plan_team" and "activate_team" not in ctx.activity_names()
    assert ctx.activity_names()[-1] == "summarize_team"


def test_tasks_that_carry_the_team_state_spare_the_team_status_activity():
    def outcome(name, payload):
        return {"status": "completed", "task_id": payload["task_id"], "team": TEAM_STATE}

    ctx = FakeContext(TEAM, team_activities(), sub_orchestrators=outcome)
    assert run(team_orchestrator, ctx) == {"status": "completed"}
    assert ctx.activity_names() == ["plan_team", "summarize_team"]


def test_a_team_state_carried_by_a_task_that_shows_the_budget_reached_pauses_the_team():
    def outcome(name, payload):
        over = payload["task_id"] == "a"
        return {"status": "completed", "task_id": payload["task_id"], "team": {**TEAM_STATE, "budget_exceeded": over}}

    ctx = FakeContext(TEAM, team_activities(), sub_orchestrators=outcome,
                      events={"escalation_resolved": [BUDGET_RAISED]})
    assert run(team_orchestrator, ctx) == {"status": "completed"}
    names = ctx.activity_names()
    assert names.index("pause_for_budget") < names.index("apply_budget_decision") < names.index("summarize_team")


def test_a_team_history_from_before_planning_activated_replays_activate_team():
    ctx = FakeContext(TEAM, team_activities(plan_team=lambda p: PLAN_STORY_1), sub_orchestrators=completed_tasks)
    assert run(team_orchestrator, ctx) == {"status": "completed"}
    assert ctx.activity_names()[:2] == ["plan_team", "activate_team"]


def test_team_waits_for_plan_approval_then_runs_the_approved_plan():
    awaiting = {**PLAN, "awaiting_approval": True, "team_status": "planning"}
    ctx = FakeContext(TEAM, team_activities(plan_team=lambda p: awaiting), sub_orchestrators=completed_tasks,
                      events={"plan_approved": [{"edited": True}]})
    assert run(team_orchestrator, ctx) == {"status": "completed"}
    assert ctx.activity_names()[:2] == ["plan_team", "load_plan"] and "activate_team" not in ctx.activity_names()


def test_team_budget_exceeded_pauses_with_an_escalation_and_resumes_when_resolved():
    statuses = iter([{"status": "active", "budget_exceeded": True}])

    def status(payload):
        return next(statuses, {"status": "active", "budget_exceeded": False})

    ctx = FakeContext(TEAM, team_activities(team_status=status), sub_orchestrators=completed_tasks,
                      events={"escalation_resolved": [{**BUDGET_RAISED, "input": "10"}]})
    assert run(team_orchestrator, ctx) == {"status": "completed"}
    names = ctx.activity_names()
    assert names.index("pause_for_budget") < names.index("apply_budget_decision") < names.index("summarize_team")
    assert next(p for n, p in ctx.calls if n == "apply_budget_decision")["input"] == "10"


def test_a_task_stopped_by_the_budget_pauses_the_team_and_runs_again_after_the_decision():
    attempts: dict[str, int] = {}

    def outcome(name, payload):
        attempts[payload["task_id"]] = attempts.get(payload["task_id"], 0) + 1
        over = payload["task_id"] == "a" and attempts["a"] == 1
        return {"status": "budget_exceeded" if over else "completed", "task_id": payload["task_id"]}

    ctx = FakeContext(TEAM, team_activities(), sub_orchestrators=outcome,
                      events={"escalation_resolved": [BUDGET_RAISED]})
    assert run(team_orchestrator, ctx) == {"status": "completed"}
    assert attempts == {"a": 2, "b": 1, "c": 1}
    assert [c["instance_id"].rsplit(":", 2)[-2:] for c in ctx.sub_calls if c["task_id"] == "a"] == [["a", "1"],
                                                                                                   ["a", "2"]]
    names = ctx.activity_names()
    assert names.index("pause_for_budget") < names.index("apply_budget_decision")


def test_planning_that_does_not_fit_the_budget_escalates_and_plans_again_after_the_decision():
    ctx = FakeContext(TEAM, team_activities(plan_team=failing(FailureType.BUDGET_EXCEEDED, 1, PLAN),
                                            pause_for_budget=lambda p: {"status": "planning",
                                                                        "escalation_id": "esc-budget"},
                                            apply_budget_decision=lambda p: "planning"),
                      sub_orchestrators=completed_tasks,
                      events={"escalation_resolved": [BUDGET_RAISED]})
    assert run(team_orchestrator, ctx) == {"status": "completed"}
    assert ctx.activity_names()[:4] == ["plan_team", "pause_for_budget", "apply_budget_decision", "plan_team"]


def test_a_resolution_of_another_escalation_is_not_taken_for_this_one():
    """Signals are delivered at least once: a repeated or stale resolution names its escalation."""
    execute = failing(FailureType.NETWORK_TIMEOUT, 4, {"status": "in_progress", "done": True, "output": "ok"})
    ctx = FakeContext(TASK, task_activities(execute_step=execute), events={"escalation_resolved": [
        {"escalation_id": "esc-old", "action": "fail"}, {"escalation_id": "esc-1", "action": "retry"}]})
    assert run(task_orchestrator, ctx)["status"] == "completed"
    decision = next(p for n, p in ctx.calls if n == "apply_escalation_decision")
    assert decision["action"] == "retry"


def test_the_providers_retry_after_reaches_the_durable_timer():
    state = {"n": 0}

    def execute(payload):
        state["n"] += 1
        if state["n"] == 1:
            error = ClassifiedFailure(FailureType.RATE_LIMITED, "429", retry_after=42)
            raise Exception(f"Activity function 'execute_task' failed: ClassifiedFailure: {error} \n {{}}")
        return {"status": "in_progress", "done": True, "output": "ok"}

    ctx = FakeContext(TASK, task_activities(execute_step=execute))
    assert run(task_orchestrator, ctx)["status"] == "completed"
    assert ctx.timers == [42.0]


def test_every_activity_of_both_orchestrators_retries_a_transient_database_error():
    def once_down(then):
        return failing(FailureType.DATABASE_UNAVAILABLE, 1, then)

    task = FakeContext(TASK, {name: once_down(answer) for name, answer in task_activities().items()})
    assert run(task_orchestrator, task)["status"] == "completed"
    assert len(task.timers) == 3  # begin, execute, review: each failed once, then worked

    team = FakeContext(TEAM, {name: once_down(answer) for name, answer in team_activities().items()},
                       sub_orchestrators=completed_tasks)
    assert run(team_orchestrator, team) == {"status": "completed"}
    assert set(team.activity_names()) >= {"plan_team", "team_status", "summarize_team"}
    assert len(team.timers) == len(set(team.activity_names()))

    escalated = FakeContext(TASK, {**{n: once_down(a) for n, a in task_activities().items()},
                                   "execute_step": failing(FailureType.CONTENT_REFUSED, 99, None)},
                            events={"escalation_resolved": [{"escalation_id": "esc-1", "action": "fail"}]})
    assert run(task_orchestrator, escalated)["status"] == "failed"
    assert {"escalate_task", "apply_escalation_decision"} <= set(escalated.activity_names())


def test_team_cancel_event_stops_the_run():
    # Sub-orchestrations never finish here: the cancel event is what wakes the team.
    ctx = FakeContext(TEAM, team_activities(), sub_orchestrators=lambda name, payload: PENDING,
                      events={"cancel": [{}]})
    assert run(team_orchestrator, ctx) == {"status": "cancelled"}
    assert "summarize_team" not in ctx.activity_names()


def test_team_with_a_failed_task_fails_when_nobody_retries_it():
    def outcome(name, payload):
        return {"status": "failed" if payload["task_id"] == "a" else "completed", "task_id": payload["task_id"]}

    ctx = FakeContext(TEAM, team_activities(), sub_orchestrators=outcome)
    result = run(team_orchestrator, ctx)
    assert result == {"status": "failed", "failed_tasks": ["a"]}
    assert "c" not in [c["task_id"] for c in ctx.sub_calls]
    assert ctx.activity_names()[-1] == "fail_team"


def test_team_retries_a_failed_task_when_asked():
    attempts: dict[str, int] = {}

    def outcome(name, payload):
        attempts[payload["task_id"]] = attempts.get(payload["task_id"], 0) + 1
        failed = payload["task_id"] == "a" and attempts["a"] == 1
        return {"status": "failed" if failed else "completed", "task_id": payload["task_id"]}

    ctx = FakeContext(TEAM, team_activities(), sub_orchestrators=outcome, events={"retry_task": [{"task_id": "a"}]})
    assert run(team_orchestrator, ctx) == {"status": "completed"}
    assert attempts == {"a": 2, "b": 1, "c": 1}
    assert ctx.sub_calls[-1]["instance_id"].endswith(":task:c:1")


def test_team_planning_failure_fails_the_team():
    ctx = FakeContext(TEAM, team_activities(plan_team=failing(FailureType.AUTH_FAILED, 9, None)))
    assert run(team_orchestrator, ctx)["status"] == "failed"
    assert ctx.activity_names() == ["plan_team", "fail_team"]


def test_work_of_a_cancelled_team_fails_the_task_without_retry_or_escalation():
    ctx = FakeContext(TASK, task_activities(execute_step=failing(FailureType.TEAM_STOPPED, 99, None)))
    assert run(task_orchestrator, ctx)["status"] == "failed"
    assert ctx.activity_names()[-2:] == ["execute_step", "fail_task"] and ctx.timers == []
