"""Escalations: a task (or a team's budget) that needs a human decision, and that decision."""

from __future__ import annotations

import logging
from uuid import UUID

from shared.db import journal
from shared.db.database import Database, Tx
from shared.db.repositories import escalations as repo
from shared.db.repositories import tasks as task_repo
from shared.db.repositories import teams as team_repo
from shared.domain.errors import Conflict, Invalid, NotFound
from shared.domain.ids import uuid7
from shared.domain.models import Actor, EscalationRecord, EscalationResolve, Principal
from shared.domain.states import TaskStatus, task_sources
from shared.orchestration_names import Event

log = logging.getLogger(__name__)

#: The failure type of a tool call waiting for a person, and the two actions that decide it.
TOOL_APPROVAL = "tool_approval"
APPROVAL_ACTIONS = ("approve", "deny")


class EscalationService:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def open(
        self,
        *,
        team_id: UUID,
        reason: str,
        failure_type: str,
        actor: Actor,
        task_id: UUID | None = None,
        instance_id: str | None = None,
    ) -> EscalationRecord:
        """Open once: the task moves to `escalated` and one open escalation exists, however often called."""

        async def work(tx: Tx) -> tuple[EscalationRecord, bool]:
            team = await team_repo.lock(tx.conn, team_id)  # lock order: team, then task
            if team is None:
                raise NotFound("team not found")
            if task_id is not None:
                existing = await repo.open_for_task(tx.conn, task_id)
            else:
                existing = await repo.open_for_team(tx.conn, team_id, failure_type)
            if existing is not None:
                return existing, False
            if task_id is not None:
                task = await task_repo.get(tx.conn, task_id)
                if task is None:
                    raise NotFound("task not found")
                if task.status != TaskStatus.ESCALATED:
                    await journal.transition_task(
                        tx, entity_id=task_id, target=TaskStatus.ESCALATED.value,
                        sources=[s.value for s in task_sources(TaskStatus.ESCALATED)], actor=actor,
                        payload={"reason": reason, "failure_type": failure_type},
                    )
            escalation = await repo.insert(tx.conn, id=uuid7(), company_id=team.company_id, team_id=team_id,
                                           task_id=task_id, reason=reason, failure_type=failure_type,
                                           instance_id=instance_id)
            assert escalation is not None  # the open-per-task check above ran under the team row lock
            await journal.record(
                tx, company_id=team.company_id, team_id=team_id, task_id=task_id, actor=actor,
                event_type="escalation.created",
                data={"escalation_id": str(escalation.id), "reason": reason, "failure_type": failure_type},
            )
            return escalation, True

        escalation, created = await self.db.atomic(work)
        if created:
            # The budget-escalation alert (infra/modules/alerts.bicep) queries this log line.
            log.warning("escalation.created", extra={"failure_type": failure_type, "team_id": str(team_id),
                                                     "task_id": str(task_id) if task_id else None,
                                                     "escalation_id": str(escalation.id)})
        return escalation

    async def resolve(self, tx: Tx, principal: Principal, escalation_id: UUID,
                      decision: EscalationResolve) -> tuple[EscalationRecord, UUID | None]:
        """Record the decision and queue its signal to the waiting orchestration, in the caller's
        transaction; (the escalation, the signal id or None when nothing needs telling).

        Resolving again with the same action is idempotent (the same answer, no second signal); a
        different action on a resolved escalation is a conflict.
        """
        current = await repo.lock(tx.conn, escalation_id, principal.company_id)
        if current is None:
            raise NotFound("escalation not found")
        approval = current.failure_type == TOOL_APPROVAL
        if approval != (decision.action in APPROVAL_ACTIONS):
            expected = "approve or deny" if approval else "retry, skip, fail or provide_input"
            raise Invalid(f"this escalation ({current.failure_type}) is resolved with {expected}")
        if current.status == "resolved":
            if current.action == decision.action:
                return current, None
            raise Conflict(f"the escalation is already resolved with {current.action!r}")
        resolved = await repo.resolve(tx.conn, escalation_id, action=decision.action, note=decision.note,
                                      input=decision.input, user_id=principal.user_id)
        assert resolved is not None  # locked and open above
        await journal.record(
            tx, company_id=resolved.company_id, team_id=resolved.team_id, task_id=resolved.task_id,
            actor=principal.actor, event_type="escalation.resolved",
            data={"escalation_id": str(resolved.id), "action": decision.action, "note": decision.note},
        )
        signal_id = None
        if resolved.instance_id:
            signal_id = await journal.signal(
                tx, company_id=resolved.company_id, team_id=resolved.team_id, instance_id=resolved.instance_id,
                name=Event.ESCALATION_RESOLVED,
                payload={"escalation_id": str(resolved.id), "action": decision.action, "note": decision.note,
                         "input": decision.input},
            )
        return resolved, signal_id

    async def get(self, escalation_id: UUID) -> EscalationRecord:
        async with self.db.connection() as conn:
            escalation = await repo.get(conn, escalation_id)
        if escalation is None:
            raise NotFound("escalation not found")
        return escalation

    async def open_for_task(self, task_id: UUID) -> EscalationRecord | None:
        async with self.db.connection() as conn:
            return await repo.open_for_task(conn, task_id)

    async def list(
        self,
        company_id: UUID,
        *,
        status: str | None = "open",
        team_id: UUID | None = None,
        task_id: UUID | None = None,
        limit: int = 100,
    ) -> list[EscalationRecord]:
        async with self.db.connection() as conn:
            return await repo.page(conn, company_id, status=status, team_id=team_id, task_id=task_id, limit=limit)
