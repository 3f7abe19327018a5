"""Tasks: the plan's rows, their reads, and the task history."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any
from uuid import UUID

from shared.db import rows
from shared.db.database import Conn
from shared.db.pagination import after_cursor
from shared.domain.models import AuditEventPublic, TaskRecord

TASK_COLUMNS = """
k.id, k.team_id, k.company_id, k.plan_key, k.position, k.title, k.description, k.acceptance_criteria,
k.dependencies, k.specialization, k.status, k.assigned_to, k.revision_count, k.max_revisions,
k.feedback, k.output, k.created_at, k.started_at, k.completion_time, k.version
"""

#: insert_task -- one task of a plan (idempotent per plan key)
INSERT_TASK = """
INSERT INTO tasks (id, team_id, company_id, plan_key, position, title, description, acceptance_criteria,
                   dependencies, specialization, max_revisions)
VALUES (%(id)s, %(team_id)s, %(company_id)s, %(plan_key)s, %(position)s, %(title)s, %(description)s,
        %(acceptance_criteria)s, %(dependencies)s, %(specialization)s, %(max_revisions)s)
ON CONFLICT (team_id, plan_key) DO NOTHING
RETURNING id
"""

#: get_task -- one task (unscoped: orchestration steps)
GET_TASK = f"SELECT {TASK_COLUMNS} FROM tasks k WHERE k.id = %(id)s"  # noqa: S608 - SQL built from this module's constants
#: get_task_scoped -- one task of a company
GET_TASK_SCOPED = (
    f"SELECT {TASK_COLUMNS} FROM tasks k WHERE k.id = %(id)s AND k.company_id = %(company_id)s"  # noqa: S608 - SQL built from this module's constants
)
#: list_team_tasks -- a team's tasks in plan order (optionally of one status)
LIST_TEAM_TASKS = f"SELECT {TASK_COLUMNS} FROM tasks k WHERE k.team_id = %(team_id)s"  # noqa: S608 - SQL built from this module's constants
#: tasks_by_ids -- some tasks of a team (a task's dependencies), in plan order
TASKS_BY_IDS = (
    f"SELECT {TASK_COLUMNS} FROM tasks k WHERE k.team_id = %(team_id)s AND k.id = ANY(%(ids)s)"  # noqa: S608 - SQL built from this module's constants
    " ORDER BY k.position, k.id"
)

#: count_tasks -- how many tasks a team's plan has (and how many have left `pending`)
COUNT_TASKS = """
SELECT count(*) AS total, count(*) FILTER (WHERE status <> 'pending') AS started
FROM tasks WHERE team_id = %(team_id)s
"""

#: delete_pending_plan -- drop a plan no task of which has started (a human edited it)
DELETE_PENDING_PLAN = "DELETE FROM tasks WHERE team_id = %(team_id)s AND status = 'pending'"

#: task_history -- a task's audit events, oldest first
TASK_HISTORY = """
SELECT id, team_id, task_id, actor_type, actor_id, event_type, payload, created_at
FROM audit_events WHERE task_id = %(task_id)s ORDER BY created_at, id
"""


async def insert(conn: Conn, **params: Any) -> None:
    await conn.execute(INSERT_TASK, params)


async def get(conn: Conn, task_id: UUID, company_id: UUID | None = None) -> TaskRecord | None:
    if company_id is None:
        return await rows.one(conn, TaskRecord, GET_TASK, {"id": task_id})
    return await rows.one(conn, TaskRecord, GET_TASK_SCOPED, {"id": task_id, "company_id": company_id})


async def for_team(conn: Conn, team_id: UUID, *, status: str | None = None) -> list[TaskRecord]:
    statement = LIST_TEAM_TASKS + (" AND k.status = %(status)s" if status else "") + " ORDER BY k.position, k.id"
    return await rows.many(conn, TaskRecord, statement, {"team_id": team_id, "status": status})


async def by_ids(conn: Conn, team_id: UUID, ids: Sequence[UUID]) -> list[TaskRecord]:
    if not ids:
        return []
    return await rows.many(conn, TaskRecord, TASKS_BY_IDS, {"team_id": team_id, "ids": list(ids)})


async def counts(conn: Conn, team_id: UUID) -> tuple[int, int]:
    """(tasks in the plan, tasks that have left `pending`)."""
    cur = await conn.execute(COUNT_TASKS, {"team_id": team_id})
    row = await cur.fetchone()
    assert row is not None
    return int(row["total"]), int(row["started"])


async def delete_pending_plan(conn: Conn, team_id: UUID) -> None:
    await conn.execute(DELETE_PENDING_PLAN, {"team_id": team_id})


async def for_company(
    conn: Conn,
    company_id: UUID,
    *,
    status: str | None,
    team_id: UUID | None,
    limit: int,
    cursor: str | None,
) -> list[TaskRecord]:
    """`status` is a task status or `active` (every non-terminal one); newest first, `limit + 1` rows."""
    where = ["k.company_id = %(company_id)s"]
    params: dict[str, Any] = {"company_id": company_id, "limit": limit + 1}
    if status == "active":
        where.append("k.status NOT IN ('completed', 'failed')")
    elif status is not None:
        where.append("k.status = %(status)s")
        params["status"] = status
    if team_id is not None:
        where.append("k.team_id = %(team_id)s")
        params["team_id"] = team_id
    if cursor:
        where.append(after_cursor(cursor, params, "k"))
    statement = (
        f"SELECT {TASK_COLUMNS} FROM tasks k WHERE " + " AND ".join(where)  # noqa: S608 - SQL built from this module's constants
        + " ORDER BY k.created_at DESC, k.id DESC LIMIT %(limit)s"
    )
    return await rows.many(conn, TaskRecord, statement, params)


async def history(conn: Conn, task_id: UUID) -> list[AuditEventPublic]:
    return await rows.many(conn, AuditEventPublic, TASK_HISTORY, {"task_id": task_id})
