"""Escalations: what waits for a human decision."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from shared.db import rows
from shared.db.database import Conn
from shared.domain.models import EscalationRecord

_COLUMNS = ("id, company_id, team_id, task_id, reason, failure_type, status, action, note, input, created_at,"
            " resolved_at, instance_id, tool_call_id,"
            " (SELECT json_build_object('id', c.id, 'server', c.server_name, 'tool', c.tool_name,"
            " 'arguments', c.arguments, 'status', c.status) FROM tool_calls c WHERE c.id = escalations.tool_call_id)"
            " AS tool_call")

#: insert_escalation -- a new open escalation (at most one open per task)
INSERT = f"""
INSERT INTO escalations (id, company_id, team_id, task_id, reason, failure_type, instance_id, tool_call_id)
VALUES (%(id)s, %(company_id)s, %(team_id)s, %(task_id)s, %(reason)s, %(failure_type)s, %(instance_id)s,
        %(tool_call_id)s)
ON CONFLICT (task_id) WHERE status = 'open' DO NOTHING
RETURNING {_COLUMNS}
"""  # noqa: S608 - SQL built from this module's constants
#: open_for_task -- the open escalation of a task
OPEN_FOR_TASK = f"SELECT {_COLUMNS} FROM escalations WHERE task_id = %(task_id)s AND status = 'open'"  # noqa: S608 - SQL built from this module's constants
#: open_for_team -- the open team-level escalation of a kind (the budget)
OPEN_FOR_TEAM = f"""
SELECT {_COLUMNS} FROM escalations
WHERE team_id = %(team_id)s AND task_id IS NULL AND failure_type = %(failure_type)s AND status = 'open'
"""  # noqa: S608 - SQL built from this module's constants
#: lock_escalation -- one escalation of a company, its team locked first (the filter runs before the row lock)
LOCK = f"""
WITH team AS (
    SELECT t.id FROM teams t JOIN escalations e ON e.team_id = t.id
    WHERE e.id = %(id)s AND e.company_id = %(company_id)s FOR UPDATE OF t
)
SELECT {_COLUMNS} FROM escalations WHERE id = %(id)s AND team_id IN (SELECT id FROM team) FOR UPDATE
"""  # noqa: S608 - SQL built from this module's constants
#: resolve_escalation -- record the human's decision
RESOLVE = f"""
UPDATE escalations SET status = 'resolved', action = %(action)s, note = %(note)s, input = %(input)s,
       resolved_at = now(), resolved_by = %(user_id)s
WHERE id = %(id)s AND status = 'open'
RETURNING {_COLUMNS}
"""  # noqa: S608 - SQL built from this module's constants
#: lock_escalation_unscoped -- one escalation, its team locked first (orchestration steps)
LOCK_ANY = f"""
WITH team AS (
    SELECT t.id FROM teams t JOIN escalations e ON e.team_id = t.id WHERE e.id = %(id)s FOR UPDATE OF t
)
SELECT {_COLUMNS} FROM escalations WHERE id = %(id)s AND team_id IN (SELECT id FROM team) FOR UPDATE
"""  # noqa: S608 - SQL built from this module's constants
#: open_tool_approvals -- a team's tool approvals still waiting for a person
OPEN_TOOL_APPROVALS = f"""
SELECT {_COLUMNS} FROM escalations
WHERE team_id = %(team_id)s AND failure_type = 'tool_approval' AND status = 'open'
"""  # noqa: S608 - SQL built from this module's constants
#: get_escalation -- one escalation (unscoped)
GET = f"SELECT {_COLUMNS} FROM escalations WHERE id = %(id)s"  # noqa: S608 - SQL built from this module's constants


async def insert(conn: Conn, **params: Any) -> EscalationRecord | None:
    return await rows.one(conn, EscalationRecord, INSERT, {"tool_call_id": None, **params})


async def open_for_task(conn: Conn, task_id: UUID) -> EscalationRecord | None:
    return await rows.one(conn, EscalationRecord, OPEN_FOR_TASK, {"task_id": task_id})


async def open_for_team(conn: Conn, team_id: UUID, failure_type: str) -> EscalationRecord | None:
    return await rows.one(conn, EscalationRecord, OPEN_FOR_TEAM, {"team_id": team_id, "failure_type": failure_type})


async def lock(conn: Conn, escalation_id: UUID, company_id: UUID) -> EscalationRecord | None:
    return await rows.one(conn, EscalationRecord, LOCK, {"id": escalation_id, "company_id": company_id})


async def resolve(conn: Conn, escalation_id: UUID, *, action: str, note: str | None, input: str | None,
                  user_id: UUID | None) -> EscalationRecord | None:
    return await rows.one(conn, EscalationRecord, RESOLVE, {
        "id": escalation_id, "action": action, "note": note, "input": input, "user_id": user_id})


async def lock_any(conn: Conn, escalation_id: UUID) -> EscalationRecord | None:
    return await rows.one(conn, EscalationRecord, LOCK_ANY, {"id": escalation_id})


async def open_tool_approvals(conn: Conn, team_id: UUID) -> list[EscalationRecord]:
    return await rows.many(conn, EscalationRecord, OPEN_TOOL_APPROVALS, {"team_id": team_id})


async def get(conn: Conn, escalation_id: UUID) -> EscalationRecord | None:
    return await rows.one(conn, EscalationRecord, GET, {"id": escalation_id})


async def page(conn: Conn, company_id: UUID, *, status: str | None, team_id: UUID | None, task_id: UUID | None,
               limit: int) -> list[EscalationRecord]:
    where = ["company_id = %(company_id)s"]
    if status:
        where.append("status = %(status)s")
    if team_id:
        where.append("team_id = %(team_id)s")
    if task_id:
        where.append("task_id = %(task_id)s")
    statement = (f"SELECT {_COLUMNS} FROM escalations WHERE " + " AND ".join(where)  # noqa: S608 - SQL built from this module's constants
                 + " ORDER BY created_at DESC, id DESC LIMIT %(limit)s")
    return await rows.many(conn, EscalationRecord, statement, {
        "company_id": company_id, "status": status, "team_id": team_id, "task_id": task_id, "limit": limit})
