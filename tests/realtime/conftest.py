"""Fixtures for real-time tests: an in-process Web PubSub emulator, the app context wired to it, and
official Python clients (azure-messaging-webpubsubclient) that record what they receive."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
from azure.messaging.webpubsubclient.aio import WebPubSubClient
from azure.messaging.webpubsubclient.models import CallbackType, WebPubSubProtocolType

from devhost.pubsub import EmulatorServer, PubSubEmulator
from shared.config import get_settings
from shared.domain.models import Principal, RegisterRequest
from shared.realtime import realtime_of
from shared.runtime import AppContext, get_context, reset_context

ACCESS_KEY = "realtime-test-access-key-0123456789abcdef"
HUB = "ghost_pirates"


class Inbox:
    """Team events a client received (server messages), with bounded waits."""

    def __init__(self) -> None:
        self.events: list[dict[str, Any]] = []
        self.connected: list[Any] = []
        self._changed = asyncio.Event()

    async def on_message(self, args: Any) -> None:
        if isinstance(args.data, dict) and "seq" in args.data:
            self.events.append(args.data)
            self._changed.set()

    async def on_connected(self, args: Any) -> None:
        self.connected.append(args)
        self._changed.set()

    async def until(self, condition: Callable[[], bool], seconds: float = 10.0) -> None:
        async with asyncio.timeout(seconds):
            while not condition():
                self._changed.clear()
                await self._changed.wait()

    def seqs(self, team_id: Any) -> list[int]:
        return [e["seq"] for e in self.events if e["team_id"] == str(team_id)]


OpenClient = Callable[..., Awaitable[tuple[WebPubSubClient, Inbox]]]


@pytest.fixture
async def open_client() -> AsyncIterator[OpenClient]:
    """Open official Python clients on a URL (from negotiate); all are closed afterwards."""
    opened: list[WebPubSubClient] = []

    async def _open(url: str, *, protocol: WebPubSubProtocolType = WebPubSubProtocolType.JSON_RELIABLE,
                    **options: Any) -> tuple[WebPubSubClient, Inbox]:
        options.setdefault("message_retry_total", 0)
        client = WebPubSubClient(url, protocol_type=protocol, **options)
        inbox = Inbox()
        await client.subscribe(CallbackType.SERVER_MESSAGE, inbox.on_message)
        await client.subscribe(CallbackType.GROUP_MESSAGE, inbox.on_message)
        await client.subscribe(CallbackType.CONNECTED, inbox.on_connected)
        await client.open()
        opened.append(client)
        await inbox.until(lambda: bool(inbox.connected))
        return client, inbox

    yield _open
    await asyncio.gather(*(client.close() for client in opened))


@pytest.fixture
async def emulator() -> AsyncIterator[EmulatorServer]:
    server = EmulatorServer(PubSubEmulator(ACCESS_KEY, hub_names={HUB}))
    await server.start()
    yield server
    await server.stop()


async def _context(monkeypatch: pytest.MonkeyPatch, database_url: str, connection_string: str | None) -> AppContext:
    monkeypatch.setenv("DATABASE_URL", database_url)
    monkeypatch.delenv("REDIS_URL", raising=False)
    if connection_string:
        monkeypatch.setenv("WEBPUBSUB_CONNECTION_STRING", connection_string)
    else:
        monkeypatch.delenv("WEBPUBSUB_CONNECTION_STRING", raising=False)
    monkeypatch.setenv("WEBPUBSUB_HUB", HUB)
    get_settings.cache_clear()
    await reset_context()
    return await get_context()


async def _close(ctx: AppContext) -> None:
    realtime = realtime_of(ctx.db)
    if realtime is not None:
        await realtime.aclose()
    await reset_context()
    get_settings.cache_clear()


@pytest.fixture
async def app(pool: Any, database_url: str, emulator: EmulatorServer,
              monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[AppContext]:
    """The app context (as the Functions worker builds it) on the test database and the emulator."""
    ctx = await _context(monkeypatch, database_url, emulator.connection_string)
    yield ctx
    await _close(ctx)


@pytest.fixture
async def app_without_pubsub(
    pool: Any, database_url: str, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[AppContext]:
    ctx = await _context(monkeypatch, database_url, None)
    yield ctx
    await _close(ctx)


@pytest.fixture
def make_company(app: AppContext) -> Callable[[str], Awaitable[Principal]]:
    async def make(name: str = "Acme") -> Principal:
        user = await app.services.auth.register(RegisterRequest(
            company_name=name, email=f"{uuid.uuid4().hex[:10]}@example.com", password="correct horse battery",
            full_name="Ada Admin"))
        return Principal(user_id=user.id, company_id=user.company_id, role=user.role)

    return make


@pytest.fixture(scope="module")
def migrated_database_url_module(pg_server_url: str, migrated_template: str) -> Any:
    """A fresh migrated database for one module's devhost (a module shares one host: start-up is slow)."""
    from tests.conftest import _create_database, _drop_database

    name = f"gp_rt_{uuid.uuid4().hex[:10]}"
    yield _create_database(pg_server_url, name, template=migrated_template)
    _drop_database(pg_server_url, name)
