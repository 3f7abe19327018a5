"""A small MCP server (the official SDK, streamable HTTP) that writes every `tools/call` it receives
to a JSON-lines file: the tests count how often a call id was executed, across app restarts.

Run: python -m tests.tools.recording_server LOG_PATH   (prints "PORT <n>" once it listens)
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from pathlib import Path
from typing import Any

import uvicorn
from mcp.server import MCPServer
from mcp.server.mcpserver import Context
from mcp.server.transport_security import TransportSecuritySettings
from mcp.types import CallToolResult, TextContent


def build(log_path: Path) -> MCPServer[Any]:
    server: MCPServer[Any] = MCPServer("recording", version="1.0")

    def record(ctx: Context, tool: str, arguments: dict[str, Any]) -> None:
        meta = dict(ctx.request_context.meta or {})
        headers = ctx.request_context.request.headers if ctx.request_context.request is not None else {}
        line = {"tool": tool, "arguments": arguments, "call_id": meta.get("ghost_pirates/call_id"),
                "api_key": headers.get("x-api-key"), "at": time.time()}
        with log_path.open("a", encoding="utf-8") as log:
            log.write(json.dumps(line) + "\n")

    @server.tool(description="Write a note; answers what was noted.")
    async def note(text: str, ctx: Context) -> str:
        record(ctx, "note", {"text": text})
        return f"noted: {text}"

    @server.tool(description="Write a note, then take `seconds` to answer.")
    async def slow_note(text: str, seconds: float, ctx: Context) -> str:
        record(ctx, "slow_note", {"text": text, "seconds": seconds})
        await asyncio.sleep(seconds)
        return f"noted slowly: {text}"

    @server.tool(description="Write a note that costs money; the result's _meta reports the cost.")
    async def priced_note(text: str, ctx: Context) -> CallToolResult:
        record(ctx, "priced_note", {"text": text})
        return CallToolResult(content=[TextContent(type="text", text=f"priced: {text}")],
                              _meta={"ghost_pirates/cost_usd": "0.25"})

    @server.tool(description="Always fails.")
    async def broken(text: str, ctx: Context) -> str:
        record(ctx, "broken", {"text": text})
        raise ValueError(f"broken on purpose: {text}")

    return server


async def serve(log_path: Path) -> None:
    app = build(log_path).streamable_http_app(
        transport_security=TransportSecuritySettings(enable_dns_rebinding_protection=False))
    config = uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning", lifespan="on")
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    while not server.started:
        await asyncio.sleep(0.05)
    port = server.servers[0].sockets[0].getsockname()[1]
    print(f"PORT {port}", flush=True)
    await task


if __name__ == "__main__":
    asyncio.run(serve(Path(sys.argv[1])))
