"""The app's MCP client: `initialize` + `tools/list` (registration, refresh) and one `tools/call`, over
streamable HTTP with the official SDK, every connection through `network.PinnedBackend`.

Error tree (what each failure means to the caller):

    ToolServerError
    ├── ToolServerRefused     the URL or an address is not allowed (SSRF rule): nothing was sent
    ├── ToolServerUnreachable connect/read timeout, refused or lost connection, HTTP 5xx/429:
    │                         transient, a tool call is retried (`tool_unavailable`)
    └── ToolServerInvalid     it answered, but not as an MCP server does (HTTP 4xx, not JSON-RPC,
                              an error to `initialize` or `tools/list`)

A JSON-RPC error to `tools/call` itself (unknown tool, invalid arguments) is not an exception: it is
the call's result, `is_error`, which the model sees like any other tool error.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import anyio
import httpx2
from mcp import Client, MCPError
from mcp.client.streamable_http import streamable_http_client

from shared.domain.tools import CALL_ID_META_KEY, AddressPolicy, reported_cost
from shared.tools.network import AddressRefused, PinnedBackend, Resolver, check_url, pinned_client

log = logging.getLogger(__name__)

#: JSON-RPC codes the SDK uses for its own transport failures (not the server's answer).
_CONNECTION_CLOSED, _REQUEST_TIMEOUT = -32000, -32001
CLIENT_NAME = "ghost-pirates"


class ToolServerError(Exception):
    """A tool server could not be used; the message is fit for the API and the model (no secrets)."""


class ToolServerRefused(ToolServerError):
    pass


class ToolServerUnreachable(ToolServerError):
    pass


class ToolServerInvalid(ToolServerError):
    pass


@dataclass(frozen=True)
class ToolTimeouts:
    connect_seconds: float = 5.0
    read_seconds: float = 60.0


@dataclass(frozen=True)
class ListedTool:
    name: str
    description: str
    input_schema: dict[str, Any]


@dataclass(frozen=True)
class ServerListing:
    server_info: dict[str, Any]
    protocol_version: str
    tools: list[ListedTool]


@dataclass(frozen=True)
class ToolOutcome:
    """What one `tools/call` answered."""

    text: str
    is_error: bool
    cost_usd: str | None = None  #: what the server reported the call cost, if it did
    elapsed_ms: int = 0


@dataclass
class _Statuses:
    """HTTP statuses seen during one session (the SDK turns a 5xx into a generic JSON-RPC error)."""

    seen: list[int] = field(default_factory=list)

    async def record(self, response: httpx2.Response) -> None:
        self.seen.append(response.status_code)

    @property
    def overloaded(self) -> bool:
        return any(code >= 500 or code == 429 for code in self.seen)


def _leaves(exc: BaseException) -> Iterator[BaseException]:
    if isinstance(exc, BaseExceptionGroup):
        for inner in exc.exceptions:
            yield from _leaves(inner)
    else:
        yield exc


def _classify(exc: BaseException, statuses: _Statuses, what: str) -> ToolServerError:
    leaves = list(_leaves(exc))
    for leaf in leaves:
        if isinstance(leaf, AddressRefused):
            return ToolServerRefused(str(leaf))
    for leaf in leaves:
        if isinstance(leaf, httpx2.TimeoutException | TimeoutError):
            return ToolServerUnreachable(f"{what}: the tool server did not answer in time")
        if isinstance(leaf, httpx2.TransportError | OSError):
            return ToolServerUnreachable(f"{what}: the tool server is not reachable ({type(leaf).__name__})")
        if isinstance(leaf, MCPError) and leaf.code in (_CONNECTION_CLOSED, _REQUEST_TIMEOUT):
            return ToolServerUnreachable(f"{what}: {leaf.message}")
    if statuses.overloaded:
        return ToolServerUnreachable(f"{what}: the tool server answered HTTP {max(statuses.seen)}")
    for leaf in leaves:
        if isinstance(leaf, MCPError):
            return ToolServerInvalid(f"{what}: the server does not answer as an MCP server ({leaf.message})")
    first = leaves[0] if leaves else exc
    return ToolServerInvalid(f"{what}: {type(first).__name__}: {str(first)[:300]}")


def _text_of(content: list[Any]) -> str:
    parts: list[str] = []
    for block in content:
        kind = getattr(block, "type", "")
        if kind == "text":
            parts.append(str(getattr(block, "text", "")))
        elif kind in ("image", "audio"):
            size = len(str(getattr(block, "data", "")))
            parts.append(f"[{kind} {getattr(block, 'mime_type', '')}, {size} base64 chars]")
        elif kind == "resource_link":
            parts.append(f"[resource {getattr(block, 'uri', '')}]")
        elif kind == "resource":
            resource = getattr(block, "resource", None)
            parts.append(str(getattr(resource, "text", None) or f"[resource {getattr(resource, 'uri', '')}]"))
        else:
            parts.append(f"[{kind or 'content'}]")
    return "\n".join(parts)


class McpConnector:
    """Opens one MCP session per operation; never logs headers (they hold the server's secrets)."""

    def __init__(self, policy: AddressPolicy, *, timeouts: ToolTimeouts | None = None,
                 resolver: Resolver | None = None) -> None:
        self.policy = policy
        self.timeouts = timeouts or ToolTimeouts()
        self.resolver = resolver
        self.last_backend: PinnedBackend | None = None  #: the connections of the latest operation (tests)

    def _client(self, headers: dict[str, str], read_seconds: float, statuses: _Statuses) -> httpx2.AsyncClient:
        self.last_backend = PinnedBackend(self.policy, self.resolver)
        timeout = httpx2.Timeout(read_seconds, connect=self.timeouts.connect_seconds)
        client = pinned_client(self.policy, headers=headers, timeout=timeout, backend=self.last_backend)
        client.event_hooks["response"].append(statuses.record)
        return client

    async def check(self, url: str) -> None:
        """Refuse a URL the SSRF rule does not allow, before anything is sent (ToolServerRefused)."""
        try:
            await check_url(url, self.policy, self.resolver or PinnedBackend(self.policy).resolver)
        except AddressRefused as exc:
            raise ToolServerRefused(str(exc)) from None
        except OSError as exc:
            raise ToolServerUnreachable(str(exc)) from None

    async def list_tools(self, url: str, headers: dict[str, str]) -> ServerListing:
        """`initialize` then `tools/list` (every page)."""
        await self.check(url)
        statuses = _Statuses()
        read = self.timeouts.read_seconds
        try:
            with anyio.fail_after(self.timeouts.connect_seconds + 2 * read):
                async with self._client(headers, read, statuses) as http, Client(
                        streamable_http_client(url, http_client=http), mode="legacy", read_timeout_seconds=read,
                        cache=None) as session:
                    tools: list[ListedTool] = []
                    cursor: str | None = None
                    for _ in range(50):  # a server that pages forever is cut off
                        page = await session.list_tools(cursor=cursor)
                        tools += [ListedTool(t.name, t.description or "", dict(t.input_schema)) for t in page.tools]
                        cursor = page.next_cursor
                        if not cursor:
                            break
                    info = session.server_info
                    return ServerListing(server_info=info.model_dump(mode="json", exclude_none=True) if info else {},
                                         protocol_version=session.protocol_version, tools=tools)
        except ToolServerError:
            raise
        except Exception as exc:
            raise _classify(exc, statuses, "initialize/tools/list") from None

    async def call_tool(self, url: str, headers: dict[str, str], tool: str, arguments: dict[str, Any], *,
                        call_id: str, read_seconds: float | None = None) -> ToolOutcome:
        """One `tools/call` carrying `_meta: {"ghost_pirates/call_id": call_id}`."""
        read = min(self.timeouts.read_seconds, read_seconds) if read_seconds else self.timeouts.read_seconds
        statuses = _Statuses()
        started = time.perf_counter()
        try:
            with anyio.fail_after(self.timeouts.connect_seconds + 2 * read):
                async with self._client(headers, read, statuses) as http, Client(
                        streamable_http_client(url, http_client=http), mode="legacy", read_timeout_seconds=read,
                        cache=None) as session:
                    try:
                        meta: Any = {CALL_ID_META_KEY: call_id}  # RequestParamsMeta is open to namespaced keys
                        result = await session.call_tool(tool, arguments, meta=meta)
                    except MCPError as exc:
                        if exc.code in (_CONNECTION_CLOSED, _REQUEST_TIMEOUT):
                            raise
                        return ToolOutcome(text=f"MCP error {exc.code}: {exc.message}", is_error=True,
                                           elapsed_ms=int((time.perf_counter() - started) * 1000))
        except Exception as exc:
            raise _classify(exc, statuses, f"tools/call {tool}") from None
        text = _text_of(list(result.content))
        if not text and result.structured_content is not None:
            text = json.dumps(result.structured_content, ensure_ascii=False)
        return ToolOutcome(text=text, is_error=bool(result.is_error), cost_usd=reported_cost(result.meta),
                           elapsed_ms=int((time.perf_counter() - started) * 1000))
