"""Escalations: a task (or a team's budget) that needs a human decision, and that decision."""

from __future__ import annotations

import logging
from typing import Any
from uuid import UUID

from shared.db import journal
from shared.db.database import Database
from shared.domain.errors import Conflict, NotFound
from shared.domain.ids import uuid7
from shared.domain.models import Actor, EscalationPublic, EscalationResolve, Principal
from shared.domain.states import TaskStatus, task_sources

log = logging.getLogger(__name__)

_COLUMNS = "id, team_id, task_id, reason, failure_type, status, action, note, input, created_at, resolved_at"

_INSERT = f"""
INSERT INTO escalations (id, company_id, team_id, task_id, reason, failure_type, instance_id)
VALUES (%(id)s, %(company_id)s, %(team_id)s, %(task_id)s, %(reason)s, %(failure_type)s, %(instance_id)s)
ON CONFLICT (task_id) WHERE status = 'open' DO NOTHING
RETURNING {_COLUMNS}
"""
_OPEN_FOR_TASK = f"SELECT {_COLUMNS} FROM escalations WHERE task_id = %(task_id)s AND status = 'open'"
_OPEN_FOR_TEAM = f"""
SELECT {_COLUMNS} FROM escalations
WHERE team_id = %(team_id)s AND task_id IS NULL AND failure_type = %(failure_type)s AND status = 'open'
"""
_RESOLVE = f"""
UPDATE escalations SET status = 'resolved', action = %(action)s, note = %(note)s, input = %(input)s,
       resolved_at = now(), resolved_by = %(user_id)s
WHERE id = %(id)s AND company_id = %(company_id)s AND status = 'open'
RETURNING {_COLUMNS}, instance_id, company_id
"""
_EXISTS = "SELECT status FROM escalations WHERE id = %(id)s AND company_id = %(company_id)s"
_LIST = f"""
SELECT {_COLUMNS} FROM escalations WHERE company_id = %(company_id)s {{status}} {{team}}
ORDER BY created_at DESC, id DESC LIMIT %(limit)s
"""


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
    ) -> EscalationPublic:
        """Open once: the task moves to `escalated` and one open escalation exists, however often called."""
        async with self.db.transaction() as tx:
            cur = await tx.conn.execute(
                "SELECT company_id FROM teams WHERE id = %(id)s FOR UPDATE", {"id": team_id}
            )
            team = await cur.fetchone()
            if team is None:
                raise NotFound("team not found")
            if task_id is not None:
                cur = await tx.conn.execute(_OPEN_FOR_TASK, {"task_id": task_id})
            else:
                cur = await tx.conn.execute(_OPEN_FOR_TEAM, {"team_id": team_id, "failure_type": failure_type})
            existing = await cur.fetchone()
            if existing is not None:
                return EscalationPublic.model_validate(existing)
            if task_id is not None:
                cur = await tx.conn.execute("SELECT status FROM tasks WHERE id = %(id)s", {"id": task_id})
                task = await cur.fetchone()
                if task is None:
                    raise NotFound("task not found")
                if task["status"] != TaskStatus.ESCALATED.value:
                    await journal.transition(
                        tx, entity="task", entity_id=task_id, target=TaskStatus.ESCALATED.value,
                        sources=[s.value for s in task_sources(TaskStatus.ESCALATED)], actor=actor,
                        payload={"reason": reason, "failure_type": failure_type},
                    )
            cur = await tx.conn.execute(
                _INSERT,
                {"id": uuid7(), "company_id": team["company_id"], "team_id": team_id, "task_id": task_id,
                 "reason": reason, "failure_type": failure_type, "instance_id": instance_id},
            )
            row = await cur.fetchone()
            assert row is not None  # the open-per-task check above ran under the team row lock
            escalation = EscalationPublic.model_validate(row)
            await journal.record(
                tx, company_id=team["company_id"], team_id=team_id, task_id=task_id, actor=actor,
                event_type="escalation.created",
                data={"escalation_id": str(escalation.id), "reason": reason, "failure_type": failure_type},
            )
        # The budget-escalation alert (infra/modules/alerts.bicep) queries this log line.
        log.warning("escalation.created", extra={"failure_type": failure_type, "team_id": str(team_id),
                                                 "task_id": str(task_id) if task_id else None,
                                                 "escalation_id": str(escalation.id)})
        return escalation

    async def resolve(
        self, principal: Principal, escalation_id: UUID, decision: EscalationResolve
    ) -> tuple[EscalationPublic, str | None]:
        """Record the decision; return it with the instance id of the orchestration waiting for it."""
        async with self.db.transaction() as tx:
            cur = await tx.conn.execute(
                _RESOLVE,
                {"id": escalation_id, "company_id": principal.company_id, "action": decision.action,
                 "note": decision.note, "input": decision.input, "user_id": principal.user_id},
            )
            row = await cur.fetchone()
            if row is None:
                cur = await tx.conn.execute(_EXISTS, {"id": escalation_id, "company_id": principal.company_id})
                if await cur.fetchone() is None:
                    raise NotFound("escalation not found")
                raise Conflict("the escalation is already resolved")
            escalation = EscalationPublic.model_validate(row)
            await journal.record(
                tx, company_id=row["company_id"], team_id=escalation.team_id, task_id=escalation.task_id,
                actor=principal.actor, event_type="escalation.resolved",
                data={"escalation_id": str(escalation.id), "action": decision.action, "note": decision.note},
            )
        return escalation, row["instance_id"]

    async def get(self, escalation_id: UUID) -> EscalationPublic:
        async with self.db.connection() as conn:
            cur = await conn.execute(f"SELECT {_COLUMNS} FROM escalations WHERE id = %(id)s", {"id": escalation_id})
            row = await cur.fetchone()
        if row is None:
            raise NotFound("escalation not found")
        return EscalationPublic.model_validate(row)

    async def list(
        self,
        company_id: UUID,
        *,
        status: str | None = "open",
        team_id: UUID | None = None,
        task_id: UUID | None = None,
        limit: int = 100,
    ) -> list[EscalationPublic]:
        params: dict[str, Any] = {"company_id": company_id, "status": status, "team_id": team_id,
                                  "task_id": task_id, "limit": limit}
        statement = _LIST.format(
            status="AND status = %(status)s" if status else "",
            team=("AND team_id = %(team_id)s" if team_id else "") + (" AND task_id = %(task_id)s" if task_id else ""),
        )
        async with self.db.connection() as conn:
            cur = await conn.execute(statement, params)
            return [EscalationPublic.model_validate(r) for r in await cur.fetchall()]
