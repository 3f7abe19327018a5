"""The raw ASGI app that serves HTTP triggers: ASGI request -> `func.HttpRequest` -> function ->
`func.HttpResponse` -> ASGI response, with the Functions host's conversions.

Raw ASGI rather than a framework because this path is measured against a bare ASGI app
(`python -m loadtests.bench_http`): per request it does one route lookup and a few dict builds.
Conversions follow the host's RpcHttp mapping: header names lower-cased and repeated values joined
with ","; repeated query values joined with ","; query keys with empty values dropped; url =
scheme://host/path?query; route values of absent optional parameters omitted. Like the App Service
front end, the host sets `X-Client-IP` to the TCP peer (a client-sent value is replaced).
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Iterable
from concurrent.futures import Executor
from typing import Any
from urllib.parse import parse_qsl

import azure.functions as func
from azure.functions.http import HttpRequest
from starlette.types import ASGIApp, Receive, Scope, Send
from werkzeug.datastructures import Headers

from devhost.invoker import Invoker
from devhost.routing import Router

__all__ = ["MANAGEMENT_PREFIX", "FunctionsHttpApp", "encode_response", "problem"]

logger = logging.getLogger("devhost.http")

MANAGEMENT_PREFIX = "/runtime/webhooks/durabletask"
#: The request header that carries the socket peer to the function (docs/security.md, rate limits).
PEER_HEADER = "x-client-ip"
#: The Functions host refuses bodies over 100 MB (maxRequestBodySize 104857600).
MAX_BODY_BYTES = 104_857_600

_TEXT_PLAIN = b"text/plain; charset=utf-8"
_PROBLEM = b"application/problem+json"
_SKIPPED_RESPONSE_HEADERS = frozenset({"content-length", "transfer-encoding"})


class _Disconnected(Exception):
    """The client went away before sending its whole body."""


class _BodyTooLarge(Exception):
    """The request body is over the host's limit."""


def problem(status: int, title: str, extra_headers: Iterable[tuple[bytes, bytes]] = ()) -> tuple[
    int, list[tuple[bytes, bytes]], bytes
]:
    """A problem+json response as the API contract shapes errors (never with internals)."""
    body = json.dumps({"type": "about:blank", "title": title, "status": status}).encode()
    headers = [(b"content-type", _PROBLEM), (b"content-length", str(len(body)).encode()), *extra_headers]
    return status, headers, body


def encode_response(result: Any) -> tuple[int, list[tuple[bytes, bytes]], bytes]:
    """Status, headers and body of what a function returned (HttpResponse, str or None)."""
    if isinstance(result, func.HttpResponse):
        body = result.get_body() or b""
        headers: list[tuple[bytes, bytes]] = []
        has_type = False
        raw_headers = result.headers
        # werkzeug Headers (what func.HttpResponse uses) iterate as (name, value) pairs, repeats kept.
        pairs = raw_headers if isinstance(raw_headers, Headers) else raw_headers.items()
        for name, value in pairs:
            lower = name.lower()
            if lower in _SKIPPED_RESPONSE_HEADERS:
                continue
            has_type = has_type or lower == "content-type"
            headers.append((lower.encode("latin-1"), str(value).encode("latin-1")))
        if not has_type:
            mimetype = result.mimetype
            text = mimetype.startswith("text/")
            content_type = f"{mimetype}; charset={result.charset}" if text else mimetype
            headers.append((b"content-type", content_type.encode("latin-1")))
        headers.append((b"content-length", str(len(body)).encode()))
        return int(result.status_code), headers, body
    if isinstance(result, str):
        body = result.encode()
        return 200, [(b"content-type", _TEXT_PLAIN), (b"content-length", str(len(body)).encode())], body
    if result is None:
        return 204, [], b""
    raise TypeError(f"an HTTP function returned {type(result).__name__}; expected HttpResponse or str")


async def _read_body(receive: Receive, limit: int) -> bytes:
    message = await receive()
    if message["type"] == "http.disconnect":
        raise _Disconnected
    body: bytes = message.get("body", b"")
    if not message.get("more_body", False):
        if len(body) > limit:
            raise _BodyTooLarge
        return body
    chunks = [body]
    size = len(body)
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise _Disconnected
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise _BodyTooLarge
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks)


def _headers(raw: list[tuple[bytes, bytes]]) -> dict[str, str]:
    """Request headers by lower-case name (ASGI servers send names lower-cased already)."""
    headers = {name.decode("latin-1"): value.decode("latin-1") for name, value in raw}
    if len(headers) == len(raw):
        return headers
    headers = {}
    for name, value in raw:
        key = name.decode("latin-1").lower()
        text = value.decode("latin-1")
        headers[key] = f"{headers[key]},{text}" if key in headers else text
    return headers


