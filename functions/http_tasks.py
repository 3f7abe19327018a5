"""Task endpoints: company-wide listing, detail, history, checkpoints, and retry."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal
from uuid import UUID

import azure.durable_functions as df
from pydantic import BaseModel, Field, TypeAdapter

from functions.http_common import QueryParams, Reply, Request, api, next_link
from shared.domain.models import AuditEventPublic, CheckpointPublic, TaskPublic
from shared.domain.states import TaskStatus

bp = df.Blueprint()
_TASKS: TypeAdapter[Sequence[TaskPublic]] = TypeAdapter(Sequence[TaskPublic])


class TaskListQuery(QueryParams):
    status: TaskStatus | Literal["active"] | None = None
    team_id: UUID | None = None
    limit: int = Field(default=50, ge=1, le=200)
    cursor: str | None = Field(default=None, max_length=200)


class RetryResponse(BaseModel):
    id: UUID
    status: TaskStatus
    accepted: bool = True


@api(bp, "GET", "/api/tasks", summary="The company's tasks, newest first", tag="tasks", query=TaskListQuery,
     response=list[TaskPublic])
async def tasks_list(request: Request, query: TaskListQuery) -> Reply:
    services = request.ctx.services

    async def load() -> bytes:
        page = await services.tasks.list_for_company(
            request.user.company_id, status=query.status, team_id=query.team_id, limit=query.limit,
            cursor=query.cursor,
        )
        return (page.next_cursor or "").encode() + b"\n" + _TASKS.dump_json(page.items)

    # Every task change writes audit in its transaction, which bumps the company's cache generation.
    key = f"tasks:{query.status}:{query.team_id}:{query.limit}:{query.cursor}"
    cached = await request.ctx.cache.get_or_load(request.user.company_id, key, load)
    next_cursor, _, body = cached.partition(b"\n")
    return Reply(raw_json=body, headers=next_link(request, "/api/tasks", next_cursor.decode()) if next_cursor else {})


@api(bp, "GET", "/api/tasks/{task_id}", summary="A task", tag="tasks", response=TaskPublic)
async def tasks_get(request: Request, _: None) -> TaskPublic:
    return await request.ctx.services.tasks.get(request.route_uuid("task_id"), company_id=request.user.company_id)


@api(bp, "GET", "/api/tasks/{task_id}/history", summary="The task's audit events, oldest first", tag="tasks",
     response=list[AuditEventPublic])
async def tasks_history(request: Request, _: None) -> list[AuditEventPublic]:
    return await request.ctx.services.tasks.history(request.route_uuid("task_id"), company_id=request.user.company_id)


@api(bp, "GET", "/api/tasks/{task_id}/checkpoints", summary="The task's checkpoints by step", tag="tasks",
     response=list[CheckpointPublic])
async def tasks_checkpoints(request: Request, _: None) -> list[CheckpointPublic]:
    task = await request.ctx.services.tasks.get(request.route_uuid("task_id"), company_id=request.user.company_id)
    return list(await request.ctx.services.checkpoints.list(task.id))


@api(bp, "POST", "/api/tasks/{task_id}/retry", summary="Run a failed or escalated task again from its latest "
     "checkpoint", tag="tasks", response=RetryResponse, status=202, durable_client=True)
async def tasks_retry(request: Request, _: None) -> RetryResponse:
    task = await request.ctx.services.control.retry_task(request.user, request.route_uuid("task_id"), request.client)
    return RetryResponse(id=task.id, status=task.status)
