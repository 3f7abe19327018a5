"""Names shared by the orchestration functions and their callers: orchestrators, activities, events,
and the results orchestrators hand each other."""

from __future__ import annotations

from enum import StrEnum
from typing import Any
from uuid import UUID

TEAM_ORCHESTRATOR = "team_orchestrator"
TASK_ORCHESTRATOR = "task_orchestrator"
#: The task orchestration's story, in its input: 2 begins with `begin_task` and starts a revision
#: round in its first step. An instance without it (started before) replays assign + start and
#: start_task after a revision request, as its history recorded them.
TASK_STORY = 2


class Event(StrEnum):
    """External events the orchestrations wait for (each raised from an outbox signal)."""

    PAUSE = "pause"  #: team: a user paused it
    RESUME = "resume"  #: team: a user resumed it
    CANCEL = "cancel"  #: team: a user cancelled it
    PLAN_APPROVED = "plan_approved"  #: team: the plan waiting for approval was approved
    RETRY = "retry_task"  #: team: run a failed task again
    ESCALATION_RESOLVED = "escalation_resolved"  #: team or task: a human decided an escalation


class Activity(StrEnum):
    """Activity function names (functions/activities.py registers one function per member)."""

    PLAN_TEAM = "plan_team"  #: plans and, unless the plan awaits approval, activates the team
    LOAD_PLAN = "load_plan"  #: the approved plan; activates the team
    ACTIVATE_TEAM = "activate_team"  #: only replayed by histories recorded before plan/load_plan activated
    TEAM_STATUS = "team_status"  #: skipped when a finished task's result carries the team's state
    PAUSE_FOR_BUDGET = "pause_for_budget"
    APPLY_BUDGET_DECISION = "apply_budget_decision"
    SUMMARIZE_TEAM = "summarize_team"
    FAIL_TEAM = "fail_team"
    BEGIN_TASK = "begin_task"  #: assign and start, in one transaction
    ASSIGN_TASK = "assign_task"  #: only replayed by task histories of story 1 (see TASK_STORY)
    START_TASK = "start_task"  #: only replayed by task histories of story 1
    EXECUTE_STEP = "execute_step"  #: one worker step: one LLM call, its checkpoint, the tool calls it asks for;
    #: the first step of a revision round starts it, the final step submits the task for review
    PREPARE_TOOL_CALL = "prepare_tool_call"  #: opens the approval escalation when the server asks for one
    DECIDE_TOOL_CALL = "decide_tool_call"  #: applies the approval decision (or the timeout's denial)
    RUN_TOOL_CALL = "run_tool_call"  #: executes one tool call unless its result is recorded
    SUBMIT_TASK = "submit_task"  #: only replayed by histories whose final step did not submit
    REVIEW_TASK = "review_task"
    ESCALATE_TASK = "escalate_task"
    APPLY_ESCALATION_DECISION = "apply_escalation_decision"
    FAIL_TASK = "fail_task"
    REOPEN_TASK = "reopen_task"


class TaskResult(StrEnum):
    """How a task orchestration ended (what the team orchestration reads)."""

    COMPLETED = "completed"
    FAILED = "failed"
    BUDGET_EXCEEDED = "budget_exceeded"  #: a call did not fit the budget: the team pauses, the task resumes later
    CANCELLED = "cancelled"


class Verdict(StrEnum):
    """The review step's answer."""

    APPROVE = "approve"
    REVISE = "revise"
    ESCALATE = "escalate"  #: revisions exhausted
    STOPPED = "stopped"  #: the task left review meanwhile (a human, a cancel)


def team_instance_id(team_id: UUID | str) -> str:
    return f"team-{team_id}"


def team_orchestration_input(team_id: UUID | str, *, max_parallel: int, escalation_timeout_hours: float,
                             tool_approval_timeout_hours: float | None = None) -> dict[str, Any]:
    """The team orchestration's input: settings travel in it so replays never read the environment."""
    return {"team_id": str(team_id), "settings": {
        "max_parallel": max_parallel, "escalation_timeout_hours": escalation_timeout_hours,
        "tool_approval_timeout_hours": tool_approval_timeout_hours or escalation_timeout_hours}}
