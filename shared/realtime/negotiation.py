"""Client access for the browser: a Web PubSub URL whose token only lets the caller join its company's groups.

Roles are per group (`webpubsub.joinLeaveGroup.<group>`) and travel in the token, which travels in
the URL, so the token cannot name every team of a large company. It names the company group, the
requested team and the company's `RECENT_TEAMS` newest teams (what the dashboard's team list shows);
a client following an older team negotiates again with that `team_id`. Clients never get send roles.
"""

from __future__ import annotations

from uuid import UUID

from azure.messaging.webpubsubservice.aio import WebPubSubServiceClient
from pydantic import BaseModel, Field

from shared.db.database import Database
from shared.db.repositories import teams as team_repo
from shared.domain.errors import NotFound
from shared.domain.models import Principal
from shared.realtime.service import company_group, join_role, team_group

__all__ = ["RECENT_TEAMS", "TOKEN_MINUTES", "ClientAccess", "NegotiateRequest", "negotiate"]

RECENT_TEAMS = 50
TOKEN_MINUTES = 60

class NegotiateRequest(BaseModel):
    team_id: UUID | None = Field(default=None, description="pre-join this team's group")


class ClientAccess(BaseModel):
    url: str = Field(description="WebSocket URL with the access token (subprotocol json.webpubsub.azure.v1)")
    hub: str
    groups: list[str] = Field(description="groups the connection joins when it connects")


async def negotiate(
    *, db: Database, client: WebPubSubServiceClient, hub: str, principal: Principal, team_id: UUID | None
) -> ClientAccess:
    """A client URL for the caller; 404 when `team_id` is not a team of the caller's company."""
    async with db.connection() as conn:
        found = await team_repo.in_scope(conn, principal.company_id, team_id, RECENT_TEAMS)
    if team_id is not None and not any(team.requested for team in found):
        raise NotFound("no such team")
    company = company_group(principal.company_id)
    teams = dict.fromkeys(team_group(team.id) for team in found)  # ordered, without duplicates
    groups = [team_group(team_id)] if team_id is not None else [company]
    token = await client.get_client_access_token(
        user_id=str(principal.user_id),
        roles=[join_role(company), *(join_role(group) for group in teams)],
        groups=groups,
        minutes_to_expire=TOKEN_MINUTES,
    )
    return ClientAccess(url=token["url"], hub=hub, groups=groups)
