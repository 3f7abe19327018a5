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
from collections.abc import Sequence
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
    """HTTP client for the upstream; created once per emulator, closed with it.

    Several URLs stand for several app hosts behind no balancer (devhost's multi-host mode): events
    go to the current one, and one that refuses the connection (a host that is gone) hands over to
    the next, which becomes current. Only a refused or timed-out *connect* moves on, since then
    nothing reached the host; any later failure is the handler's answer and is reported as is.
    """

    def __init__(self, urls: str | Sequence[str], access_key: str, *, timeout: float = 10.0) -> None:
        self.urls = [urls] if isinstance(urls, str) else list(urls)
        if not self.urls:
            raise ValueError("at least one upstream URL is needed")
        self._current = 0
        self._key = access_key.encode("utf-8")
        self._client = httpx.AsyncClient(timeout=timeout)

    @property
    def url(self) -> str:
        """The URL events go to now."""
        return self.urls[self._current]

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
        }
        if caller.user_id is not None:
            headers["ce-userId"] = caller.user_id
        if caller.subprotocol is not None:
            headers["ce-subprotocol"] = caller.subprotocol
        return headers

    async def _post(self, headers: dict[str, str], content: bytes, content_type: str) -> httpx.Response:
        headers["Content-Type"] = content_type
        response: httpx.Response | None = None
        for attempt in range(len(self.urls)):
            index = (self._current + attempt) % len(self.urls)
            url = self.urls[index]
            headers["WebHook-Request-Origin"] = urlsplit(url).hostname or "localhost"
            try:
                response = await self._client.post(url, headers=headers, content=content)
            except (httpx.ConnectError, httpx.ConnectTimeout) as exc:
                if attempt == len(self.urls) - 1:
                    raise UpstreamFailed(502, f"event handler unreachable: {exc}") from exc
                logger.warning("event handler %s refused the connection; trying the next one", url)
                continue
            except httpx.HTTPError as exc:
                raise UpstreamFailed(502, f"event handler unreachable: {exc}") from exc
            self._current = index
            break
        assert response is not None
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
