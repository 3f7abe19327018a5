"""Checkpoints: a task's progress after each step, so a retry resumes instead of starting over."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from psycopg.types.json import Jsonb

from shared.db import journal
from shared.db.database import Database
from shared.domain.errors import NotFound
from shared.domain.ids import uuid7
from shared.domain.models import Actor, CheckpointPublic

_INSERT = """
INSERT INTO checkpoints (id, task_id, step_number, checkpoint_type, step_output, state)
VALUES (%(id)s, %(task_id)s, %(step_number)s, %(checkpoint_type)s, %(step_output)s, %(state)s)
ON CONFLICT (task_id, step_number) DO NOTHING
RETURNING step_number, checkpoint_type, step_output, created_at
"""
_COLUMNS = "step_number, checkpoint_type, step_output, state, created_at"
_AT_STEP = f"SELECT {_COLUMNS} FROM checkpoints WHERE task_id = %(task_id)s AND step_number = %(step)s"
_LATEST = f"SELECT {_COLUMNS} FROM checkpoints WHERE task_id = %(task_id)s ORDER BY step_number DESC LIMIT 1"
_LIST = f"SELECT {_COLUMNS} FROM checkpoints WHERE task_id = %(task_id)s ORDER BY step_number"
_TASK_SCOPE = "SELECT team_id, company_id FROM tasks WHERE id = %(task_id)s"


class CheckpointManager:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def create(
        self,
        task_id: UUID,
        step_number: int,
        step_output: dict[str, Any],
        actor: Actor,
        *,
        checkpoint_type: str = "step",
        state: dict[str, Any] | None = None,
    ) -> CheckpointPublic:
        """Idempotent per (task, step): a re-run of the same step keeps the first checkpoint."""
        async with self.db.transaction() as tx:
            cur = await tx.conn.execute(_TASK_SCOPE, {"task_id": task_id})
            scope = await cur.fetchone()
            if scope is None:
                raise NotFound("task not found")
            cur = await tx.conn.execute(
                _INSERT,
                {"id": uuid7(), "task_id": task_id, "step_number": step_number,
                 "checkpoint_type": checkpoint_type, "step_output": Jsonb(step_output),
                 "state": Jsonb(state or {})},
            )
            row = await cur.fetchone()
            if row is None:
                cur = await tx.conn.execute(_AT_STEP, {"task_id": task_id, "step": step_number})
                existing = await cur.fetchone()
                assert existing is not None
                return CheckpointPublic.model_validate(existing)
            await journal.record(
                tx, company_id=scope["company_id"], team_id=scope["team_id"], task_id=task_id, actor=actor,
                event_type="checkpoint.created",
                data={"step_number": step_number, "checkpoint_type": checkpoint_type},
            )
        return CheckpointPublic.model_validate(row)

    async def latest(self, task_id: UUID) -> dict[str, Any] | None:
        async with self.db.connection() as conn:
            cur = await conn.execute(_LATEST, {"task_id": task_id})
            row = await cur.fetchone()
        return dict(row) if row else None

    async def at_step(self, task_id: UUID, step_number: int) -> dict[str, Any] | None:
        async with self.db.connection() as conn:
            cur = await conn.execute(_AT_STEP, {"task_id": task_id, "step": step_number})
            row = await cur.fetchone()
        return dict(row) if row else None

    async def list(self, task_id: UUID) -> list[CheckpointPublic]:
        async with self.db.connection() as conn:
            cur = await conn.execute(_LIST, {"task_id": task_id})
            return [CheckpointPublic.model_validate(r) for r in await cur.fetchall()]
