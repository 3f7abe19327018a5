"""Real MCP servers started by fixtures: the npm reference server `everything` (streamable HTTP),
PyPI's `mcp-server-time` (stdio) behind npm's `supergateway` bridge, and our recording server.

The npm packages live in tests/tools/node (`npm ci` there; .ci/run does it). Without them the tests
that need them are skipped with the reason.
"""

from __future__ import annotations

import asyncio
import json
import os
import socket
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
NODE_BIN = REPO / "tests" / "tools" / "node" / "node_modules" / ".bin"


@dataclass
class McpServerProcess:
    url: str
    process: asyncio.subprocess.Process
    log_path: Path

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""


@dataclass
class RecordingServer(McpServerProcess):
    calls_path: Path

    def calls(self) -> list[dict]:
        if not self.calls_path.exists():
            return []
        return [json.loads(line) for line in self.calls_path.read_text().splitlines() if line.strip()]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def wait_for_port(port: int, process: asyncio.subprocess.Process, log_path: Path, seconds: float = 30) -> None:
    deadline = asyncio.get_running_loop().time() + seconds
    while True:
        if process.returncode is not None:
            raise AssertionError(f"the MCP server exited with {process.returncode}:\n{log_path.read_text()}")
        try:
            _, writer = await asyncio.open_connection("127.0.0.1", port)
        except OSError:
            if asyncio.get_running_loop().time() > deadline:
                raise AssertionError(f"the MCP server did not listen on {port}:\n{log_path.read_text()}") from None
            await asyncio.sleep(0.1)
            continue
        writer.close()
        await writer.wait_closed()
        return


async def stop(process: asyncio.subprocess.Process) -> None:
    if process.returncode is None:
        process.terminate()
        try:
            await asyncio.wait_for(process.wait(), 10)
        except TimeoutError:
            process.kill()
            await process.wait()


def node_tool(name: str) -> Path:
    path = NODE_BIN / name
    if not path.exists():
        pytest.skip(f"{name} is not installed: run `npm ci` in tests/tools/node (.ci/run does)")
    return path


async def start_node_server(argv: list[str], port: int, log_path: Path, env: dict[str, str] | None = None
                            ) -> asyncio.subprocess.Process:
    with log_path.open("wb") as log:
        process = await asyncio.create_subprocess_exec(
            *argv, stdout=log, stderr=log, env={**os.environ, **(env or {})}, start_new_session=True)
    await wait_for_port(port, process, log_path)
    return process


@pytest.fixture(scope="session")
async def everything_server(tmp_path_factory) -> AsyncIterator[McpServerProcess]:
    """`mcp-server-everything streamableHttp` (its CLI takes the port from PORT and serves /mcp)."""
    binary = node_tool("mcp-server-everything")
    port = free_port()
    log_path = tmp_path_factory.mktemp("everything") / "server.log"
    process = await start_node_server([str(binary), "streamableHttp"], port, log_path, {"PORT": str(port)})
    yield McpServerProcess(f"http://127.0.0.1:{port}/mcp", process, log_path)
    await stop(process)


@pytest.fixture(scope="session")
async def time_server(tmp_path_factory) -> AsyncIterator[McpServerProcess]:
    """PyPI `mcp-server-time` speaks stdio only: supergateway serves it as streamable HTTP on /mcp."""
    binary = node_tool("supergateway")
    try:
        import mcp_server_time  # noqa: F401
    except ImportError:
        pytest.skip("mcp-server-time is not installed (requirements-dev.txt)")
    port = free_port()
    log_path = tmp_path_factory.mktemp("time") / "server.log"
    stdio = f"{sys.executable} -m mcp_server_time --local-timezone UTC"
    process = await start_node_server(
        [str(binary), "--stdio", stdio, "--outputTransport", "streamableHttp", "--port", str(port), "--stateful",
         "--logLevel", "none"], port, log_path)
    yield McpServerProcess(f"http://127.0.0.1:{port}/mcp", process, log_path)
    await stop(process)


async def start_recording_server(directory: Path) -> RecordingServer:
    directory.mkdir(parents=True, exist_ok=True)
    calls_path, log_path = directory / "calls.jsonl", directory / "server.log"
    with log_path.open("wb") as log:
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "tests.tools.recording_server", str(calls_path), cwd=REPO,
            env={**os.environ, "PYTHONPATH": str(REPO)}, stdout=asyncio.subprocess.PIPE, stderr=log)
    assert process.stdout is not None
    line = await asyncio.wait_for(process.stdout.readline(), 30)
    if not line.startswith(b"PORT "):
        await stop(process)
        raise AssertionError(f"the recording server did not start: {line!r}\n{log_path.read_text()}")
    port = int(line.split()[1])
    return RecordingServer(f"http://127.0.0.1:{port}/mcp", process, log_path, calls_path)


@pytest.fixture
async def recording_server(tmp_path) -> AsyncIterator[RecordingServer]:
    server = await start_recording_server(tmp_path / "recording")
    yield server
    await stop(server.process)


# --- services on a real database, with the local address policy (loopback test servers) -------------



@pytest.fixture
def tool_settings():
    from shared.config import dev_tool_secrets_key
    from shared.domain.tools import AddressPolicy, ToolLimits
    from shared.services.tool_servers import ToolSettings
    from shared.tools.mcp_client import ToolTimeouts
    from shared.tools.secrets import FernetSecretStore

    return ToolSettings(policy=AddressPolicy.for_environment("test"), timeouts=ToolTimeouts(5, 20),
                        limits=ToolLimits(), secrets=FernetSecretStore(dev_tool_secrets_key()))


@pytest.fixture
async def services(pool, tool_settings):
    from shared.db.database import Database
    from shared.services import Services

    return Services.build(Database(pool), tools=tool_settings)


@pytest.fixture
async def principal(services):
    import uuid as _uuid

    from shared.domain.models import Principal, RegisterRequest

    user = await services.auth.register(RegisterRequest(
        company_name="Toolsmiths", email=f"{_uuid.uuid4().hex[:10]}@example.com", password="correct horse battery",
        full_name="Ada Admin"))
    return Principal(user_id=user.id, company_id=user.company_id, role=user.role)
