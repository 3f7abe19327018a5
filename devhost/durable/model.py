"""Rows the backend reads and the outcome of one episode, shared by the store and the decider."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any
from uuid import UUID


class Status(StrEnum):
    """Runtime status of an instance (the SDK's `OrchestrationRuntimeStatus` values)."""

    PENDING = "Pending"  #: created, ExecutionStarted not yet replayed
    RUNNING = "Running"  #: at least one episode done, not finished
    SUSPENDED = "Suspended"  #: only control messages (resume, terminate) are processed
    COMPLETED = "Completed"  #: returned; `output` holds the JSON of the return value
    FAILED = "Failed"  #: raised, or non-deterministic; `output` holds the reason
    TERMINATED = "Terminated"  #: terminated by a client; `output` holds the reason


TERMINAL = frozenset({Status.COMPLETED, Status.FAILED, Status.TERMINATED})

EVENT = "event"
CONTROL = "control"


@dataclass
class InstanceRow:
    """An instance as claimed for an episode (the replay bookkeeping lives in its row)."""

    instance_id: str
    execution_id: str
    name: str
    version: str
    status: Status
    input: str | None
    custom_status: str | None
    parent_instance_id: str | None
    parent_execution_id: str | None
    parent_task_id: int | None
    next_event_id: int
    history_len: int
    open_ids: list[int]
    retries: dict[str, dict[str, Any]]
    actions: list[list[Any]]
    lease_token: UUID
    episode_attempts: int = 1  #: claims since the last committed episode, this one included
    last_error: str | None = None  #: why the previous attempt failed


@dataclass(frozen=True)
class InboxRow:
    """A message waiting for an instance: a history event (JSON text) or a control message."""

    id: int
    execution_id: str | None
    kind: str
    event: str


@dataclass(frozen=True)
class NewActivity:
    """An activity call to enqueue."""

    task_id: int
    name: str
    input: str | None


@dataclass(frozen=True)
class NewMessage:
    """A message for some instance's inbox; `visible_at` in the future makes it a durable timer.

    `visible_at` None means at once, by the database's clock.
    """

    instance_id: str
    execution_id: str | None
    event: str
    visible_at: datetime | None
    task_id: int | None = None
    kind: str = EVENT


@dataclass(frozen=True)
class NewChild:
    """A sub-orchestration instance to create, with its ExecutionStarted message."""

    instance_id: str
    execution_id: str
    name: str
    input: str | None
    parent_task_id: int
    started_event: str
    failed_event: str  #: delivered to the parent instead when the id is taken by a live instance


@dataclass
class EpisodeOutcome:
    """Everything one episode writes, applied in a single transaction."""

    status: Status
    consumed: list[int] = field(default_factory=list)
    history: list[str] = field(default_factory=list)
    activities: list[NewActivity] = field(default_factory=list)
    messages: list[NewMessage] = field(default_factory=list)
    children: list[NewChild] = field(default_factory=list)
    canceled_timers: list[int] = field(default_factory=list)
    output: str | None = None
    custom_status: str | None = None
    next_event_id: int = 0
    open_ids: list[int] = field(default_factory=list)
    retries: dict[str, dict[str, Any]] = field(default_factory=dict)
    new_actions: list[list[Any]] = field(default_factory=list)
    #: continue-as-new: (new execution id, new ExecutionStarted.Input); history starts over
    new_execution: tuple[str, str | None] | None = None
    drop_pending: bool = False
    replayed: bool = False
    #: the live orchestration after this episode (replay.Session), for the next one; not stored
    session: Any = None
