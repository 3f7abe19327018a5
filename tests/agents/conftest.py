"""Fixtures for the agent tests: the wire-format server and an HTTP client the SDKs share (httpx2: the
HTTP library of openai 3 and anthropic 2)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx2
import pytest_asyncio

from tests.agents.wire_server import WireServer


@pytest_asyncio.fixture(scope="module")
async def wire_server() -> AsyncIterator[WireServer]:
    server = WireServer()
    await server.start()
    yield server
    await server.stop()


@pytest_asyncio.fixture
async def wire(wire_server: WireServer) -> AsyncIterator[WireServer]:
    wire_server.reset()
    yield wire_server
    wire_server.reset()


@pytest_asyncio.fixture
async def http_client() -> AsyncIterator[httpx2.AsyncClient]:
    async with httpx2.AsyncClient() as client:
        yield client
