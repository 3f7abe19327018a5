"""Negotiate and the event-handler webhook, called the way the Functions host calls them."""

from __future__ import annotations

import hashlib
import hmac
import json
from typing import Any

import azure.functions as func
import jwt

from functions import http_realtime
from functions.http_common import ROUTES, run
from shared.domain.models import Principal, RegisterRequest, TeamCreate
from shared.realtime import realtime_of, team_group
from tests.realtime.conftest import ACCESS_KEY, HUB


async def negotiate(ctx: Any, principal: Principal, body: dict[str, Any]) -> func.HttpResponse:
    spec = next(r for r in ROUTES if r.name == "realtime_negotiate")
    user = await ctx.services.auth.get_user(principal.user_id, principal.company_id)
    token = (await ctx.tokens.issue(user)).token
    request = func.HttpRequest(method="POST", url="http://test/api/realtime/negotiate",
                               headers={"Authorization": f"Bearer {token}"}, body=json.dumps(body).encode())
    return await run(request, spec, http_realtime.realtime_negotiate)


def claims(url: str) -> dict[str, Any]:
    token = url.split("access_token=", 1)[1]
    decoded: dict[str, Any] = jwt.decode(token, ACCESS_KEY, algorithms=["HS256"], options={"verify_aud": False})
    return decoded


async def test_negotiate_with_a_team_prejoins_it_and_allows_only_company_groups(app, make_company):
    principal = await make_company()
    teams = [await app.services.teams.create(principal, TeamCreate(goal=f"goal {i}")) for i in range(3)]

    response = await negotiate(app, principal, {"team_id": str(teams[0].id)})

    assert response.status_code == 200, response.get_body()
    body = json.loads(response.get_body())
    assert body["hub"] == HUB and body["groups"] == [team_group(teams[0].id)]
    token = claims(body["url"])
    assert token["sub"] == str(principal.user_id)
    assert token["webpubsub.group"] == [team_group(teams[0].id)]
    assert sorted(token["role"]) == sorted(
        [f"webpubsub.joinLeaveGroup.company_{principal.company_id}"]
        + [f"webpubsub.joinLeaveGroup.team_{t.id}" for t in teams])


async def test_negotiate_without_a_team_prejoins_the_company_group(app, make_company):
    principal = await make_company()

    body = json.loads((await negotiate(app, principal, {})).get_body())

    assert body["groups"] == [f"company_{principal.company_id}"]
    assert claims(body["url"])["role"] == [f"webpubsub.joinLeaveGroup.company_{principal.company_id}"]


async def test_negotiate_for_another_companys_team_is_not_found(app, make_company):
    owner, stranger = await make_company("Owner"), await make_company("Stranger")
    team = await app.services.teams.create(owner, TeamCreate(goal="secret"))

    response = await negotiate(app, stranger, {"team_id": str(team.id)})

    assert response.status_code == 404
    assert response.mimetype == "application/problem+json"


async def test_negotiate_is_503_problem_when_web_pubsub_is_not_configured(app_without_pubsub):
    ctx = app_without_pubsub
    user = await ctx.services.auth.register(RegisterRequest(
        company_name="Solo", email="solo@example.com", password="correct horse battery", full_name="Solo"))
    principal = Principal(user_id=user.id, company_id=user.company_id, role=user.role)

    response = await negotiate(ctx, principal, {})

    assert response.status_code == 503
    assert json.loads(response.get_body())["title"] == "Service Unavailable"


def service_event(ce_type: str, *, connection_id: str = "conn-1", user_id: str | None = None, body: Any = None,
                  event_name: str = "message", key: str = ACCESS_KEY, hub: str = HUB) -> func.HttpRequest:
    signature = hmac.new(key.encode(), connection_id.encode(), hashlib.sha256).hexdigest()
    headers = {"ce-type": ce_type, "ce-connectionId": connection_id, "ce-hub": hub, "ce-eventName": event_name,
               "ce-signature": f"sha256=0000,sha256={signature}", "ce-specversion": "1.0"}
    if user_id:
        headers["ce-userId"] = user_id
    data = json.dumps(body).encode() if body is not None else b""
    return func.HttpRequest(method="POST", url="http://test/api/realtime/events", headers=headers, body=data)


async def test_abuse_protection_handshake_echoes_only_the_service_origin(app):
    ok = await http_realtime.handle_service_event(func.HttpRequest(
        method="OPTIONS", url="http://test/api/realtime/events", headers={"WebHook-Request-Origin": "127.0.0.1"},
        body=b""))
    stranger = await http_realtime.handle_service_event(func.HttpRequest(
        method="OPTIONS", url="http://test/api/realtime/events", headers={"WebHook-Request-Origin": "evil.example"},
        body=b""))

    assert ok.status_code == 200 and ok.headers["WebHook-Allowed-Origin"] == "127.0.0.1"
    assert stranger.status_code == 400 and "WebHook-Allowed-Origin" not in stranger.headers


async def test_events_with_a_wrong_signature_or_hub_are_refused(app):
    forged = await http_realtime.handle_service_event(
        service_event("azure.webpubsub.sys.connect", key="not-the-access-key-0123456789abcdef"))
    other_hub = await http_realtime.handle_service_event(service_event("azure.webpubsub.sys.connect", hub="other"))
    genuine = await http_realtime.handle_service_event(service_event("azure.webpubsub.sys.connect"))

    assert forged.status_code == 401 and other_hub.status_code == 401
    assert genuine.status_code == 204


async def test_subscribe_adds_the_connection_only_for_a_team_of_the_users_company(app, make_company, open_client):
    owner, stranger = await make_company("Owner"), await make_company("Stranger")
    team = await app.services.teams.create(owner, TeamCreate(goal="watch me"))
    realtime = realtime_of(app.db)
    await realtime.publisher.drain()  # the team's creation (seq 1) goes out before anyone subscribes
    token = await realtime.client.get_client_access_token(user_id=str(stranger.user_id))
    _, stranger_inbox = await open_client(token["url"])
    token = await realtime.client.get_client_access_token(user_id=str(owner.user_id))
    _, owner_inbox = await open_client(token["url"])
    request = {"type": "subscribe", "team_id": str(team.id)}

    refused = await http_realtime.handle_service_event(service_event(
        "azure.webpubsub.user.message", connection_id=stranger_inbox.connected[0].connection_id,
        user_id=str(stranger.user_id), body=request))
    accepted = await http_realtime.handle_service_event(service_event(
        "azure.webpubsub.user.subscribe", connection_id=owner_inbox.connected[0].connection_id,
        user_id=str(owner.user_id), body={"team_id": str(team.id)}, event_name="subscribe"))

    assert json.loads(refused.get_body()) == {"type": "subscribe_failed", "team_id": str(team.id),
                                              "detail": "no such team"}
    assert json.loads(accepted.get_body())["type"] == "subscribed"
    await app.services.messages.post(team_id=team.id, sender="test", content="hello")
    await owner_inbox.until(lambda: bool(owner_inbox.events))
    await realtime.publisher.drain()
    assert owner_inbox.seqs(team.id) == [2] and stranger_inbox.events == []
