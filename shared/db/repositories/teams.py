"""Teams and their members: each read is one round trip (`json_agg` for nested data)."""

from __future__ import annotations

from decimal import Decimal
from typing import Any
from uuid import UUID

from pydantic import BaseModel

from shared.db import rows
from shared.db.database import Conn
from shared.db.pagination import after_cursor
from shared.domain.models import MemberPublic, TeamPublic, TeamScope

_MEMBERS = """
(SELECT coalesce(json_agg(json_build_object(
    'id', m.id, 'team_id', m.team_id, 'role', m.role, 'name', m.name,
    'specialization', m.specialization, 'model', m.model, 'status', m.status)
    ORDER BY m.role, m.created_at, m.id), '[]'::json)
 FROM team_members m WHERE m.team_id = t.id)
"""

_TASKS = """
(SELECT coalesce(json_agg(json_build_object(
    'id', k.id, 'team_id', k.team_id, 'title', k.title, 'description', k.description,
    'acceptance_criteria', k.acceptance_criteria, 'dependencies', k.dependencies,
    'specialization', k.specialization, 'status', k.status, 'assigned_to', k.assigned_to,
    'revision_count', k.revision_count, 'max_revisions', k.max_revisions, 'feedback', k.feedback,
    'output', k.output, 'created_at', k.created_at, 'started_at', k.started_at,
    'completion_time', k.completion_time, 'version', k.version)
    ORDER BY k.position, k.id), '[]'::json)
 FROM tasks k WHERE k.team_id = t.id)
"""

_COSTS = """
(SELECT json_build_object('total_usd', coalesce(sum(c.cost_usd), 0), 'input_tokens',
        coalesce(sum(c.input_tokens), 0), 'output_tokens', coalesce(sum(c.output_tokens), 0),
        'calls', count(*))
 FROM cost_tracking c WHERE c.team_id = t.id AND c.status IN ('settled', 'estimated'))
"""

TEAM_COLUMNS = """
t.id, t.company_id, t.name, t.goal, t.status, t.budget_usd, t.spent_usd, t.workers, t.approve_plan,
t.awaiting_plan_approval, t.instance_id, t.created_by, t.created_at, t.started_at, t.completed_at,
t.result, t.version, t.tools
"""


def team_select(*, members: bool, tasks: bool, costs: bool) -> str:
    parts = [TEAM_COLUMNS]
    parts.append(f", {_MEMBERS} AS members" if members else ", NULL::json AS members")
    parts.append(f", {_TASKS} AS tasks" if tasks else ", NULL::json AS tasks")
    parts.append(f", {_COSTS} AS costs" if costs else ", NULL::json AS costs")
    return "SELECT " + "".join(parts) + " FROM teams t"  # noqa: S608 - SQL built from this module's constants


#: get_team_detail -- a team with members, tasks and cost totals, scoped to its company
GET_TEAM_DETAIL = team_select(members=True, tasks=True, costs=True) + (
    " WHERE t.id = %(id)s AND t.company_id = %(company_id)s"
)

#: insert_team -- a new team, pending
INSERT_TEAM = """
INSERT INTO teams (id, company_id, name, goal, budget_usd, workers, approve_plan, created_by, tools)
VALUES (%(id)s, %(company_id)s, %(name)s, %(goal)s, %(budget_usd)s, %(workers)s, %(approve_plan)s,
        %(created_by)s, %(tools)s)
"""

#: insert_member -- one member of a new team
INSERT_MEMBER = """
INSERT INTO team_members (id, team_id, role, name, specialization, model)
VALUES (%(id)s, %(team_id)s, %(role)s, %(name)s, %(specialization)s, %(model)s)
ON CONFLICT (team_id, name) DO NOTHING
"""

#: list_members -- the manager first, then workers in creation order
LIST_MEMBERS = """
SELECT id, team_id, role, name, specialization, model, status FROM team_members
WHERE team_id = %(team_id)s ORDER BY role, created_at, id
"""

#: lock_workers -- the workers of a team, locked, in creation order (staffing renames them)
LOCK_WORKERS = """
SELECT id, team_id, role, name, specialization, model, status FROM team_members
WHERE team_id = %(team_id)s AND role = 'worker' ORDER BY created_at, id FOR UPDATE
"""

#: rename_member -- the plan names a worker and gives it a specialisation
RENAME_MEMBER = "UPDATE team_members SET name = %(name)s, specialization = %(spec)s WHERE id = %(id)s"

#: set_awaiting_plan -- flag the plan as waiting for (or done with) human approval
SET_AWAITING_PLAN = """
UPDATE teams SET awaiting_plan_approval = %(awaiting)s
WHERE id = %(id)s AND awaiting_plan_approval <> %(awaiting)s
RETURNING company_id
"""

_SCOPE_COLUMNS = """
id, company_id, status, version, budget_usd, spent_usd, reserved_usd, instance_id, approve_plan,
awaiting_plan_approval, goal, tools
"""

