"""Tool server endpoints (API.md "Tools (MCP)"): register, list, refresh, delete; a task's tool calls."""

from __future__ import annotations

from collections.abc import Sequence

import azure.durable_functions as df

from functions.http_common import Reply, Request, api
from shared.domain.tool_models import ToolCallPublic, ToolServerCreate, ToolServerPublic

bp = df.Blueprint()


@api(bp, "GET", "/api/tool-servers", summary="The company's MCP tool servers", tag="tools",
     response=list[ToolServerPublic])
async def tool_servers_list(request: Request, _: None) -> Sequence[ToolServerPublic]:
    return await request.ctx.services.tool_servers.list_for(request.user.company_id)


@api(bp, "POST", "/api/tool-servers", summary="Register an MCP server (after initialize and tools/list)",
     tag="tools", body=ToolServerCreate, response=ToolServerPublic, status=201)
async def tool_servers_create(request: Request, body: ToolServerCreate) -> Reply:
    return Reply(await request.ctx.services.tool_servers.register(request.user, body), status=201)


@api(bp, "POST", "/api/tool-servers/{server_id}/refresh", summary="initialize and tools/list again",
     tag="tools", response=ToolServerPublic)
async def tool_servers_refresh(request: Request, _: None) -> ToolServerPublic:
    return await request.ctx.services.tool_servers.refresh(request.user, request.route_uuid("server_id"))


@api(bp, "DELETE", "/api/tool-servers/{server_id}", summary="Remove a tool server", tag="tools", status=204)
async def tool_servers_delete(request: Request, _: None) -> Reply:
    await request.ctx.services.tool_servers.delete(request.user, request.route_uuid("server_id"))
    return Reply(status=204)


@api(bp, "GET", "/api/tasks/{task_id}/tool-calls", summary="The task's tool calls, oldest first", tag="tasks",
     response=list[ToolCallPublic])
async def tasks_tool_calls(request: Request, _: None) -> Sequence[ToolCallPublic]:
    task = await request.ctx.services.tasks.get(request.route_uuid("task_id"), company_id=request.user.company_id)
    return await request.ctx.services.tool_calls.list_for_task(task.id)