def _query(query_string: bytes) -> dict[str, str]:
    if not query_string:
        return {}
    params: dict[str, str] = {}
    for key, value in parse_qsl(query_string.decode("latin-1"), keep_blank_values=True):
        params[key] = f"{params[key]},{value}" if key in params else value
    return {key: value for key, value in params.items() if value}


async def _send(send: Send, status: int, headers: list[tuple[bytes, bytes]], body: bytes) -> None:
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


class FunctionsHttpApp:
    """ASGI app for the HTTP triggers under the route prefix, plus the Durable management API.

    During shutdown (`begin_drain`) new function requests get 503 with `Connection: close` while
    requests already running finish; the management API keeps answering so that they can still
    call the durable client.
    """

    def __init__(
        self,
        *,
        router: Router[Invoker],
        path_prefix: str,
        executor: Executor,
        management_app: ASGIApp | None = None,
        max_body_bytes: int = MAX_BODY_BYTES,
    ) -> None:
        self._router = router
        self._prefix = path_prefix.lower()
        self._executor = executor
        self._management = management_app
        self._max_body = max_body_bytes
        self._in_flight = 0
        self._idle = asyncio.Event()
        self._draining = False

    @property
    def in_flight(self) -> int:
        return self._in_flight

    def begin_drain(self) -> None:
        """Refuse new function requests from now on; running ones go on."""
        self._draining = True
        if self._in_flight == 0:
            self._idle.set()

    async def wait_idle(self, grace: float) -> bool:
        """After begin_drain(): wait up to `grace` s for running function requests; True if none is left."""
        try:
            await asyncio.wait_for(self._idle.wait(), grace)
        except TimeoutError:
            return False
        return True

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind != "http":
            if kind == "websocket":
                await send({"type": "websocket.close", "code": 1000})
            elif kind == "lifespan":
                await self._lifespan(receive, send)
            return
        path: str = scope["path"]
        if self._management is not None and path.startswith(MANAGEMENT_PREFIX):
            root = scope.get("root_path", "") + MANAGEMENT_PREFIX
            await self._management({**scope, "root_path": root}, receive, send)
            return
        prefix = self._prefix
        if prefix:
            # The prefix is part of the route template: matched case-insensitively, like literals.
            head, rest = path[: len(prefix)], path[len(prefix) :]
            if (head != prefix and head.lower() != prefix) or (rest and rest[0] != "/"):
                await _send(send, *problem(404, "Not Found"))
                return
            path = rest or "/"
        method: str = scope["method"]
        found = self._router.match(method, path)
        invoker = found.target
        if invoker is None:
            if found.allowed:
                allow = (b"allow", ", ".join(found.allowed).encode())
                await _send(send, *problem(405, "Method Not Allowed", [allow]))
            else:
                await _send(send, *problem(404, "Not Found"))
            return
        if self._draining:
            extra = [(b"connection", b"close"), (b"retry-after", b"1")]
            await _send(send, *problem(503, "Service Unavailable", extra))
            return
        self._in_flight += 1
        try:
            await self._invoke(invoker, scope, receive, send, found.route_params)
        finally:
            self._in_flight -= 1
            if self._draining and self._in_flight == 0:
                self._idle.set()

    async def _invoke(
        self, invoker: Invoker, scope: Scope, receive: Receive, send: Send, route_params: dict[str, str]
    ) -> None:
        try:
            body = await _read_body(receive, self._max_body)
        except _Disconnected:
            return
        except _BodyTooLarge:
            await _send(send, *problem(413, "Payload Too Large", [(b"connection", b"close")]))
            return
        headers = _headers(scope["headers"])
        # The TCP peer, as the Functions front end reports it: never what the client claims.
        client = scope.get("client")
        if client:
            headers[PEER_HEADER] = str(client[0])
        else:
            headers.pop(PEER_HEADER, None)
        query: bytes = scope.get("query_string", b"")
        raw_path: bytes | None = scope.get("raw_path")
        path = raw_path.decode("latin-1") if raw_path else scope["path"]
        host = headers.get("host")
        if host is None:
            server = scope.get("server") or ("localhost", None)
            host = f"{server[0]}:{server[1]}" if server[1] else str(server[0])
        url = f"{scope.get('scheme', 'http')}://{host}{path}"
        if query:
            url += "?" + query.decode("latin-1")
        request = HttpRequest(
            scope["method"],
            url,
            headers=headers,
            params=_query(query),
            route_params=route_params,
            body_type="bytes",
            body=body,
        )
        try:
            result = await invoker.invoke(request, self._executor)
            response = encode_response(result)
        except Exception:
            logger.exception("function %s failed", invoker.entry.name)
            response = problem(500, "Internal Server Error")
        await _send(send, *response)

    @staticmethod
    async def _lifespan(receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return
