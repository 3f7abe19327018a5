"""Task endpoints: company-wide listing, detail, history, checkpoints, and retry."""

from __future__ import annotations

from typing import Literal
from uuid import UUID

import azure.durable_functions as df
from pydantic import BaseModel, Field

from functions.http_common import QueryParams, Reply, Request, api, next_link, to_json
from shared.domain.errors import Conflict
from shared.domain.models import AuditEventPublic, CheckpointPublic, EscalationResolve, TaskPublic
from shared.domain.states import TaskStatus, TeamStatus
from shared.orchestration_names import EVENT_ESCALATION_RESOLVED, EVENT_RETRY

bp = df.Blueprint()


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
        return (page.next_cursor or "").encode() + b"\n" + to_json(page.items)

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
    task_id = request.route_uuid("task_id")
    await request.ctx.services.tasks.get_row(task_id, company_id=request.user.company_id)
    return await request.ctx.services.checkpoints.list(task_id)


@api(bp, "POST", "/api/tasks/{task_id}/retry", summary="Run a failed or escalated task again from its latest "
     "checkpoint", tag="tasks", response=RetryResponse, status=202, durable_client=True)
async def tasks_retry(request: Request, _: None) -> Reply:
    services = request.ctx.services
    task = await services.tasks.get(request.route_uuid("task_id"), company_id=request.user.company_id)
    if task.status == TaskStatus.ESCALATED:
        waiting = await services.escalations.list(request.user.company_id, status="open", task_id=task.id)
        if not waiting:
            raise Conflict("the task is escalated but has no open escalation")
        escalation = waiting[0]
        decision = EscalationResolve(action="retry", note="retried from the task")
        resolved, instance_id = await services.escalations.resolve(request.user, escalation.id, decision)
        if instance_id:
            await request.client.raise_event(instance_id, EVENT_ESCALATION_RESOLVED, resolved.model_dump(mode="json"))
        return Reply(RetryResponse(id=task.id, status=task.status), status=202)
    if task.status != TaskStatus.FAILED:
        raise Conflict(f"only a failed or escalated task can be retried (this one is {task.status.value})")
    scope = await services.teams.get_scope(task.team_id)
    if scope["status"] not in (TeamStatus.ACTIVE.value, TeamStatus.PAUSED.value) or not scope["instance_id"]:
        raise Conflict(f"the team is {scope['status']}: only a running team can retry a task")
    await request.client.raise_event(scope["instance_id"], EVENT_RETRY, {"task_id": str(task.id)})
    return Reply(RetryResponse(id=task.id, status=task.status), status=202)
