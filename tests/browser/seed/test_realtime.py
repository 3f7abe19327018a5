"""The seed's `e2e/realtime.spec.ts`, ported: "Real-time Updates" — "should update team status in
real-time", "should handle reconnection". Same steps, selectors and texts; run on Chromium, Firefox
and WebKit.

This module's devhost sends to a Web PubSub emulator of the test's own (the same emulator devhost
runs, in this process), so that on WebKitGTK, which has no network emulation, `context.set_offline`
drops the Web PubSub side instead: the emulator closes every socket and stops listening until the
test goes back online (on Chromium and Firefox it is the browser's own offline mode, as in the seed).
"""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from devhost.pubsub import EmulatorServer, PubSubEmulator
from tests.browser.conftest import LLM_LATENCY_MS
from tests.browser.engines import expect
from tests.e2e.conftest import AppHost, start_app, stop_app

pytestmark = [pytest.mark.browser, pytest.mark.xdist_group("browser-seed")]

RUN_MS = 60_000  # a whole offline team run at the test LLM latency, on a busy machine


class PubSubSide:
    """The Web PubSub service the app and the page use; `drop()` takes it off the network, `restore()`
    brings it back on the same port (clients reconnect by themselves)."""

    def __init__(self) -> None:
        self.key = secrets.token_urlsafe(32)
        self.port = 0
        self.server: EmulatorServer | None = None

    @property
    def connection_string(self) -> str:
        return f"Endpoint=http://127.0.0.1:{self.port};AccessKey={self.key};Version=1.0;"

    async def restore(self) -> None:
        if self.server is None:
            self.server = EmulatorServer(PubSubEmulator(self.key), port=self.port)
            self.port = await self.server.start()

    async def drop(self) -> None:
        if self.server is not None:
            await self.server.stop()
            self.server = None


@pytest.fixture(scope="module")
async def pubsub_side() -> AsyncIterator[PubSubSide]:
    side = PubSubSide()
    await side.restore()
    yield side
    await side.drop()


@pytest.fixture(scope="module")
async def dashboard_host(dashboard_database_url: str, dashboard_dir: Path,
                         pubsub_side: PubSubSide) -> AsyncIterator[AppHost]:
    host = await start_app(dashboard_dir, dashboard_database_url, OFFLINE_LLM_LATENCY_MS=LLM_LATENCY_MS,
                           RATE_LIMIT_LOGIN_PER_MINUTE="1000", RATE_LIMIT_WRITES_PER_MINUTE="5000",
                           WEBPUBSUB_CONNECTION_STRING=pubsub_side.connection_string)
    yield host
    await stop_app(host)


@pytest.fixture
def offline_hook(pubsub_side: PubSubSide):
    async def set_offline(offline: bool) -> None:
        await (pubsub_side.drop() if offline else pubsub_side.restore())

    return set_offline


async def test_should_update_team_status_in_real_time(page, account, http, logged_in):
    created = await http.post("/api/teams", headers=account.headers,
                              json={"goal": "Build a web scraper for product prices"})
    team_id = created.json()["id"]
    await page.goto(f"/teams/{team_id}")
    await expect(page.locator('[data-testid="connection-status"]')).to_have_text("Connected")
    await expect(page.locator('[data-testid="status-badge"]')).to_have_text("pending")
    await page.evaluate("window.__noReload = true")

    started = await http.post(f"/api/teams/{team_id}/start", headers=account.headers)
    assert started.status_code == 202
    await expect(page.locator('[data-testid="status-badge"]')).to_have_text("completed", timeout=RUN_MS)
    assert await page.evaluate("window.__noReload === true"), "the page reloaded"


async def test_should_handle_reconnection(page, context, seeded_team, logged_in):
    await page.goto(f"/teams/{seeded_team.id}")
    await expect(page.locator('[data-testid="connection-status"]')).to_have_text("Connected")
    await context.set_offline(True)
    await expect(page.locator('[data-testid="connection-status"]')).to_have_text("Disconnected")
    await context.set_offline(False)
    await expect(page.locator('[data-testid="connection-status"]')).to_have_text("Connected")
