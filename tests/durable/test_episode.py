"""The episode decider on its own: sequence numbers, DTFx retries, duplicates (no database)."""

from __future__ import annotations

import json
import uuid
from datetime import timedelta
from itertools import count
from typing import Any

import pytest
from dateutil.parser import parse as dateutil_parse  # type: ignore[import-untyped]

from devhost.durable import parse_cache
from devhost.durable.episode import decide
from devhost.durable.history import EventType, as_new, event, execution_started, utc_now
from devhost.durable.model import EpisodeOutcome, InboxRow, InstanceRow, Status

from .sample_app import FUNCTIONS

ids = count(1)


class Instance:
    """Applies outcomes to an in-memory row the way the store does, to chain episodes."""

    def __init__(self, name: str, raw_input: str | None = None) -> None:
        self.row = InstanceRow(
            instance_id="i", execution_id="e", name=name, version="", status=Status.PENDING,
            input=raw_input, custom_status=None, parent_instance_id=None, parent_execution_id=None,
            parent_task_id=None, next_event_id=0, history_len=0, open_ids=[], retries={}, actions=[],
            lease_token=uuid.uuid4(),
        )
        self.history: list[str] = []
        started = execution_started(
            moment=utc_now(), name=name, version="", raw_input=raw_input, instance_id="i", execution_id="e"
        )
        self.inbox = [InboxRow(next(ids), "e", "event", as_new(started))]

    def episode(self) -> EpisodeOutcome:
        self.now = utc_now()  # the episode's clock: what its timers are relative to
        out = decide(self.row, self.history, self.inbox, FUNCTIONS.orchestrators, self.now)
        self.inbox = [m for m in self.inbox if m.id not in out.consumed]
        self.inbox += [InboxRow(next(ids), m.execution_id, m.kind, m.event) for m in out.messages]
        self.history += out.history
        self.row.status, self.row.next_event_id = out.status, out.next_event_id
        self.row.open_ids, self.row.retries = out.open_ids, out.retries
        self.row.actions = self.row.actions + out.new_actions
        self.row.history_len = len(self.history)
        self.row.output = out.output  # type: ignore[attr-defined]
        return out

    def deliver(self, kind: EventType, **fields: Any) -> None:
        self.inbox.append(InboxRow(next(ids), "e", "event", as_new(event(kind, utc_now(), **fields))))


def scheduled_ids(out: EpisodeOutcome) -> list[int]:
    return [a.task_id for a in out.activities]


def test_retry_allocates_timer_and_retry_ids_like_dtfx_and_ends_with_a_dummy_timer() -> None:
    instance = Instance("retry_exhausted")
    assert scheduled_ids(instance.episode()) == [0]
    instance.deliver(EventType.TASK_FAILED, TaskScheduledId=0, Reason="boom", Details="{}")
    out = instance.episode()
    [timer] = out.messages
    assert timer.task_id == 1 and timer.visible_at - instance.now >= timedelta(milliseconds=20)
    instance.inbox = [m for m in instance.inbox if json.loads(m.event)["EventType"] != EventType.TIMER_FIRED]
    instance.deliver(EventType.TIMER_FIRED, TimerId=1)
    assert scheduled_ids(instance.episode()) == [2]
    instance.deliver(EventType.TASK_FAILED, TaskScheduledId=2, Reason="boom again", Details="{}")
    out = instance.episode()
    [dummy] = out.messages
    assert dummy.task_id == 3 and dummy.visible_at <= instance.now  # attempts exhausted: fires at once
    out = instance.episode()  # the dummy timer fires: the SDK throws, the orchestrator recovers
    assert scheduled_ids(out) == [4]
    instance.deliver(EventType.TASK_COMPLETED, TaskScheduledId=4, Result='"Hello recovery"')
    out = instance.episode()
    assert out.status == Status.COMPLETED
    assert json.loads(out.output or "")["caught"].startswith("boom again")


@pytest.mark.filterwarnings("ignore:Potential duplicate Task completion")
def test_only_one_event_is_delivered_per_episode_while_a_retry_is_in_flight() -> None:
    instance = Instance("retrying")
    instance.episode()
    instance.deliver(EventType.EVENT_RAISED, Name="noise", Input="1")
    instance.deliver(EventType.TASK_FAILED, TaskScheduledId=0, Reason="boom", Details="{}")
    out = instance.episode()
    assert len(out.consumed) == 1
    assert len(instance.inbox) == 1


def test_duplicate_completion_is_dropped_without_a_replay() -> None:
    instance = Instance("sequence", json.dumps(json.dumps(["a", "b"])))
    instance.episode()
    instance.deliver(EventType.TASK_COMPLETED, TaskScheduledId=0, Result='"Hello a"')
    assert scheduled_ids(instance.episode()) == [1]
    instance.deliver(EventType.TASK_COMPLETED, TaskScheduledId=0, Result='"Hello a"')
    out = instance.episode()
    assert not out.replayed and out.consumed and not out.history


