"""The event-handler upstream: client events delivered to the app as CloudEvents over HTTP.

Speaks the Azure Web PubSub event-handler protocol in binary content mode: `ce-*` headers, `ce-type`
`azure.webpubsub.sys.{connect,connected,disconnected}` or `azure.webpubsub.user.<event>`, and a
`ce-signature` HMAC-SHA256 of the connection id keyed with the AccessKey, so the app can verify it.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

import httpx

from devhost.pubsub.payload import InvalidPayload, Payload

logger = logging.getLogger("devhost.pubsub.upstream")

_CONTENT_TYPES = {
    "json": "application/json",
    "text": "text/plain; charset=utf-8",
    "binary": "application/octet-stream",
}


class UpstreamFailed(Exception):
    """The event handler answered with an error or could not be reached."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True, slots=True)
class Caller:
    """Who an event is about, as the `ce-*` headers describe it."""

    hub: str
    connection_id: str
    user_id: str | None
    subprotocol: str | None = None


@dataclass(slots=True)
class ConnectDecision:
    """What the handler's answer to `connect` changes about the new connection."""

    user_id: str | None = None
    groups: list[str] = field(default_factory=list)
    roles: list[str] = field(default_factory=list)
    subprotocol: str | None = None


class EventHandlerUpstream:
    """HTTP client for one upstream URL; created once per emulator, closed with it."""

    def __init__(self, url: str, access_key: str, *, timeout: float = 10.0) -> None:
        self.url = url
        self._key = access_key.encode("utf-8")
        self._origin = urlsplit(url).hostname or "localhost"
        self._client = httpx.AsyncClient(timeout=timeout)

    async def aclose(self) -> None:
        await self._client.aclose()

    def _headers(self, caller: Caller, ce_type: str, event_name: str) -> dict[str, str]:
        signature = hmac.new(self._key, caller.connection_id.encode("utf-8"), hashlib.sha256).hexdigest()
        headers = {
            "ce-specversion": "1.0",
            "ce-type": ce_type,
            "ce-source": f"/hubs/{caller.hub}/client/{caller.connection_id}",
            "ce-id": uuid.uuid4().hex,
            "ce-time": datetime.now(UTC).isoformat(),
            "ce-awpsversion": "1.0",
            "ce-hub": caller.hub,
            "ce-connectionId": caller.connection_id,
            "ce-eventName": event_name,
            "ce-signature": f"sha256={signature}",
            "WebHook-Request-Origin": self._origin,
        }
        if caller.user_id is not None:
            headers["ce-userId"] = caller.user_id
        if caller.subprotocol is not None:
            headers["ce-subprotocol"] = caller.subprotocol
        return headers

    async def _post(self, headers: dict[str, str], content: bytes, content_type: str) -> httpx.Response:
        headers["Content-Type"] = content_type
        try:
            response = await self._client.post(self.url, headers=headers, content=content)
        except httpx.HTTPError as exc:
            raise UpstreamFailed(502, f"event handler unreachable: {exc}") from exc
        if response.status_code >= 300:
            raise UpstreamFailed(response.status_code, response.text[:200] or response.reason_phrase)
        return response

    async def connect(
        self, caller: Caller, *, claims: dict[str, Any], query: dict[str, list[str]],
        headers: dict[str, list[str]], subprotocols: list[str],
    ) -> ConnectDecision:
        """Blocking `connect` event: the handler may reject (4xx) or set user, groups and roles."""
        body = {"claims": claims, "query": query, "headers": headers, "subprotocols": subprotocols,
                "clientCertificates": []}
        response = await self._post(
            self._headers(caller, "azure.webpubsub.sys.connect", "connect"),
            json.dumps(body).encode("utf-8"), "application/json",
        )
        if not response.content:
            return ConnectDecision()
        try:
            answer = response.json()
        except ValueError as exc:
            raise UpstreamFailed(500, "connect response is not JSON") from exc
        if not isinstance(answer, dict):
            raise UpstreamFailed(500, "connect response is not a JSON object")
        return ConnectDecision(
            user_id=answer.get("userId"),
            groups=[str(group) for group in answer.get("groups") or []],
            roles=[str(role) for role in answer.get("roles") or []],
            subprotocol=answer.get("subprotocol"),
        )

    async def notify(self, caller: Caller, event_name: str, body: dict[str, Any]) -> None:
        """Non-blocking system events (`connected`, `disconnected`): failures are only logged."""
        try:
            await self._post(
                self._headers(caller, f"azure.webpubsub.sys.{event_name}", event_name),
                json.dumps(body).encode("utf-8"), "application/json",
            )
        except UpstreamFailed as exc:
            logger.warning("upstream %s event for %s failed: %s", event_name, caller.connection_id, exc)

    async def user_event(self, caller: Caller, event_name: str, payload: Payload) -> Payload | None:
        """A client `event` (or raw `message`); the handler's response body goes back to the caller."""
        response = await self._post(
            self._headers(caller, f"azure.webpubsub.user.{event_name}", event_name),
            payload.body_bytes(), _CONTENT_TYPES[payload.data_type],
        )
        if response.status_code == 204 or not response.content:
            return None
        try:
            return Payload.from_rest(response.content, response.headers.get("content-type"))
        except InvalidPayload as exc:
            raise UpstreamFailed(500, f"event response unusable: {exc}") from exc
