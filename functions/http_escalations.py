"""Escalations: the human in the loop lists what waits for a decision and makes it."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal
from uuid import UUID

import azure.durable_functions as df
from pydantic import Field

from functions.http_common import QueryParams, Request, api
from shared.domain.models import EscalationPublic, EscalationResolve

bp = df.Blueprint()


class EscalationQuery(QueryParams):
    status: Literal["open", "resolved", "all"] = "open"
    team_id: UUID | None = None
    limit: int = Field(default=100, ge=1, le=500)


@api(bp, "GET", "/api/escalations", summary="Escalations of the company (open by default)", tag="escalations",
     query=EscalationQuery, response=list[EscalationPublic])
async def escalations_list(request: Request, query: EscalationQuery) -> Sequence[EscalationPublic]:
    return await request.ctx.services.escalations.list(
        request.user.company_id, status=None if query.status == "all" else query.status, team_id=query.team_id,
        limit=query.limit,
    )


@api(bp, "POST", "/api/escalations/{escalation_id}/resolve", summary="Decide an escalation", tag="escalations",
     body=EscalationResolve, response=EscalationPublic, durable_client=True)
async def escalations_resolve(request: Request, body: EscalationResolve) -> EscalationPublic:
    return await request.ctx.services.control.resolve_escalation(
        request.user, request.route_uuid("escalation_id"), body, request.client)
