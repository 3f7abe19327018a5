"""Checkpoints: a task's progress after each step."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from psycopg.types.json import Jsonb

from shared.db import rows
from shared.db.database import Conn
from shared.domain.models import CheckpointRecord

_COLUMNS = "step_number, checkpoint_type, step_output, state, created_at"

#: insert_checkpoint -- the checkpoint of one step (idempotent per task and step number)
INSERT = f"""
INSERT INTO checkpoints (id, task_id, step_number, checkpoint_type, step_output, state)
VALUES (%(id)s, %(task_id)s, %(step_number)s, %(checkpoint_type)s, %(step_output)s, %(state)s)
ON CONFLICT (task_id, step_number) DO NOTHING
RETURNING {_COLUMNS}
"""  # noqa: S608 - SQL built from this module's constants
#: checkpoint_at_step -- one checkpoint
AT_STEP = f"SELECT {_COLUMNS} FROM checkpoints WHERE task_id = %(task_id)s AND step_number = %(step)s"  # noqa: S608 - SQL built from this module's constants
#: list_checkpoints -- a task's checkpoints by step
LIST = f"SELECT {_COLUMNS} FROM checkpoints WHERE task_id = %(task_id)s ORDER BY step_number"  # noqa: S608 - SQL built from this module's constants


async def insert(conn: Conn, *, checkpoint_id: UUID, task_id: UUID, step_number: int, checkpoint_type: str,
                 step_output: dict[str, Any], state: dict[str, Any]) -> CheckpointRecord | None:
    """The new checkpoint, or None when that step already has one."""
    return await rows.one(conn, CheckpointRecord, INSERT, {
        "id": checkpoint_id, "task_id": task_id, "step_number": step_number, "checkpoint_type": checkpoint_type,
        "step_output": Jsonb(step_output), "state": Jsonb(state)})


async def at_step(conn: Conn, task_id: UUID, step_number: int) -> CheckpointRecord | None:
    return await rows.one(conn, CheckpointRecord, AT_STEP, {"task_id": task_id, "step": step_number})


async def for_task(conn: Conn, task_id: UUID) -> list[CheckpointRecord]:
    return await rows.many(conn, CheckpointRecord, LIST, {"task_id": task_id})
