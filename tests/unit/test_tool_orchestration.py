"""The task orchestrator's tool-use loop: one activity per worker step, one per tool call (approval
first when its server asks), driven by the SDK's replay wrapper with a scripted context."""

from __future__ import annotations

from typing import Any

from functions.orchestrators import task_orchestrator
from shared.domain.failures import ClassifiedFailure, FailureType
from tests.unit.fake_durable import FakeContext, run
from tests.unit.test_orchestrators import task_activities

TASK = {"task_id": "t1", "escalation_timeout_hours": 24, "tool_approval_timeout_hours": 2, "story": 2}


def steps(*answers: dict[str, Any]):
    queue = list(answers)

    def execute_step(payload):
        return queue.pop(0)

    return execute_step


def tool_activities(*, prepare=None, decide=None, run_call=None, **overrides):
    calls: dict[str, list[Any]] = {"run": []}

    def run_tool_call(payload):
        calls["run"].append(payload["call_id"])
        return run_call(payload) if run_call else {"status": "succeeded", "call_id": payload["call_id"]}

    return task_activities(
        prepare_tool_call=prepare or (lambda p: {"status": "requested", "escalation_id": None}),
        decide_tool_call=decide or (lambda p: {"status": "approved"}),
        run_tool_call=run_tool_call, **overrides), calls


TOOL_STEP = {"status": "in_progress", "done": False, "output": "", "tool_calls": ["c1", "c2"]}
NEXT_STEP = {"status": "in_progress", "done": False, "output": "", "tool_calls": []}
FINAL = {"status": "review", "done": True, "output": "cites the tools", "tool_calls": []}  # submitted


def test_each_worker_step_is_an_activity_and_each_requested_call_runs_before_the_next_step():
    activities, calls = tool_activities(execute_step=steps(TOOL_STEP, NEXT_STEP, FINAL))
    ctx = FakeContext(TASK, activities)
    assert run(task_orchestrator, ctx)["status"] == "completed"
    names = ctx.activity_names()
    assert names == ["begin_task", "execute_step", "prepare_tool_call", "run_tool_call",
                     "prepare_tool_call", "run_tool_call", "execute_step", "execute_step", "review_task"]
    assert calls["run"] == ["c1", "c2"]
    assert all(p["instance_id"] == "inst-1" for n, p in ctx.calls if n == "prepare_tool_call")


def test_a_call_needing_approval_waits_for_the_decision_then_runs():
    activities, calls = tool_activities(
        execute_step=steps({**TOOL_STEP, "tool_calls": ["c1"]}, FINAL),
        prepare=lambda p: {"status": "awaiting_approval", "escalation_id": "esc-tool"})
    ctx = FakeContext(TASK, activities, events={"escalation_resolved": [
        {"escalation_id": "esc-other", "action": "retry"}, {"escalation_id": "esc-tool", "action": "approve"}]})
    assert run(task_orchestrator, ctx)["status"] == "completed"
    decide = next(p for n, p in ctx.calls if n == "decide_tool_call")
    assert decide == {"task_id": "t1", "call_id": "c1", "timed_out": False, "timeout_hours": 2.0}
    assert calls["run"] == ["c1"]  # the run activity reads the decision from the row


def test_an_approval_that_times_out_is_decided_as_a_timeout():
    activities, calls = tool_activities(
        execute_step=steps({**TOOL_STEP, "tool_calls": ["c1"]}, FINAL),
        prepare=lambda p: {"status": "awaiting_approval", "escalation_id": "esc-tool"},
        decide=lambda p: {"status": "denied"})
    ctx = FakeContext(TASK, activities)  # no event: the timer fires
    assert run(task_orchestrator, ctx)["status"] == "completed"
    decide = next(p for n, p in ctx.calls if n == "decide_tool_call")
    assert decide["timed_out"] is True
    assert ctx.timers[0] == 2 * 3600  # the tool approval timeout, not the escalation timeout
    assert calls["run"] == ["c1"]  # the run activity finds the call denied and does not execute it


def test_an_unreachable_tool_server_is_retried_with_backoff_on_the_same_call():
    attempts = {"n": 0}

    def run_call(payload):
        attempts["n"] += 1
        if attempts["n"] < 3:
            error = ClassifiedFailure(FailureType.TOOL_UNAVAILABLE, "connect timeout")
            raise Exception(f"Activity function 'run_tool_call' failed: ClassifiedFailure: {error}")
        return {"status": "succeeded"}

    activities, calls = tool_activities(execute_step=steps({**TOOL_STEP, "tool_calls": ["c1"]}, FINAL),
                                        run_call=run_call)
    ctx = FakeContext(TASK, activities)
    assert run(task_orchestrator, ctx)["status"] == "completed"
    assert calls["run"] == ["c1", "c1", "c1"] and len(ctx.timers) == 2


def test_a_tool_server_that_stays_unreachable_escalates_the_task():
    def run_call(payload):
        error = ClassifiedFailure(FailureType.TOOL_UNAVAILABLE, "refused")
        raise Exception(f"Activity function 'run_tool_call' failed: ClassifiedFailure: {error}")

    activities, calls = tool_activities(execute_step=steps({**TOOL_STEP, "tool_calls": ["c1"]}), run_call=run_call)
    ctx = FakeContext(TASK, activities)
    result = run(task_orchestrator, ctx)
    assert result["status"] == "failed" and result["reason"] == "escalation timed out"
    assert len(calls["run"]) == 4
    assert next(p for n, p in ctx.calls if n == "escalate_task")["failure_type"] == "tool_unavailable"


def test_a_budget_with_nothing_left_for_a_tool_call_returns_to_the_team():
    def run_call(payload):
        error = ClassifiedFailure(FailureType.BUDGET_EXCEEDED, "nothing left")
        raise Exception(f"Activity function 'run_tool_call' failed: ClassifiedFailure: {error}")

    activities, _ = tool_activities(execute_step=steps({**TOOL_STEP, "tool_calls": ["c1"]}), run_call=run_call)
    assert run(task_orchestrator, FakeContext(TASK, activities)) == {"status": "budget_exceeded", "task_id": "t1"}
