"""The audit log, newest first, keyset-paginated."""

from __future__ import annotations

from uuid import UUID

import azure.durable_functions as df
from pydantic import Field

from functions.http_common import QueryParams, Reply, Request, api, next_link, to_json
from shared.domain.models import AuditEventPublic

bp = df.Blueprint()


class AuditQuery(QueryParams):
    team_id: UUID | None = None
    event_type: str | None = Field(default=None, max_length=100)
    limit: int = Field(default=100, ge=1, le=500)
    cursor: str | None = Field(default=None, max_length=200)


@api(bp, "GET", "/api/audit", summary="Audit events of the company, newest first", tag="audit", query=AuditQuery,
     response=list[AuditEventPublic])
async def audit_list(request: Request, query: AuditQuery) -> Reply:
    services = request.ctx.services

    async def load() -> bytes:
        page = await services.audit.query(
            request.user.company_id, team_id=query.team_id, event_type=query.event_type, limit=query.limit,
            cursor=query.cursor,
        )
        return (page.next_cursor or "").encode() + b"\n" + to_json(page.items)

    # Every audit row is written through the unit of work, which bumps the company's audit generation.
    key = f"audit:{query.team_id}:{query.event_type}:{query.limit}:{query.cursor}"
    cached = await request.ctx.cache.get_or_load(request.user.company_id, key, load, scope="audit")
    next_cursor, _, body = cached.partition(b"\n")
    return Reply(raw_json=body, headers=next_link(request, "/api/audit", next_cursor.decode()) if next_cursor else {})
