"""Team use cases: create, the lifecycle transitions, and the reads the API serves."""

from __future__ import annotations

from decimal import Decimal
from typing import TYPE_CHECKING, Any
from uuid import UUID

from shared.db import journal
from shared.db.database import Database, Tx
from shared.db.pagination import Page, to_page
from shared.db.repositories import teams as repo
from shared.domain.errors import Invalid, NotFound
from shared.domain.ids import uuid7
from shared.domain.models import Actor, MemberPublic, Principal, TeamCreate, TeamPublic, TeamScope
from shared.domain.states import TeamStatus, team_sources
from shared.orchestration_names import team_instance_id

if TYPE_CHECKING:
    from shared.services.tool_servers import ToolServerService

#: Worker specialisations handed out in order when a team is formed.
WORKER_SPECIALIZATIONS = ("research", "engineering", "writing", "analysis", "design", "testing")


def _default_name(goal: str) -> str:
    words = goal.split()
    name = " ".join(words[:6])
    return (name[:77] + "...") if len(name) > 80 else name


class TeamService:
    def __init__(self, db: Database, *, manager_model: str = "offline-manager", worker_model: str = "offline-worker",
                 tool_servers: ToolServerService | None = None):
        self.db = db
        self.tool_servers = tool_servers
        self.manager_model = manager_model
        self.worker_model = worker_model

    async def create(self, principal: Principal, team_in: TeamCreate) -> TeamPublic:
        team_id = uuid7()

        async def work(tx: Tx) -> None:
            if team_in.tools:
                if self.tool_servers is None:
                    raise Invalid("tools are not available here")
                await self.tool_servers.check_allow_list(tx, principal.company_id, team_in.tools)
            await repo.insert_team(
                tx.conn, id=team_id, company_id=principal.company_id, name=team_in.name or _default_name(team_in.goal),
                goal=team_in.goal, budget_usd=team_in.budget_usd, workers=team_in.workers,
                approve_plan=team_in.approve_plan, created_by=principal.user_id, tools=list(team_in.tools),
            )
            members = [("manager", "Manager", "planning", self.manager_model)] + [
                ("worker", f"Worker {i + 1}", WORKER_SPECIALIZATIONS[i % len(WORKER_SPECIALIZATIONS)],
                 self.worker_model)
                for i in range(team_in.workers)
            ]
            for role, name, specialization, model in members:
                await repo.insert_member(tx.conn, id=uuid7(), team_id=team_id, role=role, name=name,
                                         specialization=specialization, model=model)
            await journal.record(
                tx, company_id=principal.company_id, team_id=team_id, actor=principal.actor,
                event_type="team.created",
                data={"status": TeamStatus.PENDING.value, "goal": team_in.goal,
                      "budget_usd": str(team_in.budget_usd) if team_in.budget_usd is not None else None,
                      "tools": list(team_in.tools)},
            )

        await self.db.atomic(work)
        return await self.get(principal.company_id, team_id)

    # --- reads ------------------------------------------------------------------------------------

    async def get(self, company_id: UUID, team_id: UUID) -> TeamPublic:
        """The team with members, tasks and cost totals, in one round trip."""
        async with self.db.connection() as conn:
            team = await repo.detail(conn, team_id, company_id)
        if team is None:
            raise NotFound("team not found")
        return team

    async def get_scope(self, team_id: UUID) -> TeamScope:
        """Company, status and budget of a team: what orchestration steps need, unscoped."""
        async with self.db.connection() as conn:
            scope = await repo.scope(conn, team_id)
        if scope is None:
            raise NotFound("team not found")
        return scope

    async def get_scope_for(self, company_id: UUID, team_id: UUID) -> TeamScope:
        """Like `get_scope`, but a team of another company is not found."""
        scope = await self.get_scope(team_id)
        if scope.company_id != company_id:
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
        async with self.db.connection() as conn:
            found = await repo.page(conn, company_id, status=status.value if status else None,
                                    include_members=include_members, include_tasks=include_tasks, limit=limit,
                                    cursor=cursor)
        return to_page(found, limit)

    async def members(self, team_id: UUID) -> list[MemberPublic]:
        async with self.db.connection() as conn:
            return await repo.members(conn, team_id)

    # --- lifecycle --------------------------------------------------------------------------------

    async def move(
        self,
        tx: Tx,
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
    ) -> TeamScope:
        """One guarded transition inside the caller's transaction."""
        return await journal.transition_team(
            tx, entity_id=team_id, target=target.value,
            sources=[s.value for s in (sources or team_sources(target))], actor=actor, company_id=company_id,
            expected_version=expected_version, sets=sets, params=params, payload=payload,
        )

    async def _move(self, team_id: UUID, target: TeamStatus, actor: Actor, **kwargs: Any) -> TeamScope:
        return await self.db.atomic(lambda tx: self.move(tx, team_id, target, actor, **kwargs))

    async def start(self, team_id: UUID, actor: Actor, *, company_id: UUID | None = None,
                    instance_id: str | None = None, tx: Tx | None = None) -> TeamScope:
        """pending -> planning (use `RunControl.start`, which also starts the orchestration)."""
        return await self.db.within(tx, lambda tx: self.move(
            tx, team_id, TeamStatus.PLANNING, actor, company_id=company_id,
            sets=("started_at = coalesce(t.started_at, now())", "instance_id = %(instance_id)s"),
            params={"instance_id": instance_id or team_instance_id(team_id)},
        ))

    async def activate(self, team_id: UUID, actor: Actor) -> TeamScope:
        return await self._move(team_id, TeamStatus.ACTIVE, actor, sources=(TeamStatus.PLANNING,),
                                sets=("awaiting_plan_approval = false",))

    async def pause(self, team_id: UUID, actor: Actor, *, reason: str | None = None,
                    company_id: UUID | None = None) -> TeamScope:
        return await self._move(team_id, TeamStatus.PAUSED, actor, company_id=company_id,
                                payload={"reason": reason} if reason else None)

    async def resume(self, team_id: UUID, actor: Actor, *, company_id: UUID | None = None) -> TeamScope:
        return await self._move(team_id, TeamStatus.ACTIVE, actor, sources=(TeamStatus.PAUSED,),
                                company_id=company_id)

    async def complete(self, team_id: UUID, actor: Actor, *, result: str) -> TeamScope:
        return await self._move(team_id, TeamStatus.COMPLETED, actor,
                                sets=("completed_at = now()", "result = %(result)s"), params={"result": result})

    async def fail(self, team_id: UUID, actor: Actor, *, reason: str) -> TeamScope:
        return await self._move(team_id, TeamStatus.FAILED, actor,
                                sets=("completed_at = now()", "result = %(reason)s"), params={"reason": reason},
                                payload={"reason": reason})

    async def cancel(self, team_id: UUID, actor: Actor, *, company_id: UUID | None = None,
                     tx: Tx | None = None) -> TeamScope:
        return await self.db.within(tx, lambda tx: self.move(tx, team_id, TeamStatus.CANCELLED, actor,
                                                             company_id=company_id, sets=("completed_at = now()",)))

    async def set_budget(self, team_id: UUID, budget: Decimal | None, actor: Actor, *, tx: Tx | None = None) -> bool:
        """A human's new budget (None lifts it); False when it is below what is spent and reserved."""
        return await self.db.within(tx, lambda tx: self._set_budget(tx, team_id, budget, actor))

    async def _set_budget(self, tx: Tx, team_id: UUID, budget: Decimal | None, actor: Actor) -> bool:
        scope = await repo.lock(tx.conn, team_id)
        if scope is None:
            raise NotFound("team not found")
        if not await repo.set_budget(tx.conn, team_id, budget):
            return False
        await journal.record(tx, company_id=scope.company_id, team_id=team_id, actor=actor,
                             event_type="team.budget_changed",
                             data={"from": None if scope.budget_usd is None else str(scope.budget_usd),
                                   "to": None if budget is None else str(budget)})
        return True

    async def staff(self, team_id: UUID, workers: list[tuple[str, str]], actor: Actor, *,
                    tx: Tx | None = None) -> None:
        """Name the workers and give them the specialisations the plan asks for, in order."""
        await self.db.within(tx, lambda tx: self._staff(tx, team_id, workers, actor))

    async def _staff(self, tx: Tx, team_id: UUID, workers: list[tuple[str, str]], actor: Actor) -> None:
        scope = await repo.lock(tx.conn, team_id)
        if scope is None:
            raise NotFound("team not found")
        taken = {"Manager"}
        changed = []
        for member, (name, specialization) in zip(await repo.lock_workers(tx.conn, team_id), workers, strict=False):
            name = name if name not in taken else member.name
            taken.add(name)
            await repo.rename_member(tx.conn, member.id, name, specialization)
            changed.append({"id": str(member.id), "name": name, "specialization": specialization})
        if changed:
            await journal.record(tx, company_id=scope.company_id, team_id=team_id, actor=actor,
                                 event_type="team.members_updated", data={"workers": changed})

    async def set_awaiting_plan_approval(self, team_id: UUID, awaiting: bool, actor: Actor, *,
                                         tx: Tx | None = None) -> None:
        await self.db.within(tx, lambda tx: self._set_awaiting(tx, team_id, awaiting, actor))

    async def _set_awaiting(self, tx: Tx, team_id: UUID, awaiting: bool, actor: Actor) -> None:
        company_id = await repo.set_awaiting_plan(tx.conn, team_id, awaiting)
        if company_id is None:
            return
        await journal.record(
            tx, company_id=company_id, team_id=team_id, actor=actor,
            event_type="team.plan_awaiting_approval" if awaiting else "team.plan_approved",
            data={"awaiting_plan_approval": awaiting},
        )
