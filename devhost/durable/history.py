"""History events in the Durable Task Framework's JSON shape, as the Python SDK replays them.

See ../../shared/protocols/DURABLE_BACKEND.md §1 for which fields the SDK reads.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from enum import IntEnum
from typing import Any

TIMESTAMP_FORMAT = "%Y-%m-%dT%H:%M:%S.%fZ"


class EventType(IntEnum):
    """DTFx `HistoryEventType` values."""

    EXECUTION_STARTED = 0
    EXECUTION_COMPLETED = 1
    EXECUTION_TERMINATED = 2
    TASK_SCHEDULED = 4
    TASK_COMPLETED = 5
    TASK_FAILED = 6
    SUB_ORCHESTRATION_CREATED = 7
    SUB_ORCHESTRATION_COMPLETED = 8
    SUB_ORCHESTRATION_FAILED = 9
    TIMER_CREATED = 10
    TIMER_FIRED = 11
    ORCHESTRATOR_STARTED = 12
    ORCHESTRATOR_COMPLETED = 13
    EVENT_RAISED = 15
    EXECUTION_SUSPENDED = 20
    EXECUTION_RESUMED = 21


#: Events that complete a scheduled task, and the field naming the task they complete.
COMPLETION_ID_FIELD: dict[int, str] = {
    EventType.TASK_COMPLETED: "TaskScheduledId",
    EventType.TASK_FAILED: "TaskScheduledId",
    EventType.SUB_ORCHESTRATION_COMPLETED: "TaskScheduledId",
    EventType.SUB_ORCHESTRATION_FAILED: "TaskScheduledId",
    EventType.TIMER_FIRED: "TimerId",
}


def utc_now() -> datetime:
    """This process's clock, aware UTC (the SDK rejects mixing naive and aware); the backend
    stamps what it writes with the database's clock instead (clock.py)."""
    return datetime.now(UTC)


def format_timestamp(moment: datetime) -> str:
    """UTC with a `Z` suffix, the only timestamp format the backend writes."""
    return moment.astimezone(UTC).strftime(TIMESTAMP_FORMAT)


def parse_timestamp(text: str) -> datetime:
    """Parse a timestamp written by the SDK (`fireAt`) or by this backend."""
    return datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(UTC)


def event(kind: EventType, moment: datetime, event_id: int = -1, **fields: Any) -> dict[str, Any]:
    """A history event dict; completion-type events use EventId -1, scheduled ones the sequence id."""
    return {
        "EventType": int(kind),
        "EventId": event_id,
        "IsPlayed": False,
        "Timestamp": format_timestamp(moment),
        **fields,
    }


def as_played(payload: dict[str, Any]) -> str:
    """The stored form of an event: every stored event is replayed as already played."""
    return json.dumps({**payload, "IsPlayed": True}, separators=(",", ":"))


def as_new(payload: dict[str, Any]) -> str:
    """The form of an event delivered in the episode that first sees it."""
    return json.dumps(payload, separators=(",", ":"))


def execution_started(
    *,
    moment: datetime,
    name: str,
    version: str,
    raw_input: str | None,
    instance_id: str,
    execution_id: str,
    parent: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """ExecutionStarted; `Version` must be present (the SDK reads it), `Input` is JSON text."""
    fields: dict[str, Any] = {
        "Name": name,
        "Version": version,
        "Input": raw_input,
        "OrchestrationInstance": {"InstanceId": instance_id, "ExecutionId": execution_id},
    }
    if parent is not None:
        fields["ParentInstance"] = parent
    return event(EventType.EXECUTION_STARTED, moment, **fields)
