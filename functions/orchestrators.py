"""Team and task orchestrators: the story of a run, told deterministically.

No I/O, no clock but `context.current_utc_datetime`, no randomness: everything with side effects is an
activity (functions/activities.py), and every activity call goes through `call`, which applies the
pure `FailureHandler` (retries wait on durable timers, at least the provider's `Retry-After`), so a
crash or a restart mid-backoff loses nothing and one transient error never fails a team.

External events arrive at least once (they are sent from an outbox, shared/services/signals.py), so
every wait checks what an event is about (the escalation id) and the database stays the truth the
orchestrators re-read after waking.
"""

from __future__ import annotations

import json
from collections.abc import Generator
from datetime import timedelta
from typing import Any

import azure.durable_functions as df

from shared.domain.failures import Escalate, FailureHandler, FailureType, Retry, parse_failure
from shared.domain.planning import ready_tasks
from shared.orchestration_names import (
    TASK_ORCHESTRATOR,
    TASK_STORY,
    TEAM_ORCHESTRATOR,
    Activity,
    Event,
    TaskResult,
    Verdict,
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


def call(context: df.DurableOrchestrationContext, activity: Activity, payload: dict[str, Any]) -> Story:
    """Call an activity; retry per the failure policy on durable timers; raise StepFailed when done trying."""
    attempt = 1
    while True:
        try:
            return (yield context.call_activity(activity.value, payload))
        except Exception as exc:
            failure_type, retry_after = parse_failure(str(exc))
            decision = HANDLER.decide(failure_type, attempt, seed=f"{context.instance_id}:{activity.value}",
                                      retry_after=retry_after)
            if isinstance(decision, Retry):
                context.set_custom_status({"retrying": activity.value, "attempt": attempt,
                                           "failure": failure_type.value, "delay_seconds": decision.delay})
                yield context.create_timer(context.current_utc_datetime + timedelta(seconds=decision.delay))
                attempt += 1
                continue
            reason = f"{activity.value}: {_reason(exc)}"
            raise StepFailed(failure_type, reason, isinstance(decision, Escalate)) from exc


def _reason(exc: Exception) -> str:
    text = str(exc).split("\n")[0]
    return text[:500]


def wait_for_decision(context: df.DurableOrchestrationContext, hours: float, escalation_id: str,
                      cancel: Any = None) -> Story:
    """Wait for the resolution of escalation `escalation_id` (a repeated or stale resolution of another
    escalation is skipped); the decision, `{"cancelled": True}` when `cancel` fired first, or None when
    the time ran out."""
    deadline = context.current_utc_datetime + timedelta(hours=hours)
    while True:
        resolved = context.wait_for_external_event(Event.ESCALATION_RESOLVED.value)
        timer = context.create_timer(deadline)
        winner = yield context.task_any([resolved, timer] + ([cancel] if cancel is not None else []))
        if winner is timer:
            return None
        timer.cancel()
        if winner is cancel:
            return {"cancelled": True}
        decision = _payload(winner.result)
        if str(decision.get("escalation_id", escalation_id)) == escalation_id:
            return decision


# --- task -------------------------------------------------------------------------------------------


def task_orchestrator(context: df.DurableOrchestrationContext) -> Story:
    """begin (assign + start) → execute (its final step submits) → review → approve, or revise up to
    max_revisions → escalate."""
    data = _payload(context.get_input())
    task = {"task_id": data["task_id"]}
    hours = float(data.get("escalation_timeout_hours", 24))
    approval_hours = float(data.get("tool_approval_timeout_hours") or hours)
    lean = int(data.get("story", 1)) >= TASK_STORY  # an instance started before: its history's activities
    try:
        if lean:
            yield from call(context, Activity.BEGIN_TASK, task)
        else:
            yield from call(context, Activity.ASSIGN_TASK, task)
            yield from call(context, Activity.START_TASK, task)
    except StepFailed as failure:
        return (yield from _after_failure(context, task, failure, hours))
    while True:
        try:
            result = yield from _work_and_review(context, task, approval_hours, lean)
        except StepFailed as failure:
            if failure.failure_type is FailureType.BUDGET_EXCEEDED:
                return {"status": TaskResult.BUDGET_EXCEEDED.value, "task_id": task["task_id"]}
            outcome = yield from _after_failure(context, task, failure, hours)
            if outcome["status"] != "retry":
                return outcome
            continue
        if result["verdict"] == Verdict.APPROVE:
            # The review read the team's status and budget after its commit: the team needs no TEAM_STATUS.
            team = {"team": result["team"]} if isinstance(result.get("team"), dict) else {}
            return {"status": TaskResult.COMPLETED.value, "task_id": task["task_id"], **team}
        if result["verdict"] == Verdict.STOPPED:
            return {"status": result.get("status", TaskResult.FAILED.value), "task_id": task["task_id"]}
        # revisions exhausted: a human decides
        outcome = yield from _escalate(context, task, result.get("reason", "review not passed"),
                                       FailureType.INVALID_OUTPUT.value, hours)
        if outcome["status"] != "retry":
            return outcome


def _work_and_review(context: df.DurableOrchestrationContext, task: dict[str, Any], approval_hours: float,
                     lean: bool) -> Story:
    """Execute and review until approved, a revision round is needed, or revisions run out. The final
    step hands the task to review and a revision round starts with its first step; an older history's
    `submit_task` / `start_task` replay where it recorded them."""
    while True:
        executed = yield from _execute(context, task, approval_hours)
        if executed["status"] not in ("in_progress", "review"):
            return {"verdict": Verdict.STOPPED.value, "status": executed["status"]}
        if executed["status"] == "in_progress":  # recorded before the final step submitted
            yield from call(context, Activity.SUBMIT_TASK, {**task, "output": executed["output"]})
        review = yield from call(context, Activity.REVIEW_TASK, task)
        if review["verdict"] != Verdict.REVISE:
            return review
        context.set_custom_status({"revision_requested": review.get("feedback", "")[:200]})
        if not lean:
            yield from call(context, Activity.START_TASK, task)


def _execute(context: df.DurableOrchestrationContext, task: dict[str, Any], approval_hours: float) -> Story:
    """The worker's steps, one activity each; each tool call a step asks for is its own activities
    (approval first when its server asks for one), run before the next step continues with the results."""
    while True:
        step = yield from call(context, Activity.EXECUTE_STEP, task)
        for call_id in step.get("tool_calls") or []:
            yield from _tool_call(context, task, str(call_id), approval_hours)
        if step.get("done"):
            return step


def _tool_call(context: df.DurableOrchestrationContext, task: dict[str, Any], call_id: str, hours: float) -> Story:
    """requested -> (approval: a person decides, the timeout denies) -> executed, unless already recorded."""
    payload = {**task, "call_id": call_id}
    state = yield from call(context, Activity.PREPARE_TOOL_CALL, {**payload, "instance_id": context.instance_id})
    while state["status"] == "awaiting_approval":
        context.set_custom_status({"awaiting_tool_approval": call_id})
        decision = yield from wait_for_decision(context, hours, str(state["escalation_id"]))
        state = yield from call(context, Activity.DECIDE_TOOL_CALL, {
            **payload, "timed_out": decision is None, "timeout_hours": hours})
        if state["status"] == "awaiting_approval" and decision is None:
            break  # the decision was lost (never happens: the timeout resolves it); do not wait forever
    yield from call(context, Activity.RUN_TOOL_CALL, payload)


def _after_failure(context: df.DurableOrchestrationContext, task: dict[str, Any], failure: StepFailed,
                   hours: float) -> Story:
    if failure.escalate:
        return (yield from _escalate(context, task, failure.reason, failure.failure_type.value, hours))
    yield from call(context, Activity.FAIL_TASK, {**task, "reason": failure.reason})
    return {"status": TaskResult.FAILED.value, "task_id": task["task_id"], "reason": failure.reason}


def _escalate(context: df.DurableOrchestrationContext, task: dict[str, Any], reason: str, failure_type: str,
              hours: float) -> Story:
    """Open an escalation and wait for a human; a timeout fails the task."""
    escalation_id = yield from call(context, Activity.ESCALATE_TASK, {
        **task, "reason": reason, "failure_type": failure_type, "instance_id": context.instance_id})
    context.set_custom_status({"escalated": reason[:200]})
    decision = yield from wait_for_decision(context, hours, str(escalation_id))
    if decision is None:
        yield from call(context, Activity.FAIL_TASK, {**task, "reason": "escalation not resolved in time"})
        return {"status": TaskResult.FAILED.value, "task_id": task["task_id"], "reason": "escalation timed out"}
    action = str(decision.get("action", "fail"))
    status = yield from call(context, Activity.APPLY_ESCALATION_DECISION, {
        **task, "action": action, "note": decision.get("note"), "input": decision.get("input")})
    context.set_custom_status({"escalation_resolved": action})
    if status == "in_progress":
        return {"status": "retry", "task_id": task["task_id"]}
    return {"status": status, "task_id": task["task_id"]}


# --- team -------------------------------------------------------------------------------------------


def team_orchestrator(context: df.DurableOrchestrationContext) -> Story:
    """plan (which activates the team) → (approval) → dependency-ordered fan-out of task orchestrations
    → summary."""
    data = _payload(context.get_input())
    team = {"team_id": data["team_id"]}
    settings = data.get("settings") or {}
    max_parallel = int(settings.get("max_parallel", 3))
    hours = float(settings.get("escalation_timeout_hours", 24))
    approval_hours = float(settings.get("tool_approval_timeout_hours") or hours)
    control = {name: context.wait_for_external_event(name.value) for name in (Event.PAUSE, Event.CANCEL, Event.RETRY)}

    plan = yield from _plan(context, team, hours, control[Event.CANCEL])
    if "status" in plan:
        return plan
    status = plan.get("team_status")
    if status is None:  # a plan recorded before planning activated the team
        status = yield from call(context, Activity.ACTIVATE_TEAM, team)
    if status == "paused":  # paused between the plan's commit and a re-run of it
        outcome = yield from _paused(context, team, hours, None, control[Event.CANCEL])
        if outcome is not None:
            return outcome
    elif status != "active":
        return {"status": status}

    dependencies = {t["id"]: t["dependencies"] for t in plan["tasks"]}
    done = {t["id"] for t in plan["tasks"] if t["status"] == "completed"}
    failed: set[str] = set()
    running: dict[str, Any] = {}
    attempts: dict[str, int] = {}
    over_budget = False

    while True:
        context.set_custom_status({"done": len(done), "running": len(running), "failed": len(failed),
                                   "total": len(dependencies)})
        if not over_budget:
            ready = ready_tasks(dependencies, done, excluded=failed | set(running))
            for task_id in ready[: max(0, max_parallel - len(running))]:
                attempts[task_id] = attempts.get(task_id, 0) + 1
                running[task_id] = context.call_sub_orchestrator(
                    TASK_ORCHESTRATOR, {"task_id": task_id, "escalation_timeout_hours": hours,
                                        "tool_approval_timeout_hours": approval_hours, "story": TASK_STORY},
                    f"{context.instance_id}:task:{task_id}:{attempts[task_id]}")
        if not running and not over_budget:
            if len(done) == len(dependencies):
                break
            # Some tasks failed and nothing else can run: wait for a retry or give up.
            context.set_custom_status({"blocked_by_failed_tasks": sorted(failed)})
            timer = context.create_timer(context.current_utc_datetime + timedelta(hours=hours))
            winner = yield context.task_any([control[Event.RETRY], control[Event.CANCEL], timer])
            if winner is timer:
                yield from call(context, Activity.FAIL_TEAM, {**team, "reason": "failed tasks were not retried"})
                return {"status": "failed", "failed_tasks": sorted(failed)}
            timer.cancel()
            if winner is control[Event.CANCEL]:
                return {"status": "cancelled", "failed_tasks": sorted(failed)}
            control[Event.RETRY] = context.wait_for_external_event(Event.RETRY.value)
            yield from _retry(context, _payload(winner.result), failed)
            continue

        known: dict[str, Any] | None = None  #: the team's state as the finished task's last step read it
        if running:
            winner = yield context.task_any([*running.values(), *control.values()])
            if winner is control[Event.CANCEL]:
                return {"status": "cancelled"}
            if winner is control[Event.RETRY]:
                control[Event.RETRY] = context.wait_for_external_event(Event.RETRY.value)
                yield from _retry(context, _payload(winner.result), failed)
                continue
            if winner is control[Event.PAUSE]:
                control[Event.PAUSE] = context.wait_for_external_event(Event.PAUSE.value)
            else:
                task_id = next(tid for tid, t in running.items() if t is winner)
                del running[task_id]
                outcome = winner.result if isinstance(winner.result, dict) else {"status": TaskResult.FAILED.value}
                if outcome.get("status") == TaskResult.COMPLETED:
                    done.add(task_id)
                    known = outcome["team"] if isinstance(outcome.get("team"), dict) else None
                elif outcome.get("status") == TaskResult.BUDGET_EXCEEDED:
                    over_budget = True  # it runs again, from its checkpoint, once the budget allows
                else:
                    failed.add(task_id)
            if over_budget and running:
                continue  # let the tasks already running reach their own next call first
        state = known if known is not None else (yield from call(context, Activity.TEAM_STATUS, team))
        if state["status"] in ("cancelled", "failed", "completed"):
            return {"status": state["status"]}
        budget = over_budget or bool(state["budget_exceeded"])
        if budget and state["status"] == "active":
            paused = yield from call(context, Activity.PAUSE_FOR_BUDGET, {**team, "instance_id": context.instance_id})
            state = {**state, "status": paused["status"], "escalation_id": paused.get("escalation_id")}
        if state["status"] == "paused":
            outcome = yield from _paused(context, team, hours, state.get("escalation_id") if budget else None,
                                         control[Event.CANCEL])
            if outcome is not None:
                return outcome
            over_budget = False

    result = yield from call(context, Activity.SUMMARIZE_TEAM, team)
    return {"status": result}


def _plan(context: df.DurableOrchestrationContext, team: dict[str, Any], hours: float, cancel: Any) -> Story:
    """The plan (waiting for its approval when asked), or `{"status": ...}` when the team ends here."""
    while True:
        try:
            plan = yield from call(context, Activity.PLAN_TEAM, team)
            break
        except StepFailed as failure:
            if failure.failure_type is not FailureType.BUDGET_EXCEEDED:
                yield from call(context, Activity.FAIL_TEAM, {**team, "reason": f"planning failed: {failure.reason}"})
                return {"status": "failed", "reason": failure.reason}
        # The plan call does not fit the budget: a budget escalation (the team stays in planning), a
        # human's decision, then plan again.
        held = yield from call(context, Activity.PAUSE_FOR_BUDGET, {**team, "instance_id": context.instance_id})
        if held["status"] != "planning":
            return {"status": held["status"]}
        decision = yield from wait_for_decision(context, hours, str(held["escalation_id"]), cancel)
        if decision is None:
            yield from call(context, Activity.FAIL_TEAM, {**team, "reason": "the budget escalation was not resolved"})
            return {"status": "failed"}
        if decision.get("cancelled"):
            return {"status": "cancelled"}
        status = yield from call(context, Activity.APPLY_BUDGET_DECISION, {
            **team, "action": decision.get("action", "retry"), "input": decision.get("input")})
        if status != "planning":
            return {"status": status}
    if plan["awaiting_approval"]:
        context.set_custom_status({"awaiting_plan_approval": True})
        approved = context.wait_for_external_event(Event.PLAN_APPROVED.value)
        timer = context.create_timer(context.current_utc_datetime + timedelta(hours=hours))
        winner = yield context.task_any([approved, cancel, timer])
        if winner is timer:
            yield from call(context, Activity.FAIL_TEAM, {**team, "reason": "plan not approved in time"})
            return {"status": "failed"}
        timer.cancel()
        if winner is cancel:
            return {"status": "cancelled"}
        plan = yield from call(context, Activity.LOAD_PLAN, team)
    return plan


def _retry(context: df.DurableOrchestrationContext, payload: dict[str, Any], failed: set[str]) -> Story:
    task_id = str(payload.get("task_id", ""))
    if task_id in failed:
        status = yield from call(context, Activity.REOPEN_TASK, {"task_id": task_id})
        if status == "in_progress":
            failed.discard(task_id)


def _paused(context: df.DurableOrchestrationContext, team: dict[str, Any], hours: float,
            escalation_id: str | None, cancel: Any) -> Story:
    """Wait while paused (by a user, or by the budget with escalation `escalation_id`); None means
    carry on. A budget decision that leaves the team paused (a budget below what is spent) opens a
    new budget escalation."""
    while True:
        context.set_custom_status({"paused": True, "budget": escalation_id is not None})
        resume = context.wait_for_external_event(Event.RESUME.value)
        resolved = context.wait_for_external_event(Event.ESCALATION_RESOLVED.value)
        timer = context.create_timer(context.current_utc_datetime + timedelta(hours=hours))
        winner = yield context.task_any([resume, resolved, cancel, timer])
        if winner is timer:
            yield from call(context, Activity.FAIL_TEAM, {**team, "reason": "paused for too long"})
            return {"status": "failed", "reason": "paused for too long"}
        timer.cancel()
        if winner is cancel:
            return {"status": "cancelled"}
        decided = False
        if winner is resolved:
            payload = _payload(winner.result)
            if escalation_id is not None and str(payload.get("escalation_id", escalation_id)) == escalation_id:
                yield from call(context, Activity.APPLY_BUDGET_DECISION, {
                    **team, "action": payload.get("action", "retry"), "input": payload.get("input")})
                decided = True
        state = yield from call(context, Activity.TEAM_STATUS, team)
        if state["status"] == "active":
            return None
        if state["status"] != "paused":
            return {"status": state["status"]}
        if decided:
            again = yield from call(context, Activity.PAUSE_FOR_BUDGET, {**team, "instance_id": context.instance_id})
            escalation_id = again.get("escalation_id") or escalation_id


# Registered without rebinding the names, so tests can drive the plain generator functions.
bp.orchestration_trigger(context_name="context", orchestration=TASK_ORCHESTRATOR)(task_orchestrator)
bp.orchestration_trigger(context_name="context", orchestration=TEAM_ORCHESTRATOR)(team_orchestrator)
