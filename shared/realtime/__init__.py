"""Real time: the event outbox publisher, client negotiation and the Web PubSub event handler.

`attach_realtime(db, settings)` is called once per process (shared/runtime.py): it builds one
service client, hooks the publisher to the database's commits, and remembers the result so that
triggers find it with `realtime_of(db)`. Without `WEBPUBSUB_CONNECTION_STRING` there is no real
time (clients poll the backfill endpoint) and `realtime_of` answers None.
"""

from __future__ import annotations

import logging
from uuid import UUID
from weakref import WeakKeyDictionary

from shared.config import ConfigError, Settings
from shared.db.database import Database
from shared.domain.models import Principal
from shared.realtime.deltas import DeltaPublisher
from shared.realtime.event_handler import CloudEvent, EventHandler, HandlerReply, allowed_origin
from shared.realtime.negotiation import ClientAccess, NegotiateRequest, negotiate
from shared.realtime.publisher import COMPANY_EVENT_TYPES, OutboxPublisher, PublishFailed
from shared.realtime.service import ConnectionInfo, company_group, join_role, team_group

__all__ = [
    "COMPANY_EVENT_TYPES", "ClientAccess", "CloudEvent", "ConnectionInfo", "DeltaPublisher", "EventHandler",
    "HandlerReply",
    "NegotiateRequest", "OutboxPublisher", "PublishFailed", "Realtime", "allowed_origin", "attach_realtime",
    "company_group", "join_role", "realtime_of", "team_group",
]

log = logging.getLogger(__name__)


class Realtime:
    """Everything real-time of one process, sharing one service client."""

    def __init__(self, db: Database, info: ConnectionInfo, hub: str) -> None:
        self.db = db
        self.info = info
        self.hub = hub
        self.client = info.client(hub)
        self.publisher = OutboxPublisher(db, self.client)
        self.deltas = DeltaPublisher(self.client)  #: live `llm.delta` output, not stored
        self.events = EventHandler(db=db, client=self.client, hub=hub, access_key=info.access_key)

    async def negotiate(self, principal: Principal, team_id: UUID | None) -> ClientAccess:
        return await negotiate(db=self.db, client=self.client, hub=self.hub, principal=principal, team_id=team_id)

    def allowed_origin(self, request_origin: str | None) -> str | None:
        return allowed_origin(request_origin, self.info.host)

    async def aclose(self) -> None:
        """Let background publishing finish (bounded), then close the service client."""
        if self.publisher.on_commit in self.db.listeners:
            self.db.listeners.remove(self.publisher.on_commit)
        await self.publisher.drain()
        await self.client.close()
        _attached.pop(self.db, None)


_attached: WeakKeyDictionary[Database, Realtime] = WeakKeyDictionary()


def attach_realtime(db: Database, settings: Settings) -> Realtime | None:
    """Hook real time to `db` when Web PubSub is configured (once per database object)."""
    existing = _attached.get(db)
    if existing is not None or not settings.WEBPUBSUB_CONNECTION_STRING:
        return existing
    try:
        info = ConnectionInfo.parse(settings.WEBPUBSUB_CONNECTION_STRING)
    except ValueError as exc:
        raise ConfigError(str(exc)) from None
    realtime = Realtime(db, info, settings.WEBPUBSUB_HUB)
    db.listeners.append(realtime.publisher.on_commit)
    _attached[db] = realtime
    return realtime


def realtime_of(db: Database) -> Realtime | None:
    return _attached.get(db)
