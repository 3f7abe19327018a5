"""Web PubSub's event handler (upstream): CloudEvents over HTTP from the service, in binary content mode.

Protocol (Azure "Event handler CloudEvents protocol"; devhost/pubsub/upstream.py speaks the same):
- `OPTIONS` abuse protection: the service sends `WebHook-Request-Origin: <service host>` and expects
  it back in `WebHook-Allowed-Origin`.
- `POST` with `ce-type` `azure.webpubsub.sys.connect|connected|disconnected` or
  `azure.webpubsub.user.<event>`, `ce-connectionId`, `ce-userId`, `ce-hub`, and `ce-signature`:
  `sha256=<hex HMAC-SHA256(AccessKey, connectionId)>`, one comma-separated value per service key.
- A user event's response body goes back to the calling connection.

The app handles one user request, from raw clients (`message` event) or subprotocol clients (event
`subscribe`): `{"type": "subscribe", "team_id": "..."}` adds the connection to `team_<id>` after
checking that the connection's user belongs to the team's company; `unsubscribe` removes it.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from uuid import UUID

from azure.messaging.webpubsubservice.aio import WebPubSubServiceClient

from shared.db.database import Database
from shared.db.repositories import teams as team_repo
from shared.json_limits import loads_bounded
from shared.realtime.service import team_group

__all__ = ["CloudEvent", "EventHandler", "HandlerReply", "allowed_origin", "signature_valid"]

SYSTEM_PREFIX = "azure.webpubsub.sys."
USER_PREFIX = "azure.webpubsub.user."




@dataclass(frozen=True)
class CloudEvent:
    """The `ce-*` attributes the app uses, and the body."""

    type: str
    hub: str
    connection_id: str
    user_id: str | None
    event_name: str
    signature: str | None
    body: bytes

    @classmethod
    def from_http(cls, headers: Mapping[str, str], body: bytes) -> CloudEvent | None:
        """None when the request is not a Web PubSub CloudEvent (no type or connection id)."""
        get = {k.lower(): v for k, v in headers.items()}.get
        ce_type, connection_id = get("ce-type"), get("ce-connectionid")
        if not ce_type or not connection_id:
            return None
        return cls(type=ce_type, hub=get("ce-hub") or "", connection_id=connection_id,
                   user_id=get("ce-userid") or None, event_name=get("ce-eventname") or "",
                   signature=get("ce-signature"), body=body)


@dataclass(frozen=True)
class HandlerReply:
    status: int
    body: dict[str, Any] | None = None


def signature_valid(access_key: str, connection_id: str, header: str | None) -> bool:
    """True when one of the header's `sha256=` values is the HMAC of the connection id with our key."""
    if not header:
        return False
    expected = hmac.new(access_key.encode(), connection_id.encode(), hashlib.sha256).hexdigest()
    offered = (part.strip().removeprefix("sha256=") for part in header.split(","))
    return any(hmac.compare_digest(expected, value) for value in offered)


def allowed_origin(request_origin: str | None, service_host: str) -> str | None:
    """The `WebHook-Allowed-Origin` answer: only our own Web PubSub service may deliver events."""
    if request_origin and request_origin.strip().lower() == service_host.lower():
        return service_host
    return None


def _request(event: CloudEvent) -> tuple[str, str] | None:
    """(`subscribe` | `unsubscribe`, team id) of a user event, or None when it is something else."""
    try:
        data = loads_bounded(event.body) if event.body else {}
    except (ValueError, UnicodeDecodeError):  # JsonTooDeep is a ValueError too
        return None
    if not isinstance(data, dict):
        return None
    action = data.get("type") if event.event_name == "message" else event.event_name
    if action not in ("subscribe", "unsubscribe") or not isinstance(data.get("team_id"), str):
        return None
    return str(action), str(data["team_id"])


class EventHandler:
    def __init__(self, *, db: Database, client: WebPubSubServiceClient, hub: str, access_key: str) -> None:
        self.db = db
        self.client = client
        self.hub = hub
        self.access_key = access_key

    def authentic(self, event: CloudEvent) -> bool:
        return event.hub == self.hub and signature_valid(self.access_key, event.connection_id, event.signature)

    async def handle(self, event: CloudEvent) -> HandlerReply:
        if event.type.startswith(SYSTEM_PREFIX):
            # connect: the token already says who the user is; accept it unchanged.
            return HandlerReply(204)
        if not event.type.startswith(USER_PREFIX):
            return HandlerReply(400, {"type": "error", "detail": "unknown event type"})
        request = _request(event)
        if request is None:
            return HandlerReply(204)  # not for us: the service drops it
        action, raw_team_id = request
        if not await self._member(event.user_id, raw_team_id):
            return HandlerReply(200, {"type": f"{action}_failed", "team_id": raw_team_id, "detail": "no such team"})
        group = team_group(raw_team_id)
        if action == "subscribe":
            await self.client.add_connection_to_group(group, event.connection_id)
        else:
            await self.client.remove_connection_from_group(group, event.connection_id)
        return HandlerReply(200, {"type": f"{action}d", "team_id": raw_team_id, "group": group})

    async def _member(self, user_id: str | None, raw_team_id: str) -> bool:
        try:
            team_id, user = UUID(raw_team_id), UUID(user_id or "")
        except ValueError:
            return False
        async with self.db.connection() as conn:
            return await team_repo.user_in_team_company(conn, team_id, user)
