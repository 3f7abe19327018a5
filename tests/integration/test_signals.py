"""Signals to orchestrations go through an outbox: a failed send is never lost, and is sent again.

The Durable client is the edge here (a recording stand-in that can fail); the database is real.
"""

from __future__ import annotations

from types import SimpleNamespace

from shared.db.repositories import signals as repo
from shared.domain.models import Actor, EscalationResolve, PlannedTaskIn

SYSTEM = Actor.system()


class RecordingClient:
    """Records what the orchestrations were told; `down` makes every call fail like an unreachable host."""

    def __init__(self) -> None:
        self.down = False
        self.started: dict[str, object] = {}
        self.events: list[tuple[str, str, dict]] = []
        self.finished: set[str] = set()

    def _check(self) -> None:
        if self.down:
            raise Exception("Cannot connect to host 127.0.0.1:7071")

    async def get_status(self, instance_id):
        self._check()
        return SimpleNamespace(runtime_status="Running" if instance_id in self.started else None)

    async def start_new(self, name, instance_id=None, client_input=None):
        self._check()
        self.started[instance_id] = client_input
        return instance_id

    async def raise_event(self, instance_id, event_name, event_data=None):
        self._check()
        if instance_id in self.finished:
            raise Exception(f"Instance with ID {instance_id} is gone: either completed or failed")
        self.events.append((instance_id, event_name, event_data))


async def make_due(services, team_id) -> None:
    async with services.db.connection() as conn:
        await conn.execute("UPDATE orchestration_signals SET next_attempt_at = now() WHERE team_id = %(t)s",
                           {"t": team_id})


async def test_a_start_that_cannot_be_sent_stays_in_the_outbox_and_the_timer_sends_it_once(make_team, services,
                                                                                           principal):
    team = await make_team()
    client = RecordingClient()
    client.down = True
    moved = await services.control.start(principal, team.id, client)
    assert moved.status == "planning" and client.started == {}
    [pending] = await services.signals.pending(team.id)
    assert pending.kind == "start" and pending.instance_id == moved.instance_id

    client.down = False
    assert await services.signals.dispatch(client) == 0  # backing off after the failure
    await make_due(services, team.id)
    assert await services.signals.dispatch(client) == 1  # what the timer does
    assert list(client.started) == [moved.instance_id]
    assert client.started[moved.instance_id]["team_id"] == str(team.id)
    assert await services.signals.pending(team.id) == []
    assert await services.signals.dispatch(client) == 0


async def test_a_start_whose_answer_was_lost_is_not_started_twice(make_team, services, principal):
    team = await make_team()
    client = RecordingClient()
    moved = await services.control.start(principal, team.id, None)  # committed, the send never happened
    client.started[moved.instance_id] = {"team_id": str(team.id)}  # ...or it happened and the answer was lost
    assert await services.signals.dispatch(client) == 1
    async with services.db.connection() as conn:
        outcome = await (await conn.execute("SELECT outcome FROM orchestration_signals WHERE team_id = %(t)s",
                                            {"t": team.id})).fetchone()
    assert outcome["outcome"] == "already_started"


async def test_an_escalation_decision_survives_a_failed_send_and_arrives_in_order(make_team, services, principal):
    team = await make_team()
    [task] = await services.tasks.create_plan(
        team.id, [PlannedTaskIn(key="only", title="Only task", acceptance_criteria=["done"])], SYSTEM)
    client = RecordingClient()
    await services.control.start(principal, team.id, client)
    escalation = await services.escalations.open(team_id=team.id, task_id=task.id, reason="stuck",
                                                 failure_type="unknown", actor=SYSTEM, instance_id="task-inst")
    client.down = True
    resolved = await services.control.resolve_escalation(principal, escalation.id,
                                                         EscalationResolve(action="retry", note="go"), client)
    assert resolved.status == "resolved" and client.events == []
    # A second resolve with the same action is idempotent: no second signal, and no 409.
    again = await services.control.resolve_escalation(principal, escalation.id,
                                                      EscalationResolve(action="retry", note="go"), client)
    assert again.id == resolved.id
    assert len(await services.signals.pending(team.id)) == 1

    client.down = False
    await make_due(services, team.id)
    assert await services.signals.dispatch(client) == 1
    assert client.events == [("task-inst", "escalation_resolved",
                              {"escalation_id": str(escalation.id), "action": "retry", "note": "go", "input": None})]


async def test_a_signal_to_a_finished_orchestration_is_settled_not_retried(make_team, services, principal):
    team = await make_team()
    client = RecordingClient()
    moved = await services.control.start(principal, team.id, client)
    client.finished.add(moved.instance_id)
    await services.control.cancel(principal, team.id, client)
    assert await services.signals.pending(team.id) == []
    async with services.db.connection() as conn:
        rows = await (await conn.execute(
            "SELECT name, outcome FROM orchestration_signals WHERE team_id = %(t)s ORDER BY created_at",
            {"t": team.id})).fetchall()
    assert [(r["name"], r["outcome"]) for r in rows] == [("team_orchestrator", "started"),
                                                        ("cancel", "instance_finished")]


async def test_a_failed_send_holds_back_the_later_signals_of_the_same_orchestration(make_team, services, principal):
    team = await make_team()
    client = RecordingClient()
    moved = await services.control.start(principal, team.id, client)
    await services.teams.activate(team.id, SYSTEM)
    client.down = True
    await services.control.pause(principal, team.id, client)
    client.down = False
    await services.control.resume(principal, team.id, None)  # written, not yet sent
    assert await services.signals.dispatch(client) == 0  # the resume is due, but waits behind the pause
    async with services.db.connection() as conn:
        assert await repo.due_instances(conn, limit=10) == []
    await make_due(services, team.id)
    assert await services.signals.dispatch(client) == 2
    assert [name for _, name, _ in client.events] == ["pause", "resume"]
    assert moved.instance_id and all(i == moved.instance_id for i, _, _ in client.events)


async def test_controls_of_a_team_that_never_started_write_no_signal(make_team, services, principal):
    team = await make_team()
    client = RecordingClient()
    await services.control.cancel(principal, team.id, client)  # pending -> cancelled: no orchestration yet
    assert await services.signals.pending(team.id) == [] and client.events == []
