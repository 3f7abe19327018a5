"""How the app reaches Azure Web PubSub: the connection string, the official async service client, group names.

Group names are the contract with clients (API.md): `team_<team_id>` and `company_<company_id>`; a
role suffix `webpubsub.joinLeaveGroup.<group>` limits a client token to one group
(../shared/protocols/WEB_PUBSUB.md, "Client access URL").
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from urllib.parse import urlsplit
from uuid import UUID

from azure.messaging.webpubsubservice.aio import WebPubSubServiceClient

__all__ = ["ConnectionInfo", "company_group", "join_role", "team_group"]

# The publisher owns retries (the outbox keeps what failed), so one try per call, with short timeouts:
# a service that is down must not hold a database connection for long.
_CLIENT_OPTIONS: dict[str, object] = {"retry_total": 0, "connection_timeout": 3, "read_timeout": 10}
#: With `use_env_settings` (the SDK's default) aiohttp looks up the proxy variables and reads
#: `~/.netrc` (in a thread) on *every* request: a third of a publish's CPU. The app sends only to its
#: own Web PubSub endpoint; the lookup is kept only when a proxy is configured in the environment.
_PROXY_VARIABLES = ("HTTPS_PROXY", "HTTP_PROXY", "ALL_PROXY", "https_proxy", "http_proxy", "all_proxy")


def client_options() -> dict[str, object]:
    """Options of every service client: one try per call, short timeouts, env lookups only with a proxy."""
    return {**_CLIENT_OPTIONS, "use_env_settings": any(os.environ.get(v) for v in _PROXY_VARIABLES)}


def team_group(team_id: UUID | str) -> str:
    return f"team_{team_id}"


def company_group(company_id: UUID | str) -> str:
    return f"company_{company_id}"


def join_role(group: str) -> str:
    return f"webpubsub.joinLeaveGroup.{group}"


@dataclass(frozen=True)
class ConnectionInfo:
    """The parts of a Web PubSub connection string the app needs."""

    connection_string: str
    endpoint: str
    access_key: str

    @classmethod
    def parse(cls, connection_string: str) -> ConnectionInfo:
        parts = {
            key.strip().lower(): value.strip()
            for key, _, value in (p.partition("=") for p in connection_string.split(";"))
            if key.strip()
        }
        endpoint = parts.get("endpoint", "").rstrip("/")
        if not endpoint.startswith(("http://", "https://")):
            raise ValueError("WEBPUBSUB_CONNECTION_STRING has no http(s) Endpoint")
        if parts.get("port"):
            endpoint = f"{endpoint}:{parts['port']}"
        if not parts.get("accesskey"):
            # The event handler's signatures and locally built client tokens both need the key.
            raise ValueError("WEBPUBSUB_CONNECTION_STRING has no AccessKey")
        return cls(connection_string, endpoint, parts["accesskey"])

    @property
    def host(self) -> str:
        return urlsplit(self.endpoint).hostname or ""

    def client(self, hub: str) -> WebPubSubServiceClient:
        """A new service client (it opens its HTTP session on first use; close it with `close()`)."""
        return WebPubSubServiceClient.from_connection_string(self.connection_string, hub=hub, **client_options())
