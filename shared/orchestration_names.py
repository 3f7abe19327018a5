"""Names shared by the orchestration functions and their callers (HTTP starters, activities)."""

from __future__ import annotations

from typing import Any
from uuid import UUID

TEAM_ORCHESTRATOR = "team_orchestrator"
TASK_ORCHESTRATOR = "task_orchestrator"

#: external events a team orchestration listens for
EVENT_PAUSE = "pause"
EVENT_RESUME = "resume"
EVENT_CANCEL = "cancel"
EVENT_PLAN_APPROVED = "plan_approved"
#: external event a task orchestration waits for while escalated
EVENT_ESCALATION_RESOLVED = "escalation_resolved"
EVENT_RETRY = "retry_task"


def team_instance_id(team_id: UUID | str) -> str:
    return f"team-{team_id}"


def task_instance_id(task_id: UUID | str) -> str:
    return f"task-{task_id}"


def team_orchestration_input(team_id: UUID | str) -> dict[str, Any]:
    """The team orchestration's input: settings travel in it so replays never read the environment."""
    from shared.config import get_settings

    settings = get_settings()
    return {"team_id": str(team_id), "settings": {"max_parallel": settings.TEAM_MAX_PARALLEL,
                                                  "escalation_timeout_hours": settings.ESCALATION_TIMEOUT_HOURS}}
