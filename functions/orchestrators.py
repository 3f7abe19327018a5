"""Team and task orchestrators: the story of a run, told deterministically.

No I/O, no clock but `context.current_utc_datetime`, no randomness: everything with side effects is an
activity (functions/activities.py). Failures go through the pure `FailureHandler`; retries wait on
durable timers, so a crash or a restart mid-backoff loses nothing.
"""

from __future__ import annotations

import json
from collections.abc import Generator
from datetime import timedelta
from typing import Any

import azure.durable_functions as df

from shared.domain.failures import Escalate, FailureHandler, FailureType, Retry, parse_failure_type
from shared.orchestration_names import (
    EVENT_CANCEL,
    EVENT_ESCALATION_RESOLVED,
    EVENT_PAUSE,
    EVENT_PLAN_APPROVED,
    EVENT_RESUME,
    EVENT_RETRY,
    TASK_ORCHESTRATOR,
    TEAM_ORCHESTRATOR,
)

bp = df.Blueprint()
HANDLER = FailureHandler()
Story = Generator[Any, Any, Any]


class StepFailed(Exception):
    """An activity failed for good: the policy decided to escalate or to fail."""

    def __init__(self, failure_type: FailureType, reason: str, escalate: bool) -> None:
        super().__init__(reason)
        self.failure_type = failure_type
        self.reason = reason
        self.escalate = escalate


def _payload(value: Any) -> dict[str, Any]:
    """Event payloads raised through the Python client arrive as JSON text (protocols doc §6)."""
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except json.JSONDecodeError:
            return {"value": value}
    return value if isinstance(value, dict) else {"value": value}


def call(context: df.DurableOrchestrationContext, activity: str, payload: dict[str, Any]) -> Story:
    """Call an activity; retry per the failure policy on durable timers; raise StepFailed when done trying."""
    attempt = 1
    while True:
        try:
            return (yield context.call_activity(activity, payload))
        except Exception as exc:
            failure_type = parse_failure_type(str(exc))
            decision = HANDLER.decide(failure_type, attempt, seed=f"{context.instance_id}:{activity}")
            if isinstance(decision, Retry):
                context.set_custom_status({"retrying": activity, "attempt": attempt, "failure": failure_type.value})
                yield context.create_timer(context.current_utc_datetime + timedelta(seconds=decision.delay))
                attempt += 1
                continue
            reason = f"{activity}: {_reason(exc)}"
            raise StepFailed(failure_type, reason, isinstance(decision, Escalate)) from exc


def _reason(exc: Exception) -> str:
    text = str(exc).split("\n")[0]
    return text[:500]


def wait_for_any(context: df.DurableOrchestrationContext, hours: float, *events: str) -> Story:
    """Wait for the first of `events` or a timeout; return (event name or None, payload)."""
    waiters = {name: context.wait_for_external_event(name) for name in events}
    timer = context.create_timer(context.current_utc_datetime + timedelta(hours=hours))
    winner = yield context.task_any([*waiters.values(), timer])
    if winner is timer:
        return None, {}
    timer.cancel()
    name = next(n for n, w in waiters.items() if w is winner)
    return name, _payload(winner.result)


# --- task -------------------------------------------------------------------------------------------


def task_orchestrator(context: df.DurableOrchestrationContext) -> Story:
    """assign → start → execute → review → approve, or revise up to max_revisions → escalate."""
    data = _payload(context.get_input())
    task = {"task_id": data["task_id"]}
    escalation_hours = float(data.get("escalation_timeout_hours", 24))
    try:
        yield from call(context, "assign_task", task)
        yield from call(context, "start_task", task)
    except StepFailed as failure:
        return (yield from _after_failure(context, task, failure, escalation_hours))
    while True:
        try:
            result = yield from _work_and_review(context, task)
        except StepFailed as failure:
            if failure.failure_type is FailureType.BUDGET_EXCEEDED:
                return {"status": "budget_exceeded", "task_id": task["task_id"]}
            outcome = yield from _after_failure(context, task, failure, escalation_hours)
            if outcome["status"] != "retry":
                return outcome
            continue
        if result["verdict"] == "approve":
            return {"status": "completed", "task_id": task["task_id"]}
        if result["verdict"] == "stopped":
            return {"status": result.get("status", "failed"), "task_id": task["task_id"]}
        # revisions exhausted: a human decides
        outcome = yield from _escalate(context, task, result.get("reason", "review not passed"),
                                       FailureType.INVALID_OUTPUT.value, escalation_hours)
        if outcome["status"] != "retry":
            return outcome


