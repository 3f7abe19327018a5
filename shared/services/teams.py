"""Team use cases: create, the lifecycle transitions, and the reads the API serves."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from shared.db import journal
from shared.db.database import Database
from shared.db.pagination import Page, after_cursor, to_page
from shared.db.repositories import teams as q
from shared.domain.errors import Conflict, NotFound
from shared.domain.ids import uuid7
from shared.domain.models import Actor, MemberPublic, Principal, TeamCreate, TeamPublic
from shared.domain.states import TeamStatus, team_sources

#: Worker specialisations handed out in order when a team is formed.
WORKER_SPECIALIZATIONS = ("research", "engineering", "writing", "analysis", "design", "testing")


def _default_name(goal: str) -> str:
    words = goal.split()
    name = " ".join(words[:6])
    return (name[:77] + "...") if len(name) > 80 else name


class TeamService:
    def __init__(self, db: Database, *, manager_model: str = "offline-manager", worker_model: str = "offline-worker"):
        self.db = db
        self.manager_model = manager_model
        self.worker_model = worker_model

    async def create(self, principal: Principal, team_in: TeamCreate) -> TeamPublic:
        team_id = uuid7()
        actor = principal.actor
        async with self.db.transaction() as tx:
            await tx.conn.execute(
                q.INSERT_TEAM,
                {
                    "id": team_id,
                    "company_id": principal.company_id,
                    "name": team_in.name or _default_name(team_in.goal),
                    "goal": team_in.goal,
                    "budget_usd": team_in.budget_usd,
                    "workers": team_in.workers,
                    "approve_plan": team_in.approve_plan,
                    "created_by": principal.user_id,
                },
            )
            members = [("manager", "Manager", "planning", self.manager_model)] + [
                ("worker", f"Worker {i + 1}", WORKER_SPECIALIZATIONS[i % len(WORKER_SPECIALIZATIONS)],
                 self.worker_model)
                for i in range(team_in.workers)
            ]
            for role, name, specialization, model in members:
                await tx.conn.execute(
                    q.INSERT_MEMBER,
                    {"id": uuid7(), "team_id": team_id, "role": role, "name": name,
                     "specialization": specialization, "model": model},
                )
            await journal.record(
                tx, company_id=principal.company_id, team_id=team_id, actor=actor, event_type="team.created",
                data={"status": TeamStatus.PENDING.value, "goal": team_in.goal, "budget_usd":
                      str(team_in.budget_usd) if team_in.budget_usd is not None else None},
            )
        return await self.get(principal.company_id, team_id)

    # --- reads ------------------------------------------------------------------------------------

    async def get(self, company_id: UUID, team_id: UUID) -> TeamPublic:
        """The team with members, tasks and cost totals, in one round trip."""
        async with self.db.connection() as conn:
            cur = await conn.execute(q.GET_TEAM_DETAIL, {"id": team_id, "company_id": company_id})
            row = await cur.fetchone()
        if row is None:
            raise NotFound("team not found")
        return TeamPublic.model_validate(row)

    async def get_scope(self, team_id: UUID) -> dict[str, Any]:
        """Company, status and budget of a team: what orchestration activities need, unscoped."""
        async with self.db.connection() as conn:
            cur = await conn.execute(q.TEAM_SCOPE, {"id": team_id})
            row = await cur.fetchone()
        if row is None:
            raise NotFound("team not found")
        return dict(row)

    async def get_scope_for(self, company_id: UUID, team_id: UUID) -> dict[str, Any]:
        """Like `get_scope`, but a team of another company is not found."""
        scope = await self.get_scope(team_id)
        if scope["company_id"] != company_id:
            raise NotFound("team not found")
        return scope

    async def list_page(
        self,
        company_id: UUID,
        *,
        status: TeamStatus | None = None,
        include_members: bool = False,
        include_tasks: bool = False,
        limit: int = 50,
        cursor: str | None = None,
    ) -> Page[TeamPublic]:
        """Newest first, keyset-paginated; members and tasks come in the same query."""
        where = ["t.company_id = %(company_id)s"]
        params: dict[str, Any] = {"company_id": company_id, "limit": limit + 1}
        if status is not None:
            where.append("t.status = %(status)s")
            params["status"] = status.value
        if cursor:
            where.append(after_cursor(cursor, params, "t"))
        statement = (
            q.team_select(members=include_members, tasks=include_tasks, costs=False)
            + " WHERE " + " AND ".join(where)
            + " ORDER BY t.created_at DESC, t.id DESC LIMIT %(limit)s"
        )
        async with self.db.connection() as conn:
            cur = await conn.execute(statement, params)
            rows = await cur.fetchall()
        return to_page(rows, limit, TeamPublic)

    async def members(self, team_id: UUID) -> list[MemberPublic]:
        async with self.db.connection() as conn:
            cur = await conn.execute(q.LIST_MEMBERS, {"team_id": team_id})
            return [MemberPublic.model_validate(r) for r in await cur.fetchall()]

    # --- lifecycle --------------------------------------------------------------------------------

    async def _move(
        self,
        team_id: UUID,
        target: TeamStatus,
        actor: Actor,
        *,
        sources: tuple[TeamStatus, ...] | None = None,
        company_id: UUID | None = None,
        expected_version: int | None = None,
        sets: tuple[str, ...] = (),
        params: dict[str, Any] | None = None,
        payload: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        async with self.db.transaction() as tx:
            return await journal.transition(
                tx, entity="team", entity_id=team_id, target=target.value,
                sources=[s.value for s in (sources or team_sources(target))], actor=actor, company_id=company_id,
                expected_version=expected_version, sets=sets, params=params, payload=payload,
            )

    async def start(
        self, team_id: UUID, actor: Actor, *, company_id: UUID | None = None, instance_id: str | None = None
    ) -> dict[str, Any]:
        return await self._move(
            team_id, TeamStatus.PLANNING, actor, company_id=company_id,
            sets=("started_at = coalesce(t.started_at, now())", "instance_id = %(instance_id)s"),
            params={"instance_id": instance_id or str(team_id)},
        )

    async def activate(self, team_id: UUID, actor: Actor) -> dict[str, Any]:
        return await self._move(team_id, TeamStatus.ACTIVE, actor, sources=(TeamStatus.PLANNING,),
                                sets=("awaiting_plan_approval = false",))

    async def pause(self, team_id: UUID, actor: Actor, *, company_id: UUID | None = None,
                    reason: str | None = None) -> dict[str, Any]:
        return await self._move(team_id, TeamStatus.PAUSED, actor, company_id=company_id,
                                payload={"reason": reason} if reason else None)

    async def resume(self, team_id: UUID, actor: Actor, *, company_id: UUID | None = None) -> dict[str, Any]:
        return await self._move(team_id, TeamStatus.ACTIVE, actor, sources=(TeamStatus.PAUSED,),
                                company_id=company_id)

    async def complete(self, team_id: UUID, actor: Actor, *, result: str) -> dict[str, Any]:
        return await self._move(
            team_id, TeamStatus.COMPLETED, actor, sets=("completed_at = now()", "result = %(result)s"),
            params={"result": result},
        )

    async def fail(self, team_id: UUID, actor: Actor, *, reason: str) -> dict[str, Any]:
        return await self._move(
            team_id, TeamStatus.FAILED, actor, sets=("completed_at = now()", "result = %(reason)s"),
            params={"reason": reason}, payload={"reason": reason},
        )

    async def cancel(self, team_id: UUID, actor: Actor, *, company_id: UUID | None = None) -> dict[str, Any]:
        return await self._move(team_id, TeamStatus.CANCELLED, actor, company_id=company_id,
                                sets=("completed_at = now()",))

    async def staff(self, team_id: UUID, workers: list[tuple[str, str]], actor: Actor) -> None:
        """Name the workers and give them the specialisations the plan asks for, in order."""
        async with self.db.transaction() as tx:
            cur = await tx.conn.execute(
                "SELECT id, name FROM team_members WHERE team_id = %(id)s AND role = 'worker'"
                " ORDER BY created_at, id FOR UPDATE", {"id": team_id})
            rows = await cur.fetchall()
            taken = {"Manager"}
            changed = []
            for row, (name, specialization) in zip(rows, workers, strict=False):
                name = name if name not in taken else row["name"]
                taken.add(name)
                await tx.conn.execute(
                    "UPDATE team_members SET name = %(name)s, specialization = %(spec)s WHERE id = %(id)s",
                    {"id": row["id"], "name": name, "spec": specialization})
                changed.append({"id": str(row["id"]), "name": name, "specialization": specialization})
            cur = await tx.conn.execute("SELECT company_id FROM teams WHERE id = %(id)s", {"id": team_id})
            team = await cur.fetchone()
            if team is not None and changed:
                await journal.record(tx, company_id=team["company_id"], team_id=team_id, actor=actor,
                                     event_type="team.members_updated", data={"workers": changed})

    async def set_awaiting_plan_approval(self, team_id: UUID, awaiting: bool, actor: Actor) -> None:
        async with self.db.transaction() as tx:
            cur = await tx.conn.execute(q.SET_AWAITING_PLAN, {"id": team_id, "awaiting": awaiting})
            row = await cur.fetchone()
            if row is None:
                return
            await journal.record(
                tx, company_id=row["company_id"], team_id=team_id, actor=actor,
                event_type="team.plan_awaiting_approval" if awaiting else "team.plan_approved",
                data={"awaiting_plan_approval": awaiting},
            )

    async def require_awaiting_plan(self, company_id: UUID, team_id: UUID) -> dict[str, Any]:
        scope = await self.get_scope_for(company_id, team_id)
        if not scope["awaiting_plan_approval"]:
            raise Conflict("the team's plan is not waiting for approval")
        return scope

