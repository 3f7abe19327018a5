"""Team endpoints: create, read (cached, one query each), lifecycle controls, and the team's feeds."""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime
from typing import Any
from uuid import UUID

import azure.durable_functions as df
from pydantic import BaseModel, Field, field_validator

from functions.http_common import QueryParams, Reply, Request, api, next_link, to_json
from shared.domain.errors import Conflict, DependencyDown
from shared.domain.models import (
    MessagePublic,
    PlanApproval,
    StartResponse,
    TaskPublic,
    TeamCosts,
    TeamCreate,
    TeamEventPublic,
    TeamPublic,
)
from shared.domain.states import TaskStatus, TeamStatus
from shared.orchestration_names import TEAM_ORCHESTRATOR, team_instance_id, team_orchestration_input

log = logging.getLogger(__name__)
bp = df.Blueprint()


class TeamListQuery(QueryParams):
    status: TeamStatus | None = None
    include: str | None = Field(default=None, description="comma-separated: members, tasks")
    limit: int = Field(default=50, ge=1, le=200)
    cursor: str | None = Field(default=None, max_length=200)

    @field_validator("include")
    @classmethod
    def _known_includes(cls, value: str | None) -> str | None:
        if value is None:
            return None
        parts = {p.strip() for p in value.split(",") if p.strip()}
        if not parts <= {"members", "tasks"}:
            raise ValueError("include takes members and/or tasks")
        return ",".join(sorted(parts))


class TaskFilterQuery(QueryParams):
    status: TaskStatus | None = None


class MessagesQuery(QueryParams):
    after: datetime | None = None
    limit: int = Field(default=200, ge=1, le=1000)


class EventsQuery(QueryParams):
    after_seq: int = Field(default=0, ge=0)
    limit: int = Field(default=1000, ge=1, le=5000)


class ActionResponse(BaseModel):
    id: UUID
    status: TeamStatus
    version: int


@api(bp, "GET", "/api/teams", summary="List the company's teams, newest first", tag="teams",
     query=TeamListQuery, response=list[TeamPublic])
async def teams_list(request: Request, query: TeamListQuery) -> Reply:
    include = set((query.include or "").split(","))
    services = request.ctx.services

    async def load() -> bytes:
        page = await services.teams.list_page(
            request.user.company_id, status=query.status, include_members="members" in include,
            include_tasks="tasks" in include, limit=query.limit, cursor=query.cursor,
        )
        body = b"[" + b",".join(t.model_dump_json(exclude_none=False).encode() for t in page.items) + b"]"
        return (page.next_cursor or "").encode() + b"\n" + body

    key = f"teams:{query.status}:{query.include}:{query.limit}:{query.cursor}"
    cached = await request.ctx.cache.get_or_load(request.user.company_id, key, load)
    next_cursor, _, body = cached.partition(b"\n")
    headers = next_link(request, "/api/teams", next_cursor.decode()) if next_cursor else {}
    return Reply(raw_json=body, headers=headers)


@api(bp, "POST", "/api/teams", summary="Create a team for a goal", tag="teams", body=TeamCreate,
     response=TeamPublic, status=201, durable_client=True)
async def teams_create(request: Request, body: TeamCreate) -> Reply:
    team = await request.ctx.services.teams.create(request.user, body)
    if body.auto_start:
        await _start(request, team.id)
        team = await request.ctx.services.teams.get(request.user.company_id, team.id)
    return Reply(team, status=201)


@api(bp, "GET", "/api/teams/{team_id}", summary="A team with members, tasks and cost totals", tag="teams",
     response=TeamPublic)
async def teams_get(request: Request, _: None) -> Reply:
    team_id = request.route_uuid("team_id")
    services = request.ctx.services

    async def load() -> bytes:
        return (await services.teams.get(request.user.company_id, team_id)).model_dump_json().encode()

    return Reply(raw_json=await request.ctx.cache.get_or_load(request.user.company_id, f"team:{team_id}", load))


async def _start_orchestration(request: Request, instance_id: str, team_id: UUID, attempts: int = 3) -> None:
    """Start the team's orchestration; a busy or briefly unreachable Durable endpoint gets two more tries."""
    for attempt in range(1, attempts + 1):
        try:
            await request.client.start_new(TEAM_ORCHESTRATOR, instance_id, team_orchestration_input(team_id))
            return
        except Exception as exc:
            if attempt == attempts:
                raise
            try:
                status = await request.client.get_status(instance_id)
            except Exception:
                status = None
            if status and status.runtime_status is not None:
                return  # an earlier try did start it; only its answer was lost
            log.warning("starting %s failed (attempt %d): %s", instance_id, attempt, exc)
            await asyncio.sleep(0.2 * attempt)


async def _start(request: Request, team_id: UUID) -> StartResponse:
    instance_id = team_instance_id(team_id)
    row = await request.ctx.services.teams.start(
        team_id, request.user.actor, company_id=request.user.company_id, instance_id=instance_id
    )
    try:
        await _start_orchestration(request, instance_id, team_id)
    except Exception as exc:
        log.exception("could not start the orchestration of team %s", team_id)
        await request.ctx.services.teams.fail(team_id, request.user.actor, reason="the orchestration could not start")
        raise DependencyDown("the orchestration service is not available; the team was marked failed") from exc
    return StartResponse(id=team_id, status=TeamStatus(row["status"]), instance_id=instance_id)


