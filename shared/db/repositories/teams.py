"""SQL for teams and their members: each read is one round trip (`json_agg` for nested data)."""

from __future__ import annotations

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
 FROM cost_tracking c WHERE c.team_id = t.id)
"""

TEAM_COLUMNS = """
t.id, t.company_id, t.name, t.goal, t.status, t.budget_usd, t.spent_usd, t.workers, t.approve_plan,
t.awaiting_plan_approval, t.instance_id, t.created_by, t.created_at, t.started_at, t.completed_at,
t.result, t.version
"""


def team_select(*, members: bool, tasks: bool, costs: bool) -> str:
    parts = [TEAM_COLUMNS]
    parts.append(f", {_MEMBERS} AS members" if members else ", NULL::json AS members")
    parts.append(f", {_TASKS} AS tasks" if tasks else ", NULL::json AS tasks")
    parts.append(f", {_COSTS} AS costs" if costs else ", NULL::json AS costs")
    return "SELECT " + "".join(parts) + " FROM teams t"


GET_TEAM_DETAIL = team_select(members=True, tasks=True, costs=True) + (
    " WHERE t.id = %(id)s AND t.company_id = %(company_id)s"
)

INSERT_TEAM = """
INSERT INTO teams (id, company_id, name, goal, budget_usd, workers, approve_plan, created_by)
VALUES (%(id)s, %(company_id)s, %(name)s, %(goal)s, %(budget_usd)s, %(workers)s, %(approve_plan)s,
        %(created_by)s)
RETURNING id, created_at
"""

INSERT_MEMBER = """
INSERT INTO team_members (id, team_id, role, name, specialization, model)
VALUES (%(id)s, %(team_id)s, %(role)s, %(name)s, %(specialization)s, %(model)s)
ON CONFLICT (team_id, name) DO NOTHING
"""

LIST_MEMBERS = """
SELECT id, team_id, role, name, specialization, model, status FROM team_members
WHERE team_id = %(team_id)s ORDER BY role, created_at, id
"""

SET_MEMBER_STATUS = "UPDATE team_members SET status = %(status)s WHERE id = %(id)s AND status <> %(status)s"

SET_AWAITING_PLAN = """
UPDATE teams SET awaiting_plan_approval = %(awaiting)s
WHERE id = %(id)s AND awaiting_plan_approval <> %(awaiting)s
RETURNING company_id
"""

TEAM_SCOPE = """
SELECT id, company_id, status, version, budget_usd, spent_usd, instance_id, approve_plan, awaiting_plan_approval,
       goal
FROM teams WHERE id = %(id)s
"""
