"""The page's own Web PubSub client against the Web PubSub emulator: it negotiates, joins the
team's group with the json.webpubsub.azure.v1 subprotocol, renders what the service pushes, and
opens a new socket by itself after the network comes back.

The negotiate answer is the edge faked here: the browser's `POST /api/realtime/negotiate` gets a
client URL that the official service SDK builds for an emulator of this test's own (no event
handler behind it), so this proves the dashboard's client whatever the state of the app's
real-time endpoints. The app's own negotiate and publisher are exercised by test_live.py.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import pytest
from azure.messaging.webpubsubservice.aio import WebPubSubServiceClient
from playwright.async_api import expect

from devhost.pubsub import EmulatorServer, PubSubEmulator
from tests.browser.conftest import create_team, login

pytestmark = [pytest.mark.browser, pytest.mark.xdist_group("browser")]
HUB = "ghost_pirates"


async def eventually(condition, seconds: float = 5.0) -> None:
    """Frames reach the test through Playwright's event stream, a moment after the page sent them."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + seconds
    while not condition():
        assert loop.time() < deadline, "condition not met in time"
        await asyncio.sleep(0.05)


@pytest.fixture
async def context(browser, dashboard_host) -> AsyncIterator[Any]:
    """As conftest's, but ignoring the pages' CSP: its connect-src names only the app's own Web
    PubSub host (docs/security.md), and this test sends the page to an emulator of its own."""
    ctx = await browser.new_context(base_url=dashboard_host.base_url, viewport={"width": 1280, "height": 900},
                                    bypass_csp=True)
    ctx.set_default_timeout(10_000)
    errors: list[str] = []
    ctx.on("weberror", lambda error: errors.append(str(error.error)))
    yield ctx
    await ctx.close()
    assert errors == [], f"uncaught errors in the page: {errors}"


@pytest.fixture
async def emulator() -> AsyncIterator[EmulatorServer]:
    server = EmulatorServer(PubSubEmulator(uuid.uuid4().hex + uuid.uuid4().hex, hub_names={HUB}))
    await server.start()
    yield server
    await server.stop()


async def test_the_page_joins_the_team_group_renders_pushed_events_and_reconnects(
    page, context, account, http, emulator
):
    team_id = await create_team(http, account, "Signal the fleet")
    group = f"team_{team_id}"
    service = WebPubSubServiceClient.from_connection_string(emulator.connection_string, hub=HUB)
    negotiations = 0

    async def answer(route):
        nonlocal negotiations
        negotiations += 1
        token = await service.get_client_access_token(
            user_id=account.email, roles=[f"webpubsub.joinLeaveGroup.{group}"], minutes_to_expire=10)
        await route.fulfill(json={"url": token["url"], "hub": HUB, "groups": [group]})

    await page.route("**/api/realtime/negotiate", answer)
    sockets: list[list[dict[str, Any]]] = []  # frames the page sent, per socket it opened

    def opened(socket) -> None:
        frames: list[dict[str, Any]] = []
        sockets.append(frames)
        socket.on("framesent", lambda payload: frames.append(json.loads(payload)))

    page.on("websocket", opened)

    await login(page, account)
    await page.goto(f"/teams/{team_id}")
    status = page.get_by_test_id("connection-status")
    await expect(status).to_have_text("Connected")
    await eventually(lambda: len(sockets) == 1 and {"type": "joinGroup", "group": group, "ackId": 1} in sockets[0])

    # seq 2 follows the team's only event so far (team.created): it is applied, not treated as a gap.
    event = {"type": "message.created", "seq": 2, "team_id": team_id, "task_id": None,
             "at": datetime.now(UTC).isoformat(), "data": {"id": str(uuid.uuid4()), "kind": "note",
                                                          "sender": "Lookout", "content": "Land ho!"}}
    async with service:
        await service.send_to_group(group, event, content_type="application/json")
    await expect(page.get_by_test_id("messages")).to_contain_text("Land ho!")

    await context.set_offline(True)
    await expect(status).to_have_text("Disconnected")
    await context.set_offline(False)
    await expect(status).to_have_text("Connected")
    # A new socket after the network came back, which joins the group again.
    await eventually(lambda: len(sockets) == 2
                     and [f.get("group") for f in sockets[1] if f["type"] == "joinGroup"] == [group])
    assert negotiations == 2, "every connection negotiates afresh (tokens expire)"
