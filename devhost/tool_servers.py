"""`devhost run --tools`: make sure the company has the tool servers the allow-list names, and show
the team's tool calls as they happen.

`--tool-server NAME=URL` registers a server under NAME. A tool of the server `everything` with no
URL given starts the npm reference server `@modelcontextprotocol/server-everything` (installed by
`npm ci` in tests/tools/node) on a free port for the run, and stops it afterwards.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import time
from pathlib import Path
from typing import Any

import httpx

EVERYTHING = "everything"
_EVERYTHING_BIN = Path("tests") / "tools" / "node" / "node_modules" / ".bin" / "mcp-server-everything"


class ToolSetupError(RuntimeError):
    """A tool server the run needs cannot be had."""


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def start_everything(app_dir: Path, log_path: Path) -> tuple[subprocess.Popen[bytes], str]:
    """The reference MCP server in streamable HTTP mode (its CLI takes the port from PORT)."""
    binary = app_dir / _EVERYTHING_BIN
    if not binary.exists():
        raise ToolSetupError(f"{binary} is missing: run `npm ci` in tests/tools/node, or pass"
                             " --tool-server everything=<url>")
    port = _free_port()
    with log_path.open("ab") as log:
        process = subprocess.Popen([str(binary), "streamableHttp"], stdout=log, stderr=subprocess.STDOUT,  # noqa: S603
                                   env={**os.environ, "PORT": str(port)})
    deadline = time.monotonic() + 30
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            break
        except OSError:
            if process.poll() is not None or time.monotonic() > deadline:
                process.kill()
                raise ToolSetupError(f"the everything server did not start; see {log_path}") from None
            time.sleep(0.2)
    return process, f"http://127.0.0.1:{port}/mcp"


def ensure_servers(client: httpx.Client, tools: list[str], given: dict[str, str], app_dir: Path,
                   log_path: Path) -> list[subprocess.Popen[bytes]]:
    """Register what the allow-list needs and the company lacks; the processes started for it."""
    existing = {s["name"] for s in client.get("/api/tool-servers").json()}
    needed = sorted({name.partition(".")[0] for name in tools} | set(given))
    started: list[subprocess.Popen[bytes]] = []
    for name in needed:
        if name in existing:
            continue
        url = given.get(name)
        if url is None:
            if name != EVERYTHING:
                raise ToolSetupError(f"no tool server named {name!r}: pass --tool-server {name}=<url>")
            process, url = start_everything(app_dir, log_path)
            started.append(process)
        response = client.post("/api/tool-servers", json={"name": name, "url": url})
        if response.status_code != 201:
            raise ToolSetupError(f"registering {name} at {url}: HTTP {response.status_code} {response.text[:300]}")
    return started


def tool_lines(events: list[dict[str, Any]]) -> list[str]:
    """One line per tool event of the team's stream (GET /api/teams/{id}/events)."""
    lines = []
    for event in events:
        data = event.get("data") or {}
        name = f"{data.get('server')}.{data.get('tool')}"
        if event.get("type") == "tool.call_requested":
            arguments = json.dumps(data.get("arguments", {}), ensure_ascii=False)[:200]
            wait = " (waiting for approval)" if data.get("approval") == "ask" else ""
            lines.append(f"  tool  {name}({arguments}) requested{wait}")
        elif event.get("type") == "tool.call_finished":
            shown = " ".join(str(data.get("result") or data.get("error") or "").split())[:200]
            lines.append(f"  tool  {name} {data.get('status')} in {data.get('duration_ms') or 0} ms: {shown}")
    return lines