#: team_scope -- company, status and budget of a team (unscoped: orchestration steps)
TEAM_SCOPE = f"SELECT {_SCOPE_COLUMNS} FROM teams WHERE id = %(id)s"  # noqa: S608 - SQL built from this module's constants

#: lock_team -- the team row, locked: the first lock of any transaction that writes team data
LOCK_TEAM = f"SELECT {_SCOPE_COLUMNS} FROM teams WHERE id = %(id)s FOR UPDATE"  # noqa: S608 - SQL built from this module's constants

#: set_budget -- a human changed the budget; never below what is spent and reserved
SET_BUDGET = """
UPDATE teams SET budget_usd = %(budget)s
WHERE id = %(id)s AND (%(budget)s::numeric IS NULL OR spent_usd + reserved_usd <= %(budget)s::numeric)
"""


async def insert_team(conn: Conn, **params: Any) -> None:
    await conn.execute(INSERT_TEAM, {"tools": [], **params})


async def insert_member(conn: Conn, **params: Any) -> None:
    await conn.execute(INSERT_MEMBER, params)


async def detail(conn: Conn, team_id: UUID, company_id: UUID) -> TeamPublic | None:
    return await rows.one(conn, TeamPublic, GET_TEAM_DETAIL, {"id": team_id, "company_id": company_id})


async def scope(conn: Conn, team_id: UUID) -> TeamScope | None:
    return await rows.one(conn, TeamScope, TEAM_SCOPE, {"id": team_id})


async def lock(conn: Conn, team_id: UUID) -> TeamScope | None:
    return await rows.one(conn, TeamScope, LOCK_TEAM, {"id": team_id})


async def members(conn: Conn, team_id: UUID) -> list[MemberPublic]:
    return await rows.many(conn, MemberPublic, LIST_MEMBERS, {"team_id": team_id})


async def lock_workers(conn: Conn, team_id: UUID) -> list[MemberPublic]:
    return await rows.many(conn, MemberPublic, LOCK_WORKERS, {"team_id": team_id})


async def rename_member(conn: Conn, member_id: UUID, name: str, specialization: str) -> None:
    await conn.execute(RENAME_MEMBER, {"id": member_id, "name": name, "spec": specialization})


async def set_awaiting_plan(conn: Conn, team_id: UUID, awaiting: bool) -> UUID | None:
    company_id: UUID | None = await rows.value(conn, SET_AWAITING_PLAN, {"id": team_id, "awaiting": awaiting})
    return company_id


async def set_budget(conn: Conn, team_id: UUID, budget: Decimal | None) -> bool:
    """False when the new budget is below what the team has spent and reserved."""
    return await rows.run(conn, SET_BUDGET, {"id": team_id, "budget": budget}) == 1


async def page(
    conn: Conn,
    company_id: UUID,
    *,
    status: str | None,
    include_members: bool,
    include_tasks: bool,
    limit: int,
    cursor: str | None,
) -> list[TeamPublic]:
    """Newest first, keyset-paginated; `limit + 1` rows so the caller knows a next page exists."""
    where = ["t.company_id = %(company_id)s"]
    params: dict[str, Any] = {"company_id": company_id, "limit": limit + 1}
    if status is not None:
        where.append("t.status = %(status)s")
        params["status"] = status
    if cursor:
        where.append(after_cursor(cursor, params, "t"))
    statement = (
        team_select(members=include_members, tasks=include_tasks, costs=False)
        + " WHERE " + " AND ".join(where)
        + " ORDER BY t.created_at DESC, t.id DESC LIMIT %(limit)s"
    )
    return await rows.many(conn, TeamPublic, statement, params)


#: teams_in_scope -- the requested team (if it is the company's) and the company's newest teams
TEAMS_IN_SCOPE = """
SELECT id, true AS requested FROM teams WHERE id = %(team_id)s AND company_id = %(company_id)s
UNION ALL
(SELECT id, false FROM teams WHERE company_id = %(company_id)s ORDER BY created_at DESC, id DESC LIMIT %(limit)s)
"""

#: user_of_team_company -- is this user in the company that owns this team?
USER_OF_TEAM_COMPANY = """
SELECT 1 FROM teams t JOIN users u ON u.company_id = t.company_id WHERE t.id = %(team_id)s AND u.id = %(user_id)s
"""


class ScopedTeam(BaseModel):
    id: UUID
    requested: bool


async def in_scope(conn: Conn, company_id: UUID, team_id: UUID | None, limit: int) -> list[ScopedTeam]:
    return await rows.many(conn, ScopedTeam, TEAMS_IN_SCOPE, {"team_id": team_id, "company_id": company_id,
                                                              "limit": limit})


async def user_in_team_company(conn: Conn, team_id: UUID, user_id: UUID) -> bool:
    return await rows.value(conn, USER_OF_TEAM_COMPANY, {"team_id": team_id, "user_id": user_id}) is not None
