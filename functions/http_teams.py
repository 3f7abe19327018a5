"""Team endpoints: create, read (cached, one query each), lifecycle controls, and the team's feeds."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from uuid import UUID

import azure.durable_functions as df
from pydantic import BaseModel, Field, TypeAdapter, field_validator

from functions.http_common import QueryParams, Reply, Request, api, next_link
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

bp = df.Blueprint()
_TASKS: TypeAdapter[Sequence[TaskPublic]] = TypeAdapter(Sequence[TaskPublic])


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
    return Reply(await request.ctx.services.control.create(request.user, body, request.client), status=201)


@api(bp, "GET", "/api/teams/{team_id}", summary="A team with members, tasks and cost totals", tag="teams",
     response=TeamPublic)
async def teams_get(request: Request, _: None) -> Reply:
    team_id = request.route_uuid("team_id")
    services = request.ctx.services

    async def load() -> bytes:
        return (await services.teams.get(request.user.company_id, team_id)).model_dump_json().encode()

    return Reply(raw_json=await request.ctx.cache.get_or_load(request.user.company_id, f"team:{team_id}", load))


@api(bp, "POST", "/api/teams/{team_id}/start", summary="Start planning and running the team", tag="teams",
     response=StartResponse, status=202, durable_client=True)
async def teams_start(request: Request, _: None) -> StartResponse:
    moved = await request.ctx.services.control.start(request.user, request.route_uuid("team_id"), request.client)
    return StartResponse(id=moved.id, status=moved.status, instance_id=moved.instance_id)


@api(bp, "POST", "/api/teams/{team_id}/pause", summary="Pause an active team", tag="teams",
     response=ActionResponse, status=202, durable_client=True)
async def teams_pause(request: Request, _: None) -> ActionResponse:
    moved = await request.ctx.services.control.pause(request.user, request.route_uuid("team_id"), request.client)
    return ActionResponse(id=moved.id, status=moved.status, version=moved.version)


@api(bp, "POST", "/api/teams/{team_id}/resume", summary="Resume a paused team", tag="teams",
     response=ActionResponse, status=202, durable_client=True)
async def teams_resume(request: Request, _: None) -> ActionResponse:
    moved = await request.ctx.services.control.resume(request.user, request.route_uuid("team_id"), request.client)
    return ActionResponse(id=moved.id, status=moved.status, version=moved.version)


@api(bp, "POST", "/api/teams/{team_id}/cancel", summary="Cancel a team for good", tag="teams",
     response=ActionResponse, status=202, durable_client=True)
async def teams_cancel(request: Request, _: None) -> ActionResponse:
    moved = await request.ctx.services.control.cancel(request.user, request.route_uuid("team_id"), request.client)
    return ActionResponse(id=moved.id, status=moved.status, version=moved.version)


@api(bp, "POST", "/api/teams/{team_id}/plan/approve", summary="Approve (optionally edit) the plan", tag="teams",
     body=PlanApproval, response=ActionResponse, status=202, durable_client=True)
async def teams_plan_approve(request: Request, body: PlanApproval) -> ActionResponse:
    scope = await request.ctx.services.control.approve_plan(request.user, request.route_uuid("team_id"), body.tasks,
                                                            request.client)
    return ActionResponse(id=scope.id, status=scope.status, version=scope.version)


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
        return _TASKS.dump_json(await request.ctx.services.tasks.list_for_team(team_id, status=query.status))

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

