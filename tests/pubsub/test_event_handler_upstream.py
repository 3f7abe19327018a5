"""Event-handler upstream: client events reach the app as CloudEvents, and the app can act on them."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json

import pytest
import websockets
from aiohttp import web
from azure.messaging.webpubsubservice.aio import WebPubSubServiceClient
from websockets.typing import Subprotocol

from devhost.pubsub import EmulatorServer, PubSubEmulator
from tests.pubsub.conftest import ACCESS_KEY, HUB


class RecordingHandler:
    """An app-side event handler: records CloudEvents; adds connected users to their company group."""

    def __init__(self) -> None:
        self.events: list[tuple[dict[str, str], bytes]] = []
        self.changed = asyncio.Event()
        self.service: WebPubSubServiceClient | None = None

    async def handle(self, request: web.Request) -> web.Response:
        headers = {k.lower(): v for k, v in request.headers.items() if k.lower().startswith("ce-")}
        body = await request.read()
        self.events.append((headers, body))
        self.changed.set()
        event_type = headers["ce-type"]
        if event_type == "azure.webpubsub.sys.connect":
            return web.json_response({"groups": ["lobby"]})
        if event_type == "azure.webpubsub.sys.connected" and self.service is not None:
            await self.service.add_connection_to_group("company_1", headers["ce-connectionid"])
        if event_type == "azure.webpubsub.user.message":
            return web.Response(text="echo:" + body.decode(), content_type="text/plain")
        return web.Response(status=204)

    async def wait_for(self, ce_type: str) -> tuple[dict[str, str], bytes]:
        async with asyncio.timeout(5):
            while True:
                for headers, body in self.events:
                    if headers["ce-type"] == ce_type:
                        return headers, body
                self.changed.clear()
                await self.changed.wait()


@pytest.fixture
async def upstream_setup():
    handler = RecordingHandler()
    app = web.Application()
    app.router.add_post("/eventhandler", handler.handle)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    server = EmulatorServer(PubSubEmulator(ACCESS_KEY, upstream_url=f"http://127.0.0.1:{port}/eventhandler"))
    await server.start()
    async with WebPubSubServiceClient.from_connection_string(server.connection_string, hub=HUB) as service:
        handler.service = service
        yield handler, service
    await server.stop()
    await runner.cleanup()


async def test_raw_client_events_reach_upstream_and_app_can_add_it_to_a_group(upstream_setup):
    handler, service = upstream_setup
    url = (await service.get_client_access_token(user_id="raw-user"))["url"]
    async with websockets.connect(url) as raw:
        connected, _ = await handler.wait_for("azure.webpubsub.sys.connected")
        connection_id = connected["ce-connectionid"]
        expected_signature = hmac.new(ACCESS_KEY.encode(), connection_id.encode(), hashlib.sha256).hexdigest()
        assert connected["ce-signature"] == f"sha256={expected_signature}"
        assert connected["ce-userid"] == "raw-user" and connected["ce-hub"] == HUB

        async with asyncio.timeout(5):
            while not await service.group_exists("company_1"):
                await asyncio.sleep(0.02)
        assert await service.group_exists("lobby")  # from the connect response
        await service.send_to_group("company_1", {"for": "company"})
        async with asyncio.timeout(5):
            assert json.loads(await raw.recv()) == {"for": "company"}

        await raw.send("hi")
        headers, body = await handler.wait_for("azure.webpubsub.user.message")
        assert body == b"hi" and headers["ce-eventname"] == "message"
        async with asyncio.timeout(5):
            assert await raw.recv() == "echo:hi"
    disconnected, _ = await handler.wait_for("azure.webpubsub.sys.disconnected")
    assert disconnected["ce-connectionid"] == connection_id


async def test_json_client_event_is_forwarded_and_acked(upstream_setup):
    handler, service = upstream_setup
    url = (await service.get_client_access_token(user_id="u2"))["url"]
    async with websockets.connect(url, subprotocols=[Subprotocol("json.webpubsub.azure.v1")]) as socket:
        async with asyncio.timeout(5):
            assert json.loads(await socket.recv())["event"] == "connected"
            await socket.send(json.dumps({"type": "event", "event": "typing", "ackId": 1,
                                          "dataType": "json", "data": {"task": 3}}))
            assert json.loads(await socket.recv()) == {"type": "ack", "ackId": 1, "success": True}
    headers, body = await handler.wait_for("azure.webpubsub.user.typing")
    assert json.loads(body) == {"task": 3}
    assert headers["ce-subprotocol"] == "json.webpubsub.azure.v1"


def _refusing_url() -> str:
    """A loopback URL nothing listens on (a host that is gone): connections are refused."""
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return f"http://127.0.0.1:{port}/eventhandler"


async def test_with_several_upstreams_events_go_to_the_next_when_one_refuses_connections():
    handler = RecordingHandler()
    app = web.Application()
    app.router.add_post("/eventhandler", handler.handle)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    live = f"http://127.0.0.1:{port}/eventhandler"
    emulator = PubSubEmulator(ACCESS_KEY, upstream_url=[_refusing_url(), live])
    server = EmulatorServer(emulator)
    await server.start()
    try:
        async with WebPubSubServiceClient.from_connection_string(server.connection_string, hub=HUB) as service:
            url = (await service.get_client_access_token(user_id="failover-user"))["url"]
            async with websockets.connect(url) as raw:
                connected, _ = await handler.wait_for("azure.webpubsub.sys.connected")
                await raw.send("hi")
                async with asyncio.timeout(5):
                    assert await raw.recv() == "echo:hi"
    finally:
        await server.stop()
        await runner.cleanup()

    kinds = [headers["ce-type"] for headers, _ in handler.events]
    # The blocking connect found the live host (the client was let in), and so did every later event.
    assert kinds[:3] == ["azure.webpubsub.sys.connect", "azure.webpubsub.sys.connected",
                         "azure.webpubsub.user.message"]
    assert connected["ce-userid"] == "failover-user"
    assert emulator.state.upstream is not None and emulator.state.upstream.url == live
