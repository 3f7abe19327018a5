"""The data the seed specs assumed: a team with tasks in several states, written as the app would
have left them mid-run (straight to the tables: a real plan takes a whole run to get there)."""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg


@dataclass
class SeededTeam:
    id: str
    tasks: list[dict[str, Any]]


#: (title, status, revisions, minutes from the team's start to the task's start and end, depends on)
SEED_TASKS = [
    ("Research price sources", "completed", 0, (0, 4), []),
    ("Design the scraper", "completed", 1, (4, 11), [0]),
    ("Write the parser", "review", 0, (11, None), [1]),
    ("Store prices in a table", "revision_requested", 1, (12, None), [1]),
    ("Schedule daily runs", "pending", 0, (None, None), [2, 3]),
    ("Alert on price drops", "failed", 0, (5, 9), [0]),
]


def seed_team_tasks(database_url: str, team_id: str) -> list[dict[str, Any]]:
    """Tasks in several states, written as the app would have left them mid-run (no in-progress
    task: the seed's filter test expects none). Straight to the tables: a real plan takes a run."""
    start = datetime.now(UTC) - timedelta(minutes=20)
    ids = [str(uuid.uuid4()) for _ in SEED_TASKS]
    rows: list[dict[str, Any]] = []
    with psycopg.connect(database_url) as conn:
        conn.execute("UPDATE teams SET status = 'active', started_at = %s, version = version + 2 WHERE id = %s",
                     (start, team_id))
        member = conn.execute("SELECT id FROM team_members WHERE team_id = %s AND role = 'worker' ORDER BY name"
                              " LIMIT 1", (team_id,)).fetchone()
        assert member is not None, "a new team has its workers"
        worker = member[0]
        for position, (title, status, revisions, (began, ended), deps) in enumerate(SEED_TASKS):
            row = {
                "id": ids[position], "title": title, "status": status, "position": position,
                "description": f"{title} for the product price scraper.",
                "acceptance_criteria": [f"{title} is done", "the reviewer approves it"],
                "output": f"{title}: finished work." if status in ("completed", "review") else None,
                "started_at": start + timedelta(minutes=began) if began is not None else None,
                "completion_time": start + timedelta(minutes=ended) if ended is not None and status == "completed"
                else None,
                "assigned_to": worker if status != "pending" else None,
                "revision_count": revisions, "dependencies": [ids[d] for d in deps],
            }
            conn.execute(
                "INSERT INTO tasks (id, team_id, company_id, plan_key, position, title, description,"
                " acceptance_criteria, dependencies, status, assigned_to, revision_count, output, started_at,"
                " completion_time) SELECT %(id)s, t.id, t.company_id, %(key)s, %(position)s, %(title)s,"
                " %(description)s, %(criteria)s::jsonb, %(dependencies)s::uuid[], %(status)s, %(assigned_to)s,"
                " %(revision_count)s, %(output)s, %(started_at)s, %(completion_time)s FROM teams t"
                " WHERE t.id = %(team_id)s",
                {**row, "key": f"t{position}", "criteria": json.dumps(row["acceptance_criteria"]),
                 "team_id": team_id})
            rows.append(row)
    return rows
