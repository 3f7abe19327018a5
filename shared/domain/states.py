"""Team and task lifecycles: one transition table each (API.md lists the states)."""

from __future__ import annotations

from enum import StrEnum

from shared.domain.errors import IllegalTransition


class TeamStatus(StrEnum):
    PENDING = "pending"  #: created, not started
    PLANNING = "planning"  #: the manager is planning (or the plan awaits approval)
    ACTIVE = "active"  #: tasks are running
    PAUSED = "paused"  #: stopped by a user or by the budget; resumable
    COMPLETED = "completed"  #: every task done and summarised
    FAILED = "failed"  #: gave up
    CANCELLED = "cancelled"  #: stopped by a user for good


class TaskStatus(StrEnum):
    PENDING = "pending"  #: planned, waiting for dependencies
    ASSIGNED = "assigned"  #: a worker is chosen
    IN_PROGRESS = "in_progress"  #: the worker is executing
    REVIEW = "review"  #: the manager is reviewing the output
    REVISION_REQUESTED = "revision_requested"  #: sent back with feedback
    COMPLETED = "completed"  #: approved (or completed by a human)
    FAILED = "failed"  #: gave up
    ESCALATED = "escalated"  #: waiting for a human


TEAM_TRANSITIONS: dict[TeamStatus, frozenset[TeamStatus]] = {
    TeamStatus.PENDING: frozenset({TeamStatus.PLANNING, TeamStatus.CANCELLED, TeamStatus.FAILED}),
    TeamStatus.PLANNING: frozenset({TeamStatus.ACTIVE, TeamStatus.FAILED, TeamStatus.CANCELLED}),
    TeamStatus.ACTIVE: frozenset(
        {TeamStatus.PAUSED, TeamStatus.COMPLETED, TeamStatus.FAILED, TeamStatus.CANCELLED}
    ),
    TeamStatus.PAUSED: frozenset({TeamStatus.ACTIVE, TeamStatus.FAILED, TeamStatus.CANCELLED}),
    TeamStatus.COMPLETED: frozenset(),
    TeamStatus.FAILED: frozenset(),
    TeamStatus.CANCELLED: frozenset(),
}

_OPEN_TASK = {
    TaskStatus.PENDING,
    TaskStatus.ASSIGNED,
    TaskStatus.IN_PROGRESS,
    TaskStatus.REVIEW,
    TaskStatus.REVISION_REQUESTED,
}

TASK_TRANSITIONS: dict[TaskStatus, frozenset[TaskStatus]] = {
    TaskStatus.PENDING: frozenset({TaskStatus.ASSIGNED}),
    TaskStatus.ASSIGNED: frozenset({TaskStatus.IN_PROGRESS}),
    TaskStatus.IN_PROGRESS: frozenset({TaskStatus.REVIEW}),
    TaskStatus.REVIEW: frozenset({TaskStatus.COMPLETED, TaskStatus.REVISION_REQUESTED}),
    TaskStatus.REVISION_REQUESTED: frozenset({TaskStatus.REVIEW, TaskStatus.IN_PROGRESS}),
    TaskStatus.ESCALATED: frozenset({TaskStatus.IN_PROGRESS, TaskStatus.FAILED, TaskStatus.COMPLETED}),
    TaskStatus.COMPLETED: frozenset(),
    TaskStatus.FAILED: frozenset(),
}
for _status in _OPEN_TASK:
    TASK_TRANSITIONS[_status] = TASK_TRANSITIONS[_status] | {TaskStatus.FAILED, TaskStatus.ESCALATED}

TERMINAL_TEAM = frozenset(s for s, nxt in TEAM_TRANSITIONS.items() if not nxt)
TERMINAL_TASK = frozenset(s for s, nxt in TASK_TRANSITIONS.items() if not nxt)
OPEN_TASK = frozenset(_OPEN_TASK)


def check_team_transition(current: TeamStatus, target: TeamStatus) -> None:
    if target not in TEAM_TRANSITIONS[current]:
        raise IllegalTransition("team", current, target)


def check_task_transition(current: TaskStatus, target: TaskStatus) -> None:
    if target not in TASK_TRANSITIONS[current]:
        raise IllegalTransition("task", current, target)


def team_sources(target: TeamStatus) -> list[TeamStatus]:
    """Every status from which `target` may be reached (for guarded SQL updates)."""
    return [s for s, nxt in TEAM_TRANSITIONS.items() if target in nxt]


def task_sources(target: TaskStatus) -> list[TaskStatus]:
    return [s for s, nxt in TASK_TRANSITIONS.items() if target in nxt]
