"""Task use cases: plan persistence, the task lifecycle, and task reads."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any
from uuid import UUID

from psycopg.types.json import Jsonb

from shared.db import journal
from shared.db.database import Database
from shared.db.pagination import Page, after_cursor, to_page
from shared.db.repositories import tasks as q
from shared.domain.errors import Conflict, NotFound
from shared.domain.ids import uuid7
from shared.domain.models import Actor, AuditEventPublic, PlannedTaskIn, TaskPublic
from shared.domain.planning import validate_plan
from shared.domain.states import TaskStatus, task_sources


class TaskService:
    def __init__(self, db: Database, *, default_max_revisions: int = 2) -> None:
        self.db = db
        self.default_max_revisions = default_max_revisions

    # --- creation ---------------------------------------------------------------------------------

    async def create_plan(
        self, team_id: UUID, items: Sequence[PlannedTaskIn], actor: Actor, *, replace_pending: bool = False
    ) -> list[TaskPublic]:
        """Persist a plan once: a re-run (at-least-once activity) returns the tasks already stored.

        With `replace_pending`, a plan edited by a human before approval replaces the stored one.
        """
        order = validate_plan(items)
        by_key = {item.key: item for item in items}
        async with self.db.transaction() as tx:
            cur = await tx.conn.execute(
                "SELECT company_id FROM teams WHERE id = %(id)s FOR UPDATE", {"id": team_id}
            )
            team = await cur.fetchone()
            if team is None:
                raise NotFound("team not found")
            company_id = team["company_id"]
            if replace_pending:
                cur = await tx.conn.execute(
                    "SELECT count(*) AS n FROM tasks WHERE team_id = %(team_id)s AND status <> 'pending'",
                    {"team_id": team_id},
                )
                started = await cur.fetchone()
                if started and started["n"]:
                    raise Conflict("the plan cannot be replaced: some tasks have started")
                await tx.conn.execute(q.DELETE_PENDING_PLAN, {"team_id": team_id})
            else:
                cur = await tx.conn.execute(
                    "SELECT count(*) AS n FROM tasks WHERE team_id = %(team_id)s", {"team_id": team_id}
                )
                existing = await cur.fetchone()
                if existing and existing["n"]:
                    return await self.list_for_team(team_id)
            ids = {key: uuid7() for key in order}
            for position, key in enumerate(order):
                item = by_key[key]
                await tx.conn.execute(
                    q.INSERT_TASK,
                    {
                        "id": ids[key], "team_id": team_id, "company_id": company_id, "plan_key": key,
                        "position": position, "title": item.title, "description": item.description,
                        "acceptance_criteria": Jsonb(item.acceptance_criteria),
                        "dependencies": [ids[d] for d in item.dependencies],
                        "specialization": item.specialization, "max_revisions": self.default_max_revisions,
                    },
                )
                await journal.record(
                    tx, company_id=company_id, team_id=team_id, task_id=ids[key], actor=actor,
                    event_type="task.created",
                    data={"title": item.title, "status": TaskStatus.PENDING.value, "position": position,
                          "dependencies": [str(ids[d]) for d in item.dependencies]},
                )
        return await self.list_for_team(team_id)

    # --- lifecycle --------------------------------------------------------------------------------

    async def _move(
        self,
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
    ) -> TaskPublic:
        async with self.db.transaction() as tx:
            row = await journal.transition(
                tx, entity="task", entity_id=task_id, target=target.value,
                sources=[s.value for s in (sources or task_sources(target))], actor=actor,
                company_id=company_id, expected_version=expected_version, sets=sets, params=params,
                payload=payload,
            )
        return TaskPublic.model_validate(row)

    async def assign(self, task_id: UUID, member_id: UUID, actor: Actor, *,
                     expected_version: int | None = None) -> TaskPublic:
        return await self._move(
            task_id, TaskStatus.ASSIGNED, actor, expected_version=expected_version,
            sets=("assigned_to = %(member_id)s",), params={"member_id": member_id},
            payload={"assigned_to": str(member_id)},
        )

    async def start(self, task_id: UUID, actor: Actor, *, expected_version: int | None = None) -> TaskPublic:
        return await self._move(task_id, TaskStatus.IN_PROGRESS, actor, expected_version=expected_version,
                                sources=(TaskStatus.ASSIGNED, TaskStatus.REVISION_REQUESTED),
                                sets=("started_at = coalesce(t.started_at, now())",))

    async def submit_for_review(self, task_id: UUID, output: str, actor: Actor, *,
                                expected_version: int | None = None) -> TaskPublic:
        return await self._move(task_id, TaskStatus.REVIEW, actor, expected_version=expected_version,
                                sets=("output = %(output)s",), params={"output": output})

    async def approve(self, task_id: UUID, actor: Actor, *, expected_version: int | None = None,
                      company_id: UUID | None = None) -> TaskPublic:
        return await self._move(task_id, TaskStatus.COMPLETED, actor, expected_version=expected_version,
                                company_id=company_id, sources=(TaskStatus.REVIEW,),
                                sets=("completion_time = now()", "feedback = NULL"))

    async def request_revision(self, task_id: UUID, feedback: str, actor: Actor, *,
                               expected_version: int | None = None) -> TaskPublic:
        return await self._move(
            task_id, TaskStatus.REVISION_REQUESTED, actor, expected_version=expected_version,
            sets=("feedback = %(feedback)s", "revision_count = t.revision_count + 1"),
            params={"feedback": feedback}, payload={"feedback": feedback},
        )

    async def fail(self, task_id: UUID, reason: str, actor: Actor, *,
                   expected_version: int | None = None) -> TaskPublic:
        return await self._move(task_id, TaskStatus.FAILED, actor, expected_version=expected_version,
                                sets=("feedback = coalesce(t.feedback, %(reason)s)",),
                                params={"reason": reason}, payload={"reason": reason})

    async def escalate(self, task_id: UUID, reason: str, actor: Actor, *,
                       expected_version: int | None = None) -> TaskPublic:
        return await self._move(task_id, TaskStatus.ESCALATED, actor, expected_version=expected_version,
                                payload={"reason": reason})

    async def resume_escalated(self, task_id: UUID, actor: Actor, *, note: str | None = None,
                               new_round: bool = False) -> TaskPublic:
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

    async def complete_escalated(self, task_id: UUID, actor: Actor, *, output: str | None = None) -> TaskPublic:
        """A human chose to skip (or supplied the output): the task counts as done."""
        return await self._move(
            task_id, TaskStatus.COMPLETED, actor, sources=(TaskStatus.ESCALATED,),
            sets=("completion_time = now()", "output = coalesce(%(output)s, t.output)"), params={"output": output},
        )

    async def fail_escalated(self, task_id: UUID, actor: Actor, *, reason: str) -> TaskPublic:
        return await self._move(task_id, TaskStatus.FAILED, actor, sources=(TaskStatus.ESCALATED,),
                                payload={"reason": reason})

    async def reopen_for_retry(self, task_id: UUID, actor: Actor, *, company_id: UUID | None = None) -> TaskPublic:
        """`POST /tasks/{id}/retry`: a failed or escalated task goes back to work."""
        async with self.db.transaction() as tx:
            cur = await tx.conn.execute(
                "SELECT status FROM tasks WHERE id = %(id)s"
                + (" AND company_id = %(company_id)s" if company_id else ""),
                {"id": task_id, "company_id": company_id},
            )
            row = await cur.fetchone()
            if row is None:
                raise NotFound("task not found")
            if row["status"] not in (TaskStatus.FAILED.value, TaskStatus.ESCALATED.value):
                raise Conflict(f"only a failed or escalated task can be retried (this one is {row['status']})")
            # failed is terminal in the lifecycle table; a retry is the one sanctioned way back.
            moved = await journal.transition(
                tx, entity="task", entity_id=task_id, target=TaskStatus.IN_PROGRESS.value,
                sources=[TaskStatus.FAILED.value, TaskStatus.ESCALATED.value], actor=actor,
                company_id=company_id, payload={"retry": True},
            )
        return TaskPublic.model_validate(moved)

    # --- reads ------------------------------------------------------------------------------------

    async def get(self, task_id: UUID, *, company_id: UUID | None = None) -> TaskPublic:
        return TaskPublic.model_validate(await self.get_row(task_id, company_id=company_id))

    async def get_row(self, task_id: UUID, *, company_id: UUID | None = None) -> dict[str, Any]:
        async with self.db.connection() as conn:
            if company_id is None:
                cur = await conn.execute(q.GET_TASK, {"id": task_id})
            else:
                cur = await conn.execute(q.GET_TASK_SCOPED, {"id": task_id, "company_id": company_id})
            row = await cur.fetchone()
        if row is None:
            raise NotFound("task not found")
        return dict(row)

    async def list_for_team(self, team_id: UUID, *, status: TaskStatus | None = None) -> list[TaskPublic]:
        statement = q.LIST_TEAM_TASKS + (" AND k.status = %(status)s" if status else "") + " ORDER BY k.position, k.id"
        async with self.db.connection() as conn:
            cur = await conn.execute(statement, {"team_id": team_id, "status": status.value if status else None})
            return [TaskPublic.model_validate(r) for r in await cur.fetchall()]

    async def list_for_company(
        self,
        company_id: UUID,
        *,
        status: str | None = None,
        team_id: UUID | None = None,
        limit: int = 50,
        cursor: str | None = None,
    ) -> Page[TaskPublic]:
        """`status` is a task status or `active` (every non-terminal one); newest first."""
        where = ["k.company_id = %(company_id)s"]
        params: dict[str, Any] = {"company_id": company_id, "limit": limit + 1}
        if status == "active":
            where.append("k.status NOT IN ('completed', 'failed')")
        elif status is not None:
            where.append("k.status = %(status)s")
            params["status"] = TaskStatus(status).value
        if team_id is not None:
            where.append("k.team_id = %(team_id)s")
            params["team_id"] = team_id
        if cursor:
            where.append(after_cursor(cursor, params, "k"))
        statement = (
            f"SELECT {q.TASK_COLUMNS} FROM tasks k WHERE " + " AND ".join(where)
            + " ORDER BY k.created_at DESC, k.id DESC LIMIT %(limit)s"
        )
        async with self.db.connection() as conn:
            cur = await conn.execute(statement, params)
            rows = await cur.fetchall()
        return to_page(rows, limit, TaskPublic)

    async def history(self, task_id: UUID, *, company_id: UUID) -> list[AuditEventPublic]:
        await self.get_row(task_id, company_id=company_id)
        async with self.db.connection() as conn:
            cur = await conn.execute(q.TASK_HISTORY, {"task_id": task_id})
            return [AuditEventPublic.model_validate(r) for r in await cur.fetchall()]

