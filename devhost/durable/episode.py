"""Deciding one orchestrator episode: which new events to deliver, replay, and what to write.

Pure (no I/O) so it can run in an executor and be tested directly. Sequence numbers, retries
and the dummy timer follow ../../shared/protocols/DURABLE_BACKEND.md §3.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from typing import Any

from . import replay
from .history import (
    COMPLETION_ID_FIELD,
    EventType,
    as_new,
    as_played,
    event,
    execution_started,
    format_timestamp,
    parse_timestamp,
)
from .model import (
    CONTROL,
    TERMINAL,
    EpisodeOutcome,
    InboxRow,
    InstanceRow,
    NewActivity,
    NewChild,
    NewMessage,
    Status,
)

FAILED_EVENTS = (EventType.TASK_FAILED, EventType.SUB_ORCHESTRATION_FAILED)
SUCCEEDED_EVENTS = (EventType.TASK_COMPLETED, EventType.SUB_ORCHESTRATION_COMPLETED)


class _Episode:
    """Working state of one episode; `outcome` accumulates the writes."""

    def __init__(self, row: InstanceRow, now: datetime) -> None:
        self.row = row
        self.now = now
        self.next_id = row.next_event_id
        self.open_ids = set(row.open_ids)
        self.retries = dict(row.retries)
        self.out = EpisodeOutcome(status=row.status, custom_status=row.custom_status)
        self.decisions: list[dict[str, Any]] = []

    def allocate(self) -> int:
        self.next_id += 1
        return self.next_id - 1

    def finish(self) -> EpisodeOutcome:
        out = self.out
        out.next_event_id = self.next_id
        out.open_ids = sorted(self.open_ids)
        out.retries = self.retries
        return out

    # -- scheduling -------------------------------------------------------------------------
    def schedule(self, action: dict[str, Any], task_id: int) -> None:
        """Record and enqueue one atomic action that has just been given `task_id`."""
        kind = int(action["actionType"])
        if kind in (replay.CALL_ACTIVITY, replay.CALL_ACTIVITY_WITH_RETRY):
            name = str(action["functionName"])
            self.decisions.append(
                event(EventType.TASK_SCHEDULED, self.now, task_id, Name=name, Version="",
                      Input=action.get("input"))
            )
            self.out.activities.append(NewActivity(task_id, name, action.get("input")))
            self.open_ids.add(task_id)
        elif kind in (replay.CALL_SUB_ORCHESTRATOR, replay.CALL_SUB_ORCHESTRATOR_WITH_RETRY):
            self.create_child(action, task_id)
        elif kind == replay.CREATE_TIMER:
            fire_at = str(action["fireAt"])
            self.decisions.append(event(EventType.TIMER_CREATED, self.now, task_id, FireAt=fire_at))
            if not action.get("isCanceled"):
                self.add_timer(task_id, fire_at, parse_timestamp(fire_at))
        if kind in (replay.CALL_ACTIVITY_WITH_RETRY, replay.CALL_SUB_ORCHESTRATOR_WITH_RETRY):
            options = action.get("retryOptions") or {}
            self.retries[str(task_id)] = {
                "phase": "running",
                "attempt": 1,
                "max": int(options.get("maxNumberOfAttempts", 1)),
                "first_ms": float(options.get("firstRetryIntervalInMilliseconds", 1000)),
                "backoff": float(options.get("backoffCoefficient", 1.0)),
                "max_ms": options.get("maxRetryIntervalInMilliseconds"),
                "action": action,
            }

    def add_timer(self, task_id: int, fire_at_text: str, fire_at: datetime) -> None:
        fired = event(EventType.TIMER_FIRED, fire_at, TimerId=task_id, FireAt=fire_at_text)
        self.out.messages.append(
            NewMessage(self.row.instance_id, self.row.execution_id, as_new(fired), fire_at, task_id)
        )
        self.open_ids.add(task_id)

    def create_child(self, action: dict[str, Any], task_id: int) -> None:
        row = self.row
        name = str(action["functionName"])
        child_id = action.get("instanceId") or f"{row.execution_id}:{task_id}"
        raw_input = None if action.get("input") is None else json.dumps(action["input"])
        self.decisions.append(
            event(EventType.SUB_ORCHESTRATION_CREATED, self.now, task_id, Name=name,
                  InstanceId=child_id, Input=action.get("input"))
        )
        execution_id = uuid.uuid4().hex
        parent = {
            "Name": row.name,
            "Version": row.version,
            "TaskScheduleId": task_id,
            "OrchestrationInstance": {"InstanceId": row.instance_id, "ExecutionId": row.execution_id},
        }
        started = execution_started(
            moment=self.now, name=name, version=str(action.get("version") or ""), raw_input=raw_input,
            instance_id=child_id, execution_id=execution_id, parent=parent,
        )
        failed = event(
            EventType.SUB_ORCHESTRATION_FAILED, self.now, TaskScheduledId=task_id,
            Reason=f"An orchestration instance with the ID '{child_id}' is already running.",
            Details=None,
        )
        self.out.children.append(
            NewChild(child_id, execution_id, name, raw_input, task_id, as_new(started), as_new(failed))
        )
        self.open_ids.add(task_id)

    # -- retries (DTFx RetryInterceptor) ----------------------------------------------------
    def apply_retry(self, delivered: dict[str, Any]) -> None:
        """Mirror the ids the SDK allocates while it replays a retry-related event."""
        kind = delivered["EventType"]
        field_name = COMPLETION_ID_FIELD.get(kind)
        key = str(delivered.get(field_name)) if field_name else ""
        state = self.retries.get(key)
        if state is None:
            return
        del self.retries[key]
        if kind in FAILED_EVENTS and state["phase"] == "running":
            timer_id = self.allocate()
            delay_ms = 0.0  # the final "dummy" timer fires at once; the SDK throws after it
            if state["attempt"] < state["max"]:
                delay_ms = state["first_ms"] * state["backoff"] ** (state["attempt"] - 1)
                if state["max_ms"]:
                    delay_ms = min(delay_ms, float(state["max_ms"]))
            fire_at = self.now + timedelta(milliseconds=delay_ms)
            fire_text = format_timestamp(fire_at)
            self.decisions.append(event(EventType.TIMER_CREATED, self.now, timer_id, FireAt=fire_text))
            self.add_timer(timer_id, fire_text, fire_at)
            self.retries[str(timer_id)] = {**state, "phase": "timer"}
        elif kind == EventType.TIMER_FIRED and state["attempt"] < state["max"]:
            task_id = self.allocate()
            self.schedule(state["action"], task_id)
            self.retries[str(task_id)] = {**state, "phase": "running", "attempt": state["attempt"] + 1}

    # -- endings ----------------------------------------------------------------------------
    def end(self, status: Status, output_text: str, reason: str | None = None) -> None:
        row, out = self.row, self.out
        out.status = status
        out.output = output_text
        out.drop_pending = True
        self.open_ids.clear()
        self.retries.clear()
        code = {Status.COMPLETED: 1, Status.FAILED: 3, Status.TERMINATED: 5}[status]
        self.decisions.append(
            event(EventType.EXECUTION_COMPLETED, self.now, OrchestrationStatus=code, Result=output_text)
        )
        if row.parent_instance_id is None or row.parent_task_id is None:
            return
        if status == Status.COMPLETED:
            note = event(EventType.SUB_ORCHESTRATION_COMPLETED, self.now,
                         TaskScheduledId=row.parent_task_id, Result=output_text)
        else:
            note = event(EventType.SUB_ORCHESTRATION_FAILED, self.now,
                         TaskScheduledId=row.parent_task_id, Reason=reason, Details=reason)
        out.messages.append(
            NewMessage(row.parent_instance_id, row.parent_execution_id, as_new(note), self.now,
                       row.parent_task_id)
        )

    def fail(self, reason: str) -> None:
        self.end(Status.FAILED, json.dumps(reason), reason)


def decide(
    row: InstanceRow,
    history: Sequence[str],
    inbox: Sequence[InboxRow],
    orchestrators: dict[str, Callable[..., Any]],
    now: datetime,
    session: replay.Session | None = None,
) -> EpisodeOutcome:
    """Compute the writes of one episode for `row`, given its stored history and new messages.

    With the `session` the previous episode left (the state after exactly `history`), only the
    new events are run; `out.session` is the one to use for the next episode, if any.
    """
    ep = _Episode(row, now)
    out = ep.out
    if row.status in TERMINAL:  # late completions, events for a finished instance: discard
        out.consumed = [m.id for m in inbox]
        return ep.finish()
    if _apply_control(ep, inbox):
        return ep.finish()
    delivered = _select_events(ep, inbox)
    if not delivered:
        return ep.finish()
    started = row.history_len > 0 or delivered[0]["EventType"] == EventType.EXECUTION_STARTED
    if not started:  # nothing can be replayed without ExecutionStarted
        return ep.finish()
    if row.retries:
        ep.apply_retry(delivered[0])
    episode_events = [event(EventType.ORCHESTRATOR_STARTED, now), *delivered]
    out.replayed = True
    out.status = Status.RUNNING
    handle = orchestrators.get(row.name)
    if handle is None:
        ep.fail(f"The function '{row.name}' doesn't exist, is disabled, or is not an orchestrator function.")
    else:
        new_events = [as_new(e) for e in episode_events]
        if session is not None:
            reply = replay.continue_session(session, new_events)
            if reply.base is not None and reply.base != len(row.actions):
                raise RuntimeError(f"session of {row.instance_id} is out of step with its row")
        else:
            context = replay.build_context(
                instance_id=row.instance_id,
                parent_instance_id=row.parent_instance_id,
                raw_input=row.input,
                history=[*history, *new_events],
            )
            reply, session = replay.start_session(handle, context)
        _apply_reply(ep, reply, session)
        if out.status not in TERMINAL and out.new_execution is None and not reply.done and not reply.failed:
            out.session = session
    out.history = [as_played(e) for e in (*episode_events, *ep.decisions)]
    out.history.append(as_played(event(EventType.ORCHESTRATOR_COMPLETED, now)))
    return ep.finish()


def give_up(row: InstanceRow, reason: str, now: datetime) -> EpisodeOutcome:
    """Fail the instance without replaying it: its episodes keep failing (a poison episode).

    The parent is notified like for any failure; pending messages are dropped. A finished
    instance keeps its status and output: only its undeliverable messages are dropped.
    """
    ep = _Episode(row, now)
    if row.status in TERMINAL:
        ep.out.drop_pending = True
        return ep.finish()
    ep.fail(reason)
    ep.out.history = [as_played(e) for e in ep.decisions]
    return ep.finish()


def _apply_control(ep: _Episode, inbox: Sequence[InboxRow]) -> bool:
    """Handle terminate/suspend/resume; True when the episode ends here."""
    row, out = ep.row, ep.out
    for message in inbox:
        if message.kind != CONTROL:
            continue
        out.consumed.append(message.id)
        control = json.loads(message.event)
        operation, reason = control.get("op"), str(control.get("reason") or "")
        if operation == "terminate":
            out.consumed = [m.id for m in inbox]
            ep.decisions.append(event(EventType.EXECUTION_TERMINATED, ep.now, Input=reason))
            ep.end(Status.TERMINATED, json.dumps(reason), f"Orchestration terminated: {reason}")
            out.history = [as_played(e) for e in ep.decisions]
            return True
        if operation == "suspend":
            out.status = Status.SUSPENDED
        elif operation == "resume" and out.status == Status.SUSPENDED:
            out.status = Status.RUNNING if row.history_len > 0 else Status.PENDING
    return out.status == Status.SUSPENDED


def _select_events(ep: _Episode, inbox: Sequence[InboxRow]) -> list[dict[str, Any]]:
    """New events to deliver, dropping duplicates and stale ones (consumed but not delivered).

    While a retry is in flight only one event is delivered per episode, because the ids the SDK
    allocates for retries depend on the order of events within a batch (protocol §3).
    """
    row, out = ep.row, ep.out
    delivered: list[dict[str, Any]] = []
    for message in inbox:
        if message.kind == CONTROL:
            continue
        payload = json.loads(message.event)
        kind = payload["EventType"]
        field_name = COMPLETION_ID_FIELD.get(kind)
        stale = (
            (kind == EventType.EXECUTION_STARTED
             and (row.history_len > 0 or message.execution_id != row.execution_id))
            or (field_name is not None
                and (message.execution_id != row.execution_id or payload.get(field_name) not in ep.open_ids))
        )
        if stale:
            out.consumed.append(message.id)
            continue
        if row.retries and delivered:
            break
        out.consumed.append(message.id)
        if field_name is not None:
            ep.open_ids.discard(payload[field_name])
        delivered.append(payload)
    return delivered


def _apply_reply(ep: _Episode, reply: replay.Reply, session: replay.Session | None) -> None:
    row, out = ep.row, ep.out
    if reply.failed and not reply.raw:  # raised without a state: no actions to compare
        ep.fail(f"Orchestrator function '{row.name}' failed: {reply.error}")
        return
    recorded = row.actions
    actions = reply.actions
    if reply.base is not None and session is not None:
        # a session's reply: only the new actions; the recorded ones are the same objects
        for timer_id in list(session.timers):
            if timer_id not in ep.open_ids:  # fired (or cancelled before)
                del session.timers[timer_id]
            elif session.canceled(timer_id):
                ep.open_ids.discard(timer_id)
                out.canceled_timers.append(timer_id)
                del session.timers[timer_id]
        recorded = []
    for index, record in enumerate(recorded):
        now_sig = replay.signature(actions[index]) if index < len(actions) else None
        if now_sig != record[:-1]:
            now_text = replay.describe(now_sig) if now_sig else "nothing"
            ep.fail(
                f"Non-deterministic orchestrator '{row.name}': action #{index} was "
                f"{replay.describe(record[:-1])} when first run but is {now_text} on replay. "
                "Orchestrator code changed while this instance was in flight."
            )
            return
        if actions[index].get("actionType") == replay.CREATE_TIMER and record[-1] in ep.open_ids:
            timer_id = record[-1]
            if actions[index].get("isCanceled"):
                ep.open_ids.discard(timer_id)
                out.canceled_timers.append(timer_id)
            elif session is not None:
                session.note_timer(index, timer_id)
    if reply.custom_status:
        out.custom_status = json.dumps(reply.custom_status)
    if reply.failed:
        reason = f"Orchestrator function '{row.name}' failed: {reply.error}"
        ep.fail(reason)
        return
    continue_input: Any = None
    continued = False
    for index, action in enumerate(actions[len(recorded):], start=len(recorded)):
        kind = int(action["actionType"])
        if kind not in replay.SUPPORTED_ACTIONS:
            ep.fail(f"{replay.ACTION_NAMES.get(kind, kind)} is not supported by the devhost durable backend.")
            return
        task_id = ep.allocate() if replay.consumes_sequence_number(kind) else None
        out.new_actions.append([*replay.signature(action), task_id])
        if session is not None and kind == replay.CREATE_TIMER and task_id is not None and not action.get("isCanceled"):
            session.note_timer(index, task_id)
        if kind == replay.CONTINUE_AS_NEW:
            continued, continue_input = True, action.get("input")
        elif task_id is not None and not reply.done:
            ep.schedule(action, task_id)
    if continued:
        _continue_as_new(ep, continue_input)
    elif reply.done:
        ep.end(Status.COMPLETED, json.dumps(reply.output))


def _continue_as_new(ep: _Episode, new_input: Any) -> None:
    """Start a new execution with a fresh history; external events still waiting are kept."""
    row, out = ep.row, ep.out
    raw_input = None if new_input is None else json.dumps(new_input)
    execution_id = uuid.uuid4().hex
    out.new_execution = (execution_id, raw_input)
    out.status = Status.RUNNING
    ep.next_id = 0
    ep.open_ids.clear()
    ep.retries.clear()
    out.new_actions = []
    parent = None
    if row.parent_instance_id is not None:
        parent = {
            "Name": "",
            "Version": "",
            "TaskScheduleId": row.parent_task_id,
            "OrchestrationInstance": {
                "InstanceId": row.parent_instance_id,
                "ExecutionId": row.parent_execution_id,
            },
        }
    started = execution_started(
        moment=ep.now, name=row.name, version=row.version, raw_input=raw_input,
        instance_id=row.instance_id, execution_id=execution_id, parent=parent,
    )
    out.messages.append(NewMessage(row.instance_id, execution_id, as_new(started), ep.now))
