"""A loopback proxy in front of the local model server that records every chat request and the usage
the server reported in its stream, so a test can hold the app's prompts and bills against the wire."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import httpx
from aiohttp import web


@dataclass
class Exchange:
    request: dict[str, Any]
    usage: dict[str, int] | None = None
    text: str = ""
    tool_call_deltas: list[dict[str, Any]] = field(default_factory=list)  #: each `delta.tool_calls` piece
    finish_reason: str | None = None

    def prompt(self) -> str:
        return "\n".join(str(m.get("content", "")) for m in self.request.get("messages", []))


@dataclass
class RecordingProxy:
    upstream: str  #: the model server's root URL (no /v1)
    exchanges: list[Exchange] = field(default_factory=list)
    url: str = ""
    _runner: web.AppRunner | None = None
    _client: httpx.AsyncClient | None = None

    async def start(self) -> RecordingProxy:
        self._client = httpx.AsyncClient(base_url=self.upstream, timeout=httpx.Timeout(900, connect=10))
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_post("/v1/chat/completions", self._chat)
        self._runner = web.AppRunner(app, shutdown_timeout=1.0)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.url = f"http://127.0.0.1:{self._runner.addresses[0][1]}"
        return self

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
        if self._client is not None:
            await self._client.aclose()

    async def _chat(self, request: web.Request) -> web.StreamResponse:
        assert self._client is not None
        body = await request.read()
        exchange = Exchange(json.loads(body))
        self.exchanges.append(exchange)
        upstream = self._client.build_request("POST", "/v1/chat/completions", content=body,
                                              headers={"Content-Type": "application/json"})
        reply = await self._client.send(upstream, stream=True)
        response = web.StreamResponse(status=reply.status_code,
                                      headers={"Content-Type": reply.headers.get("content-type", "text/plain")})
        await response.prepare(request)
        buffer = b""
        async for chunk in reply.aiter_raw():
            await response.write(chunk)
            buffer += chunk
            *lines, buffer = buffer.split(b"\n")
            for line in lines:
                self._read(exchange, line)
        await reply.aclose()
        await response.write_eof()
        return response

    @staticmethod
    def _read(exchange: Exchange, line: bytes) -> None:
        if not line.startswith(b"data: ") or line.strip() == b"data: [DONE]":
            return
        data = json.loads(line[6:])
        if data.get("usage"):
            exchange.usage = {k: v for k, v in data["usage"].items() if isinstance(v, int)}
        for choice in data.get("choices") or []:
            delta = choice.get("delta") or {}
            exchange.text += delta.get("content") or ""
            exchange.tool_call_deltas += delta.get("tool_calls") or []
            exchange.finish_reason = choice.get("finish_reason") or exchange.finish_reason