def _work_and_review(context: df.DurableOrchestrationContext, task: dict[str, Any]) -> Story:
    """Execute and review until approved, a revision round is needed, or revisions run out."""
    while True:
        executed = yield from call(context, "execute_task", task)
        if executed["status"] not in ("in_progress", "review"):
            return {"verdict": "stopped", "status": executed["status"]}
        yield from call(context, "submit_task", {**task, "output": executed["output"]})
        review = yield from call(context, "review_task", task)
        if review["verdict"] != "revise":
            return review
        context.set_custom_status({"revision_requested": review.get("feedback", "")[:200]})
        yield from call(context, "start_task", task)


def _after_failure(context: df.DurableOrchestrationContext, task: dict[str, Any], failure: StepFailed,
                   hours: float) -> Story:
    if failure.escalate:
        return (yield from _escalate(context, task, failure.reason, failure.failure_type.value, hours))
    yield from call(context, "fail_task", {**task, "reason": failure.reason})
    return {"status": "failed", "task_id": task["task_id"], "reason": failure.reason}


def _escalate(context: df.DurableOrchestrationContext, task: dict[str, Any], reason: str, failure_type: str,
              hours: float) -> Story:
    """Open an escalation and wait for a human; a timeout fails the task."""
    yield context.call_activity("escalate_task", {**task, "reason": reason, "failure_type": failure_type,
                                                  "instance_id": context.instance_id})
    context.set_custom_status({"escalated": reason[:200]})
    event, decision = yield from wait_for_any(context, hours, EVENT_ESCALATION_RESOLVED)
    if event is None:
        yield context.call_activity("fail_task", {**task, "reason": "escalation not resolved in time"})
        return {"status": "failed", "task_id": task["task_id"], "reason": "escalation timed out"}
    action = str(decision.get("action", "fail"))
    status = yield context.call_activity("apply_escalation_decision", {
        **task, "action": action, "note": decision.get("note"), "input": decision.get("input")})
    context.set_custom_status({"escalation_resolved": action})
    if status == "in_progress":
        return {"status": "retry", "task_id": task["task_id"]}
    return {"status": status, "task_id": task["task_id"]}


# --- team -------------------------------------------------------------------------------------------


