"""Task use cases: plan persistence, the task lifecycle, and task reads."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any
from uuid import UUID

from psycopg.types.json import Jsonb

from shared.db import journal
from shared.db.database import Database, Tx
from shared.db.pagination import Page, to_page
from shared.db.repositories import tasks as repo
from shared.db.repositories import teams as team_repo
from shared.domain.errors import Conflict, NotFound
from shared.domain.ids import uuid7
from shared.domain.models import Actor, AuditEventPublic, PlannedTaskIn, TaskRecord
from shared.domain.planning import validate_plan
from shared.domain.states import TaskStatus, task_sources


class TaskService:
    def __init__(self, db: Database, *, default_max_revisions: int = 2) -> None:
        self.db = db
        self.default_max_revisions = default_max_revisions

    # --- creation ---------------------------------------------------------------------------------

    async def create_plan(self, team_id: UUID, items: Sequence[PlannedTaskIn], actor: Actor, *,
                          replace_pending: bool = False, tx: Tx | None = None) -> list[TaskRecord]:
        """Persist a plan once (in `tx` when given): a re-run returns the tasks already stored.

        With `replace_pending`, a plan edited by a human before approval replaces the stored one.
        """
        order = validate_plan(items)
        return await self.db.within(tx, lambda tx: self._create_plan(tx, team_id, order, items, actor,
                                                                     replace_pending))

    async def _create_plan(self, tx: Tx, team_id: UUID, order: list[str], items: Sequence[PlannedTaskIn],
                           actor: Actor, replace_pending: bool) -> list[TaskRecord]:
        by_key = {item.key: item for item in items}
        team = await team_repo.lock(tx.conn, team_id)
        if team is None:
            raise NotFound("team not found")
        total, started = await repo.counts(tx.conn, team_id)
        if replace_pending:
            if started:
                raise Conflict("the plan cannot be replaced: some tasks have started")
            await repo.delete_pending_plan(tx.conn, team_id)
        elif total:
            return await repo.for_team(tx.conn, team_id)
        ids = {key: uuid7() for key in order}
        for position, key in enumerate(order):
            item = by_key[key]
            await repo.insert(
                tx.conn, id=ids[key], team_id=team_id, company_id=team.company_id, plan_key=key, position=position,
                title=item.title, description=item.description, acceptance_criteria=Jsonb(item.acceptance_criteria),
                dependencies=[ids[d] for d in item.dependencies], specialization=item.specialization,
                max_revisions=self.default_max_revisions,
            )
            await journal.record(
                tx, company_id=team.company_id, team_id=team_id, task_id=ids[key], actor=actor,
                event_type="task.created",
                data={"title": item.title, "status": TaskStatus.PENDING.value, "position": position,
                      "dependencies": [str(ids[d]) for d in item.dependencies]},
            )
        return await repo.for_team(tx.conn, team_id)

    # --- lifecycle --------------------------------------------------------------------------------

    async def move(
        self,
        tx: Tx,
        task_id: UUID,
        target: TaskStatus,
        actor: Actor,
        *,
        sources: Sequence[TaskStatus] | None = None,
        company_id: UUID | None = None,
        expected_version: int | None = None,
        sets: tuple[str, ...] = (),
        params: dict[str, Any] | None = None,
        payload: dict[str, Any] | None = None,
    ) -> TaskRecord:
        """One guarded transition inside the caller's transaction."""
        return await journal.transition_task(
            tx, entity_id=task_id, target=target.value,
            sources=[s.value for s in (sources or task_sources(target))], actor=actor,
            company_id=company_id, expected_version=expected_version, sets=sets, params=params, payload=payload,
        )

    async def _move(self, task_id: UUID, target: TaskStatus, actor: Actor, **kwargs: Any) -> TaskRecord:
        return await self.db.atomic(lambda tx: self.move(tx, task_id, target, actor, **kwargs))

    async def assign(self, task_id: UUID, member_id: UUID, actor: Actor, *,
                     expected_version: int | None = None) -> TaskRecord:
        return await self._move(
            task_id, TaskStatus.ASSIGNED, actor, expected_version=expected_version,
            sets=("assigned_to = %(member_id)s",), params={"member_id": member_id},
            payload={"assigned_to": str(member_id)},
        )

    async def start(self, task_id: UUID, actor: Actor, *, expected_version: int | None = None) -> TaskRecord:
        return await self._move(task_id, TaskStatus.IN_PROGRESS, actor, expected_version=expected_version,
                                sources=(TaskStatus.ASSIGNED, TaskStatus.REVISION_REQUESTED),
                                sets=("started_at = coalesce(t.started_at, now())",))

    async def submit_for_review(self, task_id: UUID, output: str, actor: Actor, *,
                                expected_version: int | None = None) -> TaskRecord:
        return await self._move(task_id, TaskStatus.REVIEW, actor, expected_version=expected_version,
                                sets=("output = %(output)s",), params={"output": output})

    async def approve(self, task_id: UUID, actor: Actor, *, expected_version: int | None = None,
                      tx: Tx | None = None) -> TaskRecord:
        return await self.db.within(tx, lambda tx: self.move(
            tx, task_id, TaskStatus.COMPLETED, actor, expected_version=expected_version, sources=(TaskStatus.REVIEW,),
            sets=("completion_time = now()", "feedback = NULL")))

    async def request_revision(self, task_id: UUID, feedback: str, actor: Actor, *,
                               expected_version: int | None = None, tx: Tx | None = None) -> TaskRecord:
        return await self.db.within(tx, lambda tx: self.move(
            tx, task_id, TaskStatus.REVISION_REQUESTED, actor, expected_version=expected_version,
            sets=("feedback = %(feedback)s", "revision_count = t.revision_count + 1"),
            params={"feedback": feedback}, payload={"feedback": feedback},
        ))

    async def fail(self, task_id: UUID, reason: str, actor: Actor, *,
                   expected_version: int | None = None) -> TaskRecord:
        return await self._move(task_id, TaskStatus.FAILED, actor, expected_version=expected_version,
                                sets=("feedback = coalesce(t.feedback, %(reason)s)",),
                                params={"reason": reason}, payload={"reason": reason})

    async def resume_escalated(self, task_id: UUID, actor: Actor, *, note: str | None = None,
                               new_round: bool = False) -> TaskRecord:
        """A human chose to retry: back to work, with their note as feedback.

        `new_round` starts another revision round (the finished work is redone with the note) instead
        of resuming the current round from its latest checkpoint.
        """
        sets = ["feedback = coalesce(%(note)s, t.feedback)"]
        if new_round:
            sets += ["revision_count = t.revision_count + 1",
                     "max_revisions = least(10, greatest(t.max_revisions, t.revision_count + 1))"]
        return await self._move(task_id, TaskStatus.IN_PROGRESS, actor, sources=(TaskStatus.ESCALATED,),
                                sets=tuple(sets), params={"note": note}, payload={"new_round": new_round})

    async def complete_escalated(self, task_id: UUID, actor: Actor, *, output: str | None = None) -> TaskRecord:
        """A human chose to skip (or supplied the output): the task counts as done."""
        return await self._move(
            task_id, TaskStatus.COMPLETED, actor, sources=(TaskStatus.ESCALATED,),
            sets=("completion_time = now()", "output = coalesce(%(output)s, t.output)"), params={"output": output},
        )

    async def fail_escalated(self, task_id: UUID, actor: Actor, *, reason: str) -> TaskRecord:
        return await self._move(task_id, TaskStatus.FAILED, actor, sources=(TaskStatus.ESCALATED,),
                                payload={"reason": reason})

    async def reopen_for_retry(self, task_id: UUID, actor: Actor) -> TaskRecord:
        """A failed or escalated task goes back to work (failed is terminal in the lifecycle table; a
        retry is the one sanctioned way back)."""
        return await self._move(task_id, TaskStatus.IN_PROGRESS, actor,
                                sources=(TaskStatus.FAILED, TaskStatus.ESCALATED), payload={"retry": True})

    # --- reads ------------------------------------------------------------------------------------

    async def get(self, task_id: UUID, *, company_id: UUID | None = None) -> TaskRecord:
        async with self.db.connection() as conn:
            task = await repo.get(conn, task_id, company_id)
        if task is None:
            raise NotFound("task not found")
        return task

    async def list_for_team(self, team_id: UUID, *, status: TaskStatus | None = None) -> list[TaskRecord]:
        async with self.db.connection() as conn:
            return await repo.for_team(conn, team_id, status=status.value if status else None)

    async def dependencies_of(self, task: TaskRecord) -> list[TaskRecord]:
        """The tasks `task` depends on, in plan order (their outputs are its context)."""
        async with self.db.connection() as conn:
            return await repo.by_ids(conn, task.team_id, task.dependencies)

    async def list_for_company(
        self,
        company_id: UUID,
        *,
        status: str | None = None,
        team_id: UUID | None = None,
        limit: int = 50,
        cursor: str | None = None,
    ) -> Page[TaskRecord]:
        """`status` is a task status or `active` (every non-terminal one); newest first."""
        if status is not None and status != "active":
            status = TaskStatus(status).value
        async with self.db.connection() as conn:
            found = await repo.for_company(conn, company_id, status=status, team_id=team_id, limit=limit,
                                           cursor=cursor)
        return to_page(found, limit)

    async def history(self, task_id: UUID, *, company_id: UUID) -> list[AuditEventPublic]:
        async with self.db.connection() as conn:
            if await repo.get(conn, task_id, company_id) is None:
                raise NotFound("task not found")
            return await repo.history(conn, task_id)
