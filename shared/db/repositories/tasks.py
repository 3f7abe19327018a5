"""SQL for tasks."""

from __future__ import annotations

TASK_COLUMNS = """
k.id, k.team_id, k.company_id, k.plan_key, k.position, k.title, k.description, k.acceptance_criteria,
k.dependencies, k.specialization, k.status, k.assigned_to, k.revision_count, k.max_revisions,
k.feedback, k.output, k.created_at, k.started_at, k.completion_time, k.version
"""

INSERT_TASK = """
INSERT INTO tasks (id, team_id, company_id, plan_key, position, title, description, acceptance_criteria,
                   dependencies, specialization, max_revisions)
VALUES (%(id)s, %(team_id)s, %(company_id)s, %(plan_key)s, %(position)s, %(title)s, %(description)s,
        %(acceptance_criteria)s, %(dependencies)s, %(specialization)s, %(max_revisions)s)
ON CONFLICT (team_id, plan_key) DO NOTHING
RETURNING id
"""

TASK_BY_PLAN_KEY = "SELECT id FROM tasks WHERE team_id = %(team_id)s AND plan_key = %(plan_key)s"

GET_TASK = f"SELECT {TASK_COLUMNS} FROM tasks k WHERE k.id = %(id)s"
GET_TASK_SCOPED = f"SELECT {TASK_COLUMNS} FROM tasks k WHERE k.id = %(id)s AND k.company_id = %(company_id)s"

LIST_TEAM_TASKS = f"SELECT {TASK_COLUMNS} FROM tasks k WHERE k.team_id = %(team_id)s"

DELETE_PENDING_PLAN = """
DELETE FROM tasks WHERE team_id = %(team_id)s AND status = 'pending'
RETURNING id
"""

TASK_HISTORY = """
SELECT id, team_id, task_id, actor_type, actor_id, event_type, payload, created_at
FROM audit_events WHERE task_id = %(task_id)s ORDER BY created_at, id
"""