def team_orchestrator(context: df.DurableOrchestrationContext) -> Story:
    """plan → (approval) → active → dependency-ordered fan-out of task orchestrations → summary."""
    data = _payload(context.get_input())
    team = {"team_id": data["team_id"]}
    settings = data.get("settings") or {}
    max_parallel = int(settings.get("max_parallel", 3))
    hours = float(settings.get("escalation_timeout_hours", 24))
    try:
        plan = yield from call(context, "plan_team", team)
    except StepFailed as failure:
        yield context.call_activity("fail_team", {**team, "reason": f"planning failed: {failure.reason}"})
        return {"status": "failed", "reason": failure.reason}
    if plan["awaiting_approval"]:
        context.set_custom_status({"awaiting_plan_approval": True})
        event, _ = yield from wait_for_any(context, hours, EVENT_PLAN_APPROVED, EVENT_CANCEL)
        if event != EVENT_PLAN_APPROVED:
            if event is None:
                yield context.call_activity("fail_team", {**team, "reason": "plan not approved in time"})
            return {"status": "cancelled" if event else "failed"}
        plan = yield context.call_activity("load_plan", team)
    status = yield context.call_activity("activate_team", team)
    if status != "active":
        return {"status": status}

    dependencies = {t["id"]: t["dependencies"] for t in plan["tasks"]}
    done = {t["id"] for t in plan["tasks"] if t["status"] == "completed"}
    failed: set[str] = set()
    running: dict[str, Any] = {}
    attempts: dict[str, int] = {}
    control = {name: context.wait_for_external_event(name) for name in (EVENT_PAUSE, EVENT_CANCEL, EVENT_RETRY)}

    while True:
        context.set_custom_status({"done": len(done), "running": len(running), "failed": len(failed),
                                   "total": len(dependencies)})
        ready = [tid for tid, deps in dependencies.items()
                 if tid not in done and tid not in failed and tid not in running and all(d in done for d in deps)]
        for task_id in ready[: max(0, max_parallel - len(running))]:
            attempts[task_id] = attempts.get(task_id, 0) + 1
            running[task_id] = context.call_sub_orchestrator(
                TASK_ORCHESTRATOR, {"task_id": task_id, "escalation_timeout_hours": hours},
                f"{context.instance_id}:task:{task_id}:{attempts[task_id]}")
        if not running:
            if len(done) == len(dependencies):
                break
            # Some tasks failed and nothing else can run: wait for a retry or give up.
            context.set_custom_status({"blocked_by_failed_tasks": sorted(failed)})
            timer = context.create_timer(context.current_utc_datetime + timedelta(hours=hours))
            winner = yield context.task_any([control[EVENT_RETRY], control[EVENT_CANCEL], timer])
            if winner is timer:
                yield context.call_activity("fail_team", {**team, "reason": "failed tasks were not retried"})
                return {"status": "failed", "failed_tasks": sorted(failed)}
            timer.cancel()
            if winner is control[EVENT_CANCEL]:
                return {"status": "cancelled", "failed_tasks": sorted(failed)}
            control[EVENT_RETRY] = context.wait_for_external_event(EVENT_RETRY)
            yield from _retry(context, _payload(winner.result), failed)
            continue

        winner = yield context.task_any([*running.values(), *control.values()])
        if winner is control[EVENT_CANCEL]:
            return {"status": "cancelled"}
        if winner is control[EVENT_RETRY]:
            control[EVENT_RETRY] = context.wait_for_external_event(EVENT_RETRY)
            yield from _retry(context, _payload(winner.result), failed)
            continue
        if winner is control[EVENT_PAUSE]:
            control[EVENT_PAUSE] = context.wait_for_external_event(EVENT_PAUSE)
        else:
            task_id = next(tid for tid, t in running.items() if t is winner)
            del running[task_id]
            outcome = winner.result if isinstance(winner.result, dict) else {"status": "failed"}
            if outcome.get("status") == "completed":
                done.add(task_id)
            elif outcome.get("status") != "budget_exceeded":
                failed.add(task_id)
        state = yield context.call_activity("team_status", team)
        if state["status"] in ("cancelled", "failed", "completed"):
            return {"status": state["status"]}
        if state["budget_exceeded"] and state["status"] == "active":
            yield context.call_activity("pause_for_budget", {**team, "instance_id": context.instance_id})
            state = {**state, "status": "paused", "budget": True}
        if state["status"] == "paused":
            outcome = yield from _paused(context, team, hours, state.get("budget", False), control[EVENT_CANCEL])
            if outcome is not None:
                return outcome

    result = yield context.call_activity("summarize_team", team)
    return {"status": result}


def _retry(context: df.DurableOrchestrationContext, payload: dict[str, Any], failed: set[str]) -> Story:
    task_id = str(payload.get("task_id", ""))
    if task_id in failed:
        status = yield context.call_activity("reopen_task", {"task_id": task_id})
        if status == "in_progress":
            failed.discard(task_id)


def _paused(context: df.DurableOrchestrationContext, team: dict[str, Any], hours: float, budget: bool,
            cancel: Any) -> Story:
    """Wait while paused (by a user, or by the budget with an escalation); None means carry on."""
    while True:
        context.set_custom_status({"paused": True, "budget": budget})
        resume = context.wait_for_external_event(EVENT_RESUME)
        resolved = context.wait_for_external_event(EVENT_ESCALATION_RESOLVED)
        timer = context.create_timer(context.current_utc_datetime + timedelta(hours=hours))
        winner = yield context.task_any([resume, resolved, cancel, timer])
        if winner is timer:
            yield context.call_activity("fail_team", {**team, "reason": "paused for too long"})
            return {"status": "failed", "reason": "paused for too long"}
        timer.cancel()
        if winner is cancel:
            return {"status": "cancelled"}
        if winner is resolved:
            payload = _payload(winner.result)
            yield context.call_activity("apply_budget_decision", {
                **team, "action": payload.get("action", "retry"), "input": payload.get("input")})
        state = yield context.call_activity("team_status", team)
        if state["status"] == "active":
            return None
        if state["status"] != "paused":
            return {"status": state["status"]}



# Registered without rebinding the names, so tests can drive the plain generator functions.
bp.orchestration_trigger(context_name="context", orchestration=TASK_ORCHESTRATOR)(task_orchestrator)
bp.orchestration_trigger(context_name="context", orchestration=TEAM_ORCHESTRATOR)(team_orchestrator)
