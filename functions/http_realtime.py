"""Real-time endpoints: client negotiation, and the Web PubSub event handler (upstream) webhook."""

from __future__ import annotations

import json
import logging

import azure.durable_functions as df
import azure.functions as func
from azure.core.exceptions import AzureError

from functions.http_common import SECURITY_HEADERS, Request, api, problem
from shared.domain.errors import DependencyDown
from shared.realtime import ClientAccess, CloudEvent, NegotiateRequest, Realtime, realtime_of
from shared.runtime import AppContext, get_context

log = logging.getLogger(__name__)
bp = df.Blueprint()


def _realtime(ctx: AppContext) -> Realtime:
    realtime = realtime_of(ctx.db)
    if realtime is None:
        raise DependencyDown("real-time updates are not configured; poll GET /api/teams/{id}/events")
    return realtime


@api(bp, "POST", "/api/realtime/negotiate", summary="A Web PubSub client URL limited to the company's groups",
     tag="realtime", body=NegotiateRequest, response=ClientAccess)
async def realtime_negotiate(request: Request, body: NegotiateRequest) -> ClientAccess:
    return await _realtime(request.ctx).negotiate(request.user, body.team_id)


@bp.function_name("realtime_events")
@bp.route(route="api/realtime/events", methods=["POST", "OPTIONS"])
async def realtime_events(req: func.HttpRequest) -> func.HttpResponse:
    """CloudEvents from Web PubSub (not a public API: only the service, proven by its signature)."""
    return await handle_service_event(req)


async def handle_service_event(req: func.HttpRequest) -> func.HttpResponse:
    realtime = realtime_of((await get_context()).db)
    if realtime is None:
        return problem(503, "Service Unavailable", "real-time updates are not configured")
    if req.method == "OPTIONS":
        origin = realtime.allowed_origin(req.headers.get("webhook-request-origin"))
        if origin is None:
            return problem(400, "Bad Request", "unknown WebHook-Request-Origin")
        return func.HttpResponse(status_code=200, headers={**SECURITY_HEADERS, "WebHook-Allowed-Origin": origin})
    event = CloudEvent.from_http(dict(req.headers), req.get_body() or b"")
    if event is None:
        return problem(400, "Bad Request", "not a Web PubSub CloudEvent")
    if not realtime.events.authentic(event):
        return problem(401, "Unauthorized", "bad ce-signature or hub")
    try:
        reply = await realtime.events.handle(event)
    except AzureError as exc:
        log.warning("event handler could not reach Web PubSub: %s", exc)
        return problem(503, "Service Unavailable", "Web PubSub is not reachable")
    if reply.body is None:
        return func.HttpResponse(status_code=reply.status, headers=SECURITY_HEADERS)
    return func.HttpResponse(json.dumps(reply.body), status_code=reply.status, headers=SECURITY_HEADERS,
                             mimetype="application/json", charset="utf-8")