def test_parse_cache_returns_exactly_what_dateutil_returns() -> None:
    parse_cache.install()
    parse_cache.install()
    assert parse_cache.installed()
    from importlib import import_module

    cached = import_module("azure.durable_functions.models.history.HistoryEvent").dt_parse
    for text in ("2024-05-01T10:00:05.123456Z", "2024-05-01T10:00:05.1234567Z", "2024-05-01T10:00:05Z"):
        first, again, reference = cached(text), cached(text), dateutil_parse(text)
        assert first is again
        assert first == reference and repr(first) == repr(reference)
        assert type(first.tzinfo) is type(reference.tzinfo) and first.utcoffset() == reference.utcoffset()


def test_parse_cache_values_share_one_zone_object() -> None:
    """dateutil makes a new tzlocal() per parse; thousands of cached copies were most of the
    devhost's memory growth under a long run."""
    parse_cache.install()
    from importlib import import_module

    cached = import_module("azure.durable_functions.models.history.HistoryEvent").dt_parse
    zones = {id(cached(f"2024-05-01T10:{m:02d}:{s:02d}.5Z").tzinfo) for m in range(3) for s in range(60)}
    assert len(zones) == 1


# --- sessions: the next episode runs only its new events ------------------------------------

EPOCH = utc_now().replace(microsecond=0)


class Driven:
    """One instance driven to its end, an episode a second: every activity completes (or fails,
    for `always_fails`), every timer fires when due, an `Approve` event arrives after the first
    episode. With `sessions`, each
    episode continues the live session the previous one left instead of replaying the history."""

    def __init__(self, name: str, raw_input: str | None, *, sessions: bool) -> None:
        self.instance = Instance(name, raw_input)
        self.instance.inbox[0] = InboxRow(1, "e", "event", as_new(execution_started(
            moment=EPOCH, name=name, version="", raw_input=raw_input, instance_id="i", execution_id="e")))
        self.sessions = sessions
        self.session: Any = None
        self.next_id = 2
        self.output: str | None = None
        self.canceled: list[int] = []
        self.timers: list[tuple[Any, str]] = []

    def episode(self, number: int) -> tuple[Any, ...]:
        instance, now = self.instance, EPOCH + timedelta(seconds=number)
        for due, text in [p for p in self.timers if p[0] <= now]:  # timers fire when due
            self.timers.remove((due, text))
            instance.inbox.append(InboxRow(self.next_id, "e", "event", text))
            self.next_id += 1
        out = decide(instance.row, instance.history, instance.inbox, FUNCTIONS.orchestrators, now,
                     self.session if self.sessions else None)
        self.session = out.session
        self.output, self.canceled = out.output, self.canceled + out.canceled_timers
        instance.inbox = [m for m in instance.inbox if m.id not in out.consumed]
        incoming = []
        if number == 0 and instance.row.name.startswith("approval"):  # before any timer fires
            incoming.append(as_new(event(EventType.EVENT_RAISED, now, Name="Approve", Input='"yes"')))
        self.timers += [(m.visible_at or now, m.event) for m in out.messages]
        for call in out.activities:
            kind, fields = ((EventType.TASK_FAILED, {"Reason": "disk full", "Details": None})
                            if call.name == "always_fails" else
                            (EventType.TASK_COMPLETED, {"Result": json.dumps(f"{call.name}:{call.input}")}))
            incoming.append(as_new(event(kind, now, TaskScheduledId=call.task_id, **fields)))
        for text in incoming:
            instance.inbox.append(InboxRow(self.next_id, "e", "event", text))
            self.next_id += 1
        instance.history += out.history
        row = instance.row
        row.status, row.next_event_id, row.open_ids, row.retries = (
            out.status, out.next_event_id, out.open_ids, out.retries)
        row.actions, row.history_len = row.actions + out.new_actions, len(instance.history)
        row.custom_status = out.custom_status
        return (out.status, out.output, out.custom_status, out.history, out.new_actions,
                [(a.task_id, a.name, a.input) for a in out.activities], [m.event for m in out.messages],
                out.consumed, out.canceled_timers)


@pytest.mark.parametrize(("name", "raw_input"), [
    ("sequence", json.dumps(json.dumps(["a", "b", "c", "d"]))), ("fan_out", json.dumps(json.dumps(3))), ("timer", None),
    ("approval", None), ("approval_or_timeout", None), ("retry_exhausted", None), ("failing", None),
])
def test_an_episode_continued_in_its_session_writes_exactly_what_a_full_replay_writes(
    name: str, raw_input: str | None
) -> None:
    replayed, continued = Driven(name, raw_input, sessions=False), Driven(name, raw_input, sessions=True)
    resumed = 0
    for number in range(40):
        resumed += continued.session is not None
        assert continued.episode(number) == replayed.episode(number), f"episode {number}"
        if replayed.instance.row.status in (Status.COMPLETED, Status.FAILED):
            break
    else:
        pytest.fail(f"{name} did not finish")
    assert continued.instance.history == replayed.instance.history
    assert continued.session is None  # a finished instance keeps no session
    assert resumed >= 1, "no episode ran in a session"
    if name == "approval_or_timeout":  # the timeout timer was cancelled in a session episode
        assert continued.output == json.dumps("approved") and continued.canceled
