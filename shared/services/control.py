"""The controls a person uses on a running team: start, pause, resume, cancel, approve the plan,
retry a task, resolve an escalation.

Each one is a single transaction (the guarded state change, its audit and outbox rows, and the
signal its orchestration must receive), then a dispatch of that signal. A dispatch that fails loses
nothing: the signal stays in the outbox and the timer sends it (`shared.services.signals`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from uuid import UUID

from shared.db import journal
from shared.db.database import Database, Tx
from shared.db.repositories import escalations as escalation_repo
from shared.db.repositories import teams as team_repo
from shared.domain.errors import Conflict, NotFound
from shared.domain.models import (
    EscalationRecord,
    EscalationResolve,
    PlannedTaskIn,
    Principal,
    TaskRecord,
    TeamCreate,
    TeamPublic,
    TeamScope,
)
from shared.domain.states import TaskStatus, TeamStatus
from shared.orchestration_names import TEAM_ORCHESTRATOR, Event, team_instance_id, team_orchestration_input
from shared.services.escalations import EscalationService
from shared.services.signals import OrchestrationClient, SignalDispatcher
from shared.services.tasks import TaskService
from shared.services.teams import TeamService


@dataclass(frozen=True)
class OrchestrationSettings:
    """What a new team orchestration is started with (it travels in the input: replays never read it)."""

    max_parallel: int = 3
    escalation_timeout_hours: float = 24.0
    tool_approval_timeout_hours: float | None = None  #: unset: the escalation timeout


class RunControl:
    def __init__(self, db: Database, *, teams: TeamService, tasks: TaskService, escalations: EscalationService,
                 signals: SignalDispatcher, settings: OrchestrationSettings | None = None) -> None:
        self.db = db
        self.teams = teams
        self.tasks = tasks
        self.escalations = escalations
        self.signals = signals
        self.settings = settings or OrchestrationSettings()

    async def _then_dispatch(self, client: OrchestrationClient | None, signal_ids: Sequence[UUID | None]) -> None:
        await self.signals.dispatch(client, [s for s in signal_ids if s is not None])

    async def _signal_team(self, tx: Tx, scope: TeamScope, event: Event, payload: dict[str, str] | None = None
                           ) -> UUID | None:
        if not scope.instance_id:
            return None  # never started: no orchestration to tell
        return await journal.signal(tx, company_id=scope.company_id, team_id=scope.id,
                                    instance_id=scope.instance_id, name=event, payload=payload or {})

    async def create(self, principal: Principal, team_in: TeamCreate, client: OrchestrationClient | None
                     ) -> TeamPublic:
        """A new team; started at once when `auto_start` asks for it."""
        team = await self.teams.create(principal, team_in)
        if not team_in.auto_start:
            return team
        await self.start(principal, team.id, client)
        return await self.teams.get(principal.company_id, team.id)

    async def start(self, principal: Principal, team_id: UUID, client: OrchestrationClient | None) -> TeamScope:
        """pending -> planning, and the orchestration started (from the outbox)."""
        instance_id = team_instance_id(team_id)

        async def work(tx: Tx) -> tuple[TeamScope, UUID]:
            moved = await self.teams.start(team_id, principal.actor, company_id=principal.company_id,
                                           instance_id=instance_id, tx=tx)
            signal_id = await journal.signal(
                tx, company_id=moved.company_id, team_id=team_id, instance_id=instance_id, kind="start",
                name=TEAM_ORCHESTRATOR,
                payload=team_orchestration_input(
                    team_id, max_parallel=self.settings.max_parallel,
                    escalation_timeout_hours=self.settings.escalation_timeout_hours,
                    tool_approval_timeout_hours=self.settings.tool_approval_timeout_hours))
            return moved, signal_id

        moved, signal_id = await self.db.atomic(work)
        await self._then_dispatch(client, [signal_id])
        return moved

    async def _control(self, principal: Principal, team_id: UUID, target: TeamStatus, event: Event,
                       client: OrchestrationClient | None) -> TeamScope:
        async def work(tx: Tx) -> tuple[TeamScope, list[UUID | None]]:
            denied: list[UUID | None] = []
            if target is TeamStatus.CANCELLED:
                moved = await self.teams.cancel(team_id, principal.actor, company_id=principal.company_id, tx=tx)
                denied = await self._deny_tool_approvals(tx, moved, principal)
            else:
                sources = (TeamStatus.PAUSED,) if target is TeamStatus.ACTIVE else None
                moved = await self.teams.move(tx, team_id, target, principal.actor, sources=sources,
                                              company_id=principal.company_id)
            return moved, [await self._signal_team(tx, moved, event), *denied]

        moved, signal_ids = await self.db.atomic(work)
        await self._then_dispatch(client, signal_ids)
        return moved

    async def _deny_tool_approvals(self, tx: Tx, team: TeamScope, principal: Principal) -> list[UUID | None]:
        """A cancelled team's tool calls waiting for approval are denied, so their tasks stop waiting."""
        signals: list[UUID | None] = []
        for waiting in await escalation_repo.open_tool_approvals(tx.conn, team.id):
            decision = EscalationResolve(action="deny", note="the team was cancelled")
            _, signal_id = await self.escalations.resolve(tx, principal, waiting.id, decision)
            signals.append(signal_id)
        return signals

    async def pause(self, principal: Principal, team_id: UUID, client: OrchestrationClient | None) -> TeamScope:
        return await self._control(principal, team_id, TeamStatus.PAUSED, Event.PAUSE, client)

    async def resume(self, principal: Principal, team_id: UUID, client: OrchestrationClient | None) -> TeamScope:
        return await self._control(principal, team_id, TeamStatus.ACTIVE, Event.RESUME, client)

    async def cancel(self, principal: Principal, team_id: UUID, client: OrchestrationClient | None) -> TeamScope:
        return await self._control(principal, team_id, TeamStatus.CANCELLED, Event.CANCEL, client)

    async def approve_plan(self, principal: Principal, team_id: UUID, tasks: Sequence[PlannedTaskIn] | None,
                           client: OrchestrationClient | None) -> TeamScope:
        """The plan waiting for approval goes ahead, replaced first by the human's edit when given."""

        async def work(tx: Tx) -> tuple[TeamScope, UUID | None]:
            scope = await team_repo.lock(tx.conn, team_id)
            if scope is None or scope.company_id != principal.company_id:
                raise NotFound("team not found")
            if not scope.awaiting_plan_approval:
                raise Conflict("the team's plan is not waiting for approval")
            if not scope.instance_id:
                raise Conflict("the team has no running orchestration")
            if tasks is not None:
                await self.tasks.create_plan(team_id, tasks, principal.actor, replace_pending=True, tx=tx)
            await self.teams.set_awaiting_plan_approval(team_id, False, principal.actor, tx=tx)
            signal_id = await self._signal_team(tx, scope, Event.PLAN_APPROVED,
                                                {"edited": str(tasks is not None).lower(),
                                                 "by": str(principal.user_id)})
            return scope, signal_id

        scope, signal_id = await self.db.atomic(work)
        await self._then_dispatch(client, [signal_id])
        return scope

    async def resolve_escalation(self, principal: Principal, escalation_id: UUID, decision: EscalationResolve,
                                 client: OrchestrationClient | None) -> EscalationRecord:
        async def work(tx: Tx) -> tuple[EscalationRecord, UUID | None]:
            return await self.escalations.resolve(tx, principal, escalation_id, decision)

        resolved, signal_id = await self.db.atomic(work)
        await self._then_dispatch(client, [signal_id])
        return resolved

    async def retry_task(self, principal: Principal, task_id: UUID, client: OrchestrationClient | None) -> TaskRecord:
        """An escalated task: its escalation is resolved with `retry`. A failed task: the team's
        orchestration is told to run it again (only while the team runs)."""
        task = await self.tasks.get(task_id, company_id=principal.company_id)
        if task.status == TaskStatus.ESCALATED:
            waiting = await self.escalations.open_for_task(task.id)
            if waiting is None:
                raise Conflict("the task is escalated but has no open escalation")
            await self.resolve_escalation(principal, waiting.id,
                                          EscalationResolve(action="retry", note="retried from the task"), client)
            return task
        if task.status != TaskStatus.FAILED:
            raise Conflict(f"only a failed or escalated task can be retried (this one is {task.status.value})")

        async def work(tx: Tx) -> UUID | None:
            scope = await team_repo.lock(tx.conn, task.team_id)
            if scope is None:
                raise NotFound("team not found")
            if scope.status not in (TeamStatus.ACTIVE, TeamStatus.PAUSED) or not scope.instance_id:
                raise Conflict(f"the team is {scope.status.value}: only a running team can retry a task")
            return await self._signal_team(tx, scope, Event.RETRY, {"task_id": str(task.id)})

        signal_id = await self.db.atomic(work)
        await self._then_dispatch(client, [signal_id])
        return task
