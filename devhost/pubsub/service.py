"""The emulated service instance: access key, hubs, limits, background tasks and the optional upstream."""

from __future__ import annotations

import re
from collections.abc import Sequence

from devhost.pubsub.connection import Connection
from devhost.pubsub.hub import Background, Hub, Limits
from devhost.pubsub.upstream import Caller, EventHandlerUpstream

# The service SDK validates hub names the same way (letters, digits, underscore; a letter first).
HUB_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_]{0,127}$")


class ServiceState:
    """Shared by the REST API and the client endpoint; one per emulator."""

    def __init__(
        self,
        access_key: str,
        *,
        hub_names: set[str] | None,
        upstream_url: str | Sequence[str] | None,
        limits: Limits,
    ) -> None:
        self.access_key = access_key
        self.allowed_hubs = None if hub_names is None else {name.lower() for name in hub_names}
        self.limits = limits
        self.background = Background()
        self.upstream = EventHandlerUpstream(upstream_url, access_key) if upstream_url else None
        self.hubs: dict[str, Hub] = {}
        self.closing = False

    def hub(self, name: str) -> Hub | None:
        """The hub for `name` (case-insensitive), created on first use; None when not served."""
        if not HUB_NAME.match(name):
            return None
        key = name.lower()
        if self.allowed_hubs is not None and key not in self.allowed_hubs:
            return None
        hub = self.hubs.get(key)
        if hub is None:
            hub = self.hubs[key] = Hub(
                name, limits=self.limits, background=self.background, on_gone=self._report_gone
            )
        return hub

    def caller(self, hub: Hub, connection: Connection) -> Caller:
        return Caller(hub.name, connection.connection_id, connection.user_id, connection.subprotocol)

    def _report_gone(self, hub: Hub, connection: Connection, reason: str) -> None:
        if self.upstream is not None:
            self.background.spawn(
                self.upstream.notify(self.caller(hub, connection), "disconnected", {"reason": reason})
            )
