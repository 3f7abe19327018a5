"""Fixtures: a DurableBackend on a fresh database, its management API served by uvicorn."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass

import azure.durable_functions as df
import pytest
import uvicorn
from starlette.applications import Starlette
from starlette.routing import Mount

from devhost.durable import DurableBackend, DurableFunctions

from .sample_app import FUNCTIONS

MOUNT = "/runtime/webhooks/durabletask"
TERMINAL = {"Completed", "Failed", "Terminated"}


@dataclass
class Running:
    backend: DurableBackend
    client: df.DurableOrchestrationClient
    binding: str
    server: uvicorn.Server
    served: asyncio.Task[None]


async def serve(backend: DurableBackend) -> tuple[uvicorn.Server, asyncio.Task[None], str]:
    """Serve the management app on a random loopback port; return the rpcBaseUrl."""
    app = Starlette(routes=[Mount(MOUNT, app=backend.management_app)])
    config = uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning", lifespan="off")
    server = uvicorn.Server(config)
    served = asyncio.create_task(server.serve())
    async with asyncio.timeout(10):
        while not server.started:
            await asyncio.sleep(0.01)
    port = server.servers[0].sockets[0].getsockname()[1]
    return server, served, f"http://127.0.0.1:{port}{MOUNT}/"


StartBackend = Callable[..., Awaitable[Running]]


@pytest.fixture
async def start_backend(empty_database_url: str) -> AsyncIterator[StartBackend]:
    """Start backends (with their API) on this test's database; all are stopped at the end."""
    started: list[Running] = []

    async def start(functions: DurableFunctions = FUNCTIONS, **options: object) -> Running:
        backend = DurableBackend(empty_database_url, functions, **options)  # type: ignore[arg-type]
        await backend.start()
        server, served, rpc = await serve(backend)
        binding = backend.client_binding(rpc)
        running = Running(backend, df.DurableOrchestrationClient(binding), binding, server, served)
        started.append(running)
        return running

    yield start
    for running in started:
        await stop(running)


async def stop(running: Running, grace: float = 2) -> None:
    if running.server.should_exit:
        return
    running.server.should_exit = True
    await running.served
    await running.backend.stop(grace)


@pytest.fixture
async def durable(start_backend: StartBackend) -> Running:
    return await start_backend()


async def wait_until_done(
    client: df.DurableOrchestrationClient, instance_id: str, timeout: float = 15
) -> df.DurableOrchestrationStatus:
    """Poll the status with a deadline until the instance is finished."""
    async with asyncio.timeout(timeout):
        while True:
            status = await client.get_status(instance_id)
            if status and status.runtime_status.value in TERMINAL:
                return status
            await asyncio.sleep(0.02)


async def wait_for_status(
    client: df.DurableOrchestrationClient,
    instance_id: str,
    check: Callable[[df.DurableOrchestrationStatus], bool],
    timeout: float = 10,
) -> df.DurableOrchestrationStatus:
    async with asyncio.timeout(timeout):
        while True:
            status = await client.get_status(instance_id, show_history=True, show_history_output=True)
            if status and check(status):
                return status
            await asyncio.sleep(0.02)


def completed_ids(history: list[dict[str, object]]) -> list[object]:
    """TaskScheduledIds of all TaskCompleted events: duplicates would mean a double completion."""
    return [e["TaskScheduledId"] for e in history if e["EventType"] == "TaskCompleted"]


def dumps(value: object) -> str:
    return json.dumps(value)
