"""Fixtures for the Web PubSub emulator tests: a running emulator and the official SDK clients."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
from azure.messaging.webpubsubclient.aio import WebPubSubClient
from azure.messaging.webpubsubclient.models import CallbackType, SendMessageError, WebPubSubProtocolType
from azure.messaging.webpubsubservice.aio import WebPubSubServiceClient

from devhost.pubsub import EmulatorServer, PubSubEmulator

ACCESS_KEY = "emulator-test-access-key-0123456789abcdef"
HUB = "ghost_pirates"


class Inbox:
    """Messages a client received, with a bounded wait for the next ones."""

    def __init__(self) -> None:
        self.items: list[Any] = []
        self.connected: list[Any] = []
        self.disconnected: list[Any] = []
        self._changed = asyncio.Event()

    async def on_message(self, args: Any) -> None:
        self.items.append(args)
        self._changed.set()

    async def on_connected(self, args: Any) -> None:
        self.connected.append(args)
        self._changed.set()

    async def on_disconnected(self, args: Any) -> None:
        self.disconnected.append(args)
        self._changed.set()

    async def until(self, condition: Callable[[], bool], seconds: float = 5.0) -> None:
        async with asyncio.timeout(seconds):
            while not condition():
                self._changed.clear()
                await self._changed.wait()

    async def count(self, n: int, seconds: float = 5.0) -> list[Any]:
        await self.until(lambda: len(self.items) >= n, seconds)
        return self.items

    @property
    def data(self) -> list[Any]:
        return [item.data for item in self.items]


@pytest.fixture
async def emulator() -> AsyncIterator[EmulatorServer]:
    server = EmulatorServer(PubSubEmulator(ACCESS_KEY, hub_names={HUB}))
    await server.start()
    yield server
    await server.stop()


@pytest.fixture
async def service(emulator: EmulatorServer) -> AsyncIterator[WebPubSubServiceClient]:
    client = WebPubSubServiceClient.from_connection_string(emulator.connection_string, hub=HUB)
    async with client:
        yield client


def error_name(error: SendMessageError) -> str | None:
    """The `error.name` of a failed ack (Forbidden, Duplicate, ...)."""
    return error.error_detail.name if error.error_detail is not None else None


OpenClient = Callable[..., Awaitable[tuple[WebPubSubClient, Inbox]]]


@pytest.fixture
async def open_client(service: WebPubSubServiceClient) -> AsyncIterator[OpenClient]:
    """Open official Python clients with a token from the service SDK; all are closed afterwards."""
    opened: list[WebPubSubClient] = []

    async def _open(
        *,
        user_id: str | None = None,
        roles: list[str] | None = None,
        groups: list[str] | None = None,
        protocol: WebPubSubProtocolType = WebPubSubProtocolType.JSON_RELIABLE,
        url_rewrite: Callable[[str], str] | None = None,
        **options: Any,
    ) -> tuple[WebPubSubClient, Inbox]:
        token = await service.get_client_access_token(user_id=user_id, roles=roles, groups=groups)
        url = token["url"] if url_rewrite is None else url_rewrite(token["url"])
        options.setdefault("message_retry_total", 0)
        client = WebPubSubClient(url, protocol_type=protocol, **options)
        inbox = Inbox()
        await client.subscribe(CallbackType.GROUP_MESSAGE, inbox.on_message)
        await client.subscribe(CallbackType.SERVER_MESSAGE, inbox.on_message)
        await client.subscribe(CallbackType.CONNECTED, inbox.on_connected)
        await client.subscribe(CallbackType.DISCONNECTED, inbox.on_disconnected)
        await client.open()
        opened.append(client)
        await inbox.until(lambda: bool(inbox.connected))
        return client, inbox

    yield _open
    # Closing waits up to 1 s for the client's sequenceAck loop, so close them all at once.
    await asyncio.gather(*(client.close() for client in opened))
