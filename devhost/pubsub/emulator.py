"""`PubSubEmulator`: the ASGI application that stands in for an Azure Web PubSub instance."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping, Sequence
from typing import Any
from urllib.parse import quote

from devhost.pubsub.client_socket import serve_client
from devhost.pubsub.hub import Limits
from devhost.pubsub.rest import handle_rest
from devhost.pubsub.service import ServiceState

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

SHUTDOWN_REASON = "The service is shutting down."


class PubSubEmulator:
    """Service REST API plus client WebSockets, in one ASGI app served by any ASGI server.

    `access_key` signs and verifies every token; `hub_names` limits the hubs served (any valid
    name when None); `upstream_url` enables the CloudEvents event handler (several URLs: the
    app's hosts, tried in turn when one refuses connections).
    """

    def __init__(
        self,
        access_key: str,
        *,
        hub_names: set[str] | None = None,
        upstream_url: str | Sequence[str] | None = None,
        limits: Limits | None = None,
    ) -> None:
        if not access_key:
            raise ValueError("access_key must not be empty")
        self.access_key = access_key
        self.state = ServiceState(access_key, hub_names=hub_names, upstream_url=upstream_url,
                                  limits=limits or Limits())
        # The emulator is its own ASGI app; an instance with an async `__call__` is what servers
        # (uvicorn's interface detection included) recognise as ASGI 3.
        self.app: ASGIApp = self

    def connection_string(self, host: str, port: int) -> str:
        """What the app's `WebPubSubConnectionString` setting should hold to reach this emulator."""
        return f"Endpoint=http://{host}:{port};AccessKey={self.access_key};Version=1.0;"

    async def close(self) -> None:
        """Close every socket with 1001 and drop every session; further connections are refused."""
        state = self.state
        state.closing = True
        for hub in state.hubs.values():
            for connection in list(hub.connections.values()):
                hub.terminate(connection, SHUTDOWN_REASON, code=1001)
        await state.background.drain(grace_seconds=2.0)
        if state.upstream is not None:
            await state.upstream.aclose()

    def connection_count(self) -> int:
        """Live and resumable connections across hubs (for benchmarks and health checks)."""
        return sum(len(hub.connections) for hub in self.state.hubs.values())

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind == "http":
            await self._http(scope, receive, send)
        elif kind == "websocket":
            segments = scope["path"].strip("/").split("/")
            if len(segments) == 3 and segments[:2] == ["client", "hubs"]:
                await serve_client(self.state, segments[2], scope, receive, send)
            else:
                await receive()
                await send({"type": "websocket.close", "code": 1008, "reason": "unknown path"})
        elif kind == "lifespan":
            await self._lifespan(receive, send)

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await self.close()
                await send({"type": "lifespan.shutdown.complete"})
                return

    async def _http(self, scope: Scope, receive: Receive, send: Send) -> None:
        chunks: list[bytes] = []
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            chunks.append(message.get("body", b""))
            if not message.get("more_body", False):
                break
        headers: dict[str, str] = {}
        for name, value in scope.get("headers") or []:
            key = name.decode("latin-1").lower()
            text = value.decode("latin-1")
            headers[key] = f"{headers[key]},{text}" if key in headers else text
        raw_path = scope.get("raw_path")
        path = raw_path.decode("latin-1") if raw_path else quote(scope["path"])
        reply = await handle_rest(self.state, scope["method"], path,
                                  scope.get("query_string", b"").decode("latin-1"), headers, b"".join(chunks))
        body = b"" if scope["method"] == "HEAD" else reply.body
        response_headers = [(b"content-length", str(len(body)).encode("ascii"))]
        if body:
            response_headers.append((b"content-type", reply.content_type.encode("ascii")))
        await send({"type": "http.response.start", "status": reply.status, "headers": response_headers})
        await send({"type": "http.response.body", "body": body})
