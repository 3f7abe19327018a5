"""Escalations: the human in the loop lists what waits for a decision and makes it."""

from __future__ import annotations

from typing import Literal
from uuid import UUID

import azure.durable_functions as df
from pydantic import Field

from functions.http_common import QueryParams, Request, api
from shared.domain.models import EscalationPublic, EscalationResolve
from shared.orchestration_names import EVENT_ESCALATION_RESOLVED

bp = df.Blueprint()


class EscalationQuery(QueryParams):
    status: Literal["open", "resolved", "all"] = "open"
    team_id: UUID | None = None
    limit: int = Field(default=100, ge=1, le=500)


@api(bp, "GET", "/api/escalations", summary="Escalations of the company (open by default)", tag="escalations",
     query=EscalationQuery, response=list[EscalationPublic])
async def escalations_list(request: Request, query: EscalationQuery) -> list[EscalationPublic]:
    return await request.ctx.services.escalations.list(
        request.user.company_id, status=None if query.status == "all" else query.status, team_id=query.team_id,
        limit=query.limit,
    )


@api(bp, "POST", "/api/escalations/{escalation_id}/resolve", summary="Decide an escalation", tag="escalations",
     body=EscalationResolve, response=EscalationPublic, durable_client=True)
async def escalations_resolve(request: Request, body: EscalationResolve) -> EscalationPublic:
    resolved, instance_id = await request.ctx.services.escalations.resolve(
        request.user, request.route_uuid("escalation_id"), body
    )
    if instance_id:
        await request.client.raise_event(instance_id, EVENT_ESCALATION_RESOLVED, resolved.model_dump(mode="json"))
    return resolved