@api(bp, "POST", "/api/teams/{team_id}/start", summary="Start planning and running the team", tag="teams",
     response=StartResponse, status=202, durable_client=True)
async def teams_start(request: Request, _: None) -> Reply:
    return Reply(await _start(request, request.route_uuid("team_id")), status=202)


async def _signal(request: Request, team_id: UUID, event: str, data: dict[str, Any] | None = None) -> None:
    """Tell the running orchestration; a team without one (never started, or finished) needs no signal."""
    scope = await request.ctx.services.teams.get_scope(team_id)
    if not scope["instance_id"]:
        return
    try:
        await request.client.raise_event(scope["instance_id"], event, data or {})
    except Exception as exc:
        log.warning("could not signal %s to %s: %s", event, scope["instance_id"], exc)


@api(bp, "POST", "/api/teams/{team_id}/pause", summary="Pause an active team", tag="teams",
     response=ActionResponse, status=202, durable_client=True)
async def teams_pause(request: Request, _: None) -> Reply:
    team_id = request.route_uuid("team_id")
    row = await request.ctx.services.teams.pause(team_id, request.user.actor, company_id=request.user.company_id)
    await _signal(request, team_id, "pause")
    return Reply(ActionResponse(id=team_id, status=row["status"], version=row["version"]), status=202)


@api(bp, "POST", "/api/teams/{team_id}/resume", summary="Resume a paused team", tag="teams",
     response=ActionResponse, status=202, durable_client=True)
async def teams_resume(request: Request, _: None) -> Reply:
    team_id = request.route_uuid("team_id")
    row = await request.ctx.services.teams.resume(team_id, request.user.actor, company_id=request.user.company_id)
    await _signal(request, team_id, "resume")
    return Reply(ActionResponse(id=team_id, status=row["status"], version=row["version"]), status=202)


@api(bp, "POST", "/api/teams/{team_id}/cancel", summary="Cancel a team for good", tag="teams",
     response=ActionResponse, status=202, durable_client=True)
async def teams_cancel(request: Request, _: None) -> Reply:
    team_id = request.route_uuid("team_id")
    row = await request.ctx.services.teams.cancel(team_id, request.user.actor, company_id=request.user.company_id)
    await _signal(request, team_id, "cancel")
    return Reply(ActionResponse(id=team_id, status=row["status"], version=row["version"]), status=202)


@api(bp, "POST", "/api/teams/{team_id}/plan/approve", summary="Approve (optionally edit) the plan", tag="teams",
     body=PlanApproval, response=ActionResponse, status=202, durable_client=True)
async def teams_plan_approve(request: Request, body: PlanApproval) -> Reply:
    team_id = request.route_uuid("team_id")
    services = request.ctx.services
    scope = await services.teams.require_awaiting_plan(request.user.company_id, team_id)
    if body.tasks is not None:
        await services.tasks.create_plan(team_id, body.tasks, request.user.actor, replace_pending=True)
    await services.teams.set_awaiting_plan_approval(team_id, False, request.user.actor)
    if not scope["instance_id"]:
        raise Conflict("the team has no running orchestration")
    await request.client.raise_event(scope["instance_id"], "plan_approved",
                                     {"edited": body.tasks is not None, "by": str(request.user.user_id)})
    return Reply(ActionResponse(id=team_id, status=scope["status"], version=scope["version"]), status=202)


async def _owned(request: Request) -> UUID:
    team_id = request.route_uuid("team_id")
    await request.ctx.services.teams.get_scope_for(request.user.company_id, team_id)
    return team_id


@api(bp, "GET", "/api/teams/{team_id}/tasks", summary="The team's tasks in plan order", tag="teams",
     query=TaskFilterQuery, response=list[TaskPublic])
async def teams_tasks(request: Request, query: TaskFilterQuery) -> Reply:
    team_id = request.route_uuid("team_id")

    async def load() -> bytes:
        await _owned(request)
        return to_json(await request.ctx.services.tasks.list_for_team(team_id, status=query.status))

    key = f"team-tasks:{team_id}:{query.status}"
    return Reply(raw_json=await request.ctx.cache.get_or_load(request.user.company_id, key, load))


@api(bp, "GET", "/api/teams/{team_id}/messages", summary="Agent messages, oldest first", tag="teams",
     query=MessagesQuery, response=list[MessagePublic])
async def teams_messages(request: Request, query: MessagesQuery) -> list[MessagePublic]:
    team_id = await _owned(request)
    return await request.ctx.services.messages.list(team_id, after=query.after, limit=query.limit)


@api(bp, "GET", "/api/teams/{team_id}/costs", summary="Spend against budget, by model and member", tag="teams",
     response=TeamCosts)
async def teams_costs(request: Request, _: None) -> TeamCosts:
    team_id = await _owned(request)
    return await request.ctx.services.costs.totals(team_id)


@api(bp, "GET", "/api/teams/{team_id}/events", summary="The team's event stream after a seq (backfill)",
     tag="teams", query=EventsQuery, response=list[TeamEventPublic])
async def teams_events(request: Request, query: EventsQuery) -> list[TeamEventPublic]:
    team_id = await _owned(request)
    return await request.ctx.services.events.after(team_id, query.after_seq, limit=query.limit)

