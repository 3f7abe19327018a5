"""Checkpoints: a task's progress after each step, so a retry resumes instead of starting over."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from shared.db import journal
from shared.db.database import Database, Tx
from shared.db.repositories import checkpoints as repo
from shared.db.repositories import tasks as task_repo
from shared.domain.errors import NotFound
from shared.domain.ids import uuid7
from shared.domain.models import Actor, CheckpointRecord


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
        tx: Tx | None = None,
    ) -> CheckpointRecord:
        """Idempotent per (task, step) (in `tx` when given): a re-run keeps the first checkpoint."""
        return await self.db.within(tx, lambda tx: self._create(tx, task_id, step_number, step_output, actor,
                                                                checkpoint_type, state or {}))

    async def _create(self, tx: Tx, task_id: UUID, step_number: int, step_output: dict[str, Any], actor: Actor,
                      checkpoint_type: str, state: dict[str, Any]) -> CheckpointRecord:
        task = await task_repo.get(tx.conn, task_id)
        if task is None:
            raise NotFound("task not found")
        created = await repo.insert(tx.conn, checkpoint_id=uuid7(), task_id=task_id, step_number=step_number,
                                    checkpoint_type=checkpoint_type, step_output=step_output, state=state)
        if created is None:
            existing = await repo.at_step(tx.conn, task_id, step_number)
            assert existing is not None
            return existing
        await journal.record(
            tx, company_id=task.company_id, team_id=task.team_id, task_id=task_id, actor=actor,
            event_type="checkpoint.created", data={"step_number": step_number, "checkpoint_type": checkpoint_type},
        )
        return created

    async def list(self, task_id: UUID) -> list[CheckpointRecord]:
        async with self.db.connection() as conn:
            return await repo.for_task(conn, task_id)

    async def latest(self, task_id: UUID) -> CheckpointRecord | None:
        found = await self.list(task_id)
        return found[-1] if found else None
