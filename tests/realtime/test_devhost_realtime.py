"""Real time end to end: devhost (app + Web PubSub emulator) in a subprocess, official clients as browsers."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import websockets
from azure.messaging.webpubsubclient.models import SendMessageError, WebPubSubProtocolType

from tests.e2e.conftest import AppHost, register, start_app, stop_app
from tests.realtime.helpers import DroppingProxy, backfill, merge_live_with_backfill

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("realtime-devhost")]
NODE_DIR = Path(__file__).parent / "node"
TERMINAL = {"completed", "failed", "cancelled"}


@pytest.fixture(scope="module")
async def host(migrated_database_url_module: str, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[AppHost]:
    app = await start_app(tmp_path_factory.mktemp("realtime"), migrated_database_url_module,
                          OFFLINE_LLM_LATENCY_MS="20", RATE_LIMIT_WRITES_PER_MINUTE="5000",
                          RATE_LIMIT_LOGIN_PER_MINUTE="1000")
    yield app
    await stop_app(app)


@pytest.fixture
async def http(host: AppHost) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=host.base_url, timeout=20) as client:
        yield client


async def negotiate(http: httpx.AsyncClient, auth: dict[str, str], team_id: str | None = None) -> dict[str, Any]:
    response = await http.post("/api/realtime/negotiate", headers=auth, json={"team_id": team_id} if team_id else {})
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def new_team(http: httpx.AsyncClient, auth: dict[str, str]) -> str:
    response = await http.post("/api/teams", headers=auth, json={"goal": "Build a web scraper for product prices"})
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


async def start(http: httpx.AsyncClient, auth: dict[str, str], team_id: str) -> None:
    response = await http.post(f"/api/teams/{team_id}/start", headers=auth)
    assert response.status_code == 202, response.text


async def finished(
    http: httpx.AsyncClient, auth: dict[str, str], team_id: str, seconds: float = 30
) -> list[dict[str, Any]]:
    """Wait for the run to end; the stored event stream, which must be gap-free."""
    async with asyncio.timeout(seconds):
        while (await http.get(f"/api/teams/{team_id}", headers=auth)).json()["status"] not in TERMINAL:
            await asyncio.sleep(0.1)
    stored = await backfill(http, auth, team_id, 0)
    assert [e["seq"] for e in stored] == list(range(1, len(stored) + 1))
    return stored


def final_event(team_id: str):
    return lambda inbox: any(e["type"] == "team.status_changed" and e["data"]["to"] in TERMINAL
                             for e in inbox.events if e["team_id"] == team_id)


async def test_a_client_sees_every_event_of_a_team_run_in_order(http, open_client):
    auth = await register(http, "Watchers")
    team_id = await new_team(http, auth)
    access = await negotiate(http, auth, team_id)
    _, inbox = await open_client(access["url"])

    await start(http, auth, team_id)
    stored = await finished(http, auth, team_id)

    await inbox.until(lambda: final_event(team_id)(inbox), seconds=15)
    # Live events are exactly the stored stream from the first one after joining (team.created came before).
    first = inbox.events[0]["seq"]
    assert inbox.events == stored[first - 1:]
    assert first <= 2 and len(stored) > 20
    assert {"team.status_changed", "task.created", "task.status_changed", "message.created", "cost.recorded"} <= {
        e["type"] for e in stored}


async def test_a_client_of_another_company_gets_a_failed_ack_joining_the_teams_group(http, open_client):
    owner, stranger = await register(http, "Owner"), await register(http, "Stranger")
    team_id = await new_team(http, owner)
    refused = await http.post("/api/realtime/negotiate", headers=stranger, json={"team_id": team_id})
    access = await negotiate(http, stranger)
    client, _ = await open_client(access["url"])

    with pytest.raises(SendMessageError) as failed:
        await client.join_group(f"team_{team_id}")

    assert refused.status_code == 404
    assert failed.value.error_detail is not None and failed.value.error_detail.name == "Forbidden"
    await client.join_group(access["groups"][0])  # its own company group is fine


async def test_a_client_dropped_mid_run_reconnects_and_with_backfill_has_exactly_the_stored_stream(
    http, open_client
):
    auth = await register(http, "Flaky network")
    team_id = await new_team(http, auth)
    access = await negotiate(http, auth, team_id)
    port = int(access["url"].split("://", 1)[1].split("/", 1)[0].rsplit(":", 1)[1])
    proxy = DroppingProxy(port)
    await proxy.start()
    try:
        # Plain JSON protocol: the client reconnects on its own but nothing replays what it missed.
        _, inbox = await open_client(proxy.rewrite(access["url"]), protocol=WebPubSubProtocolType.JSON,
                                     reconnect_retry_backoff_factor=0.2)
        await start(http, auth, team_id)
        await inbox.until(lambda: len(inbox.events) >= 3, seconds=15)
        proxy.drop()
        await asyncio.sleep(0.6)  # events go out while the client is cut off
        proxy.restore()
        stored = await finished(http, auth, team_id)
        await inbox.until(lambda: len(inbox.connected) >= 2 and final_event(team_id)(inbox), seconds=20)
    finally:
        await proxy.stop()

    applied, filled = await merge_live_with_backfill(http, auth, team_id, inbox.events)

    assert applied == stored
    assert filled > 0, "the drop should have cost the client some live events"


async def test_a_raw_client_subscribes_through_the_event_handler_after_the_company_check(http):
    owner, stranger = await register(http, "Raw owner"), await register(http, "Raw stranger")
    team_id = await new_team(http, owner)
    mine, theirs = await negotiate(http, owner), await negotiate(http, stranger)
    request = json.dumps({"type": "subscribe", "team_id": team_id})
    async with websockets.connect(mine["url"]) as ws, websockets.connect(theirs["url"]) as other:
        await ws.send(request)
        await other.send(request)
        async with asyncio.timeout(10):
            assert json.loads(await ws.recv())["type"] == "subscribed"
            assert json.loads(await other.recv())["type"] == "subscribe_failed"
            await start(http, owner, team_id)
            event = json.loads(await ws.recv())
            # Before it: the team's creation (published a few ms after its commit) and the plan's llm.delta.
            while event.get("type") != "team.status_changed":
                event = json.loads(await ws.recv())
        assert event["team_id"] == team_id and event["type"] == "team.status_changed"
        with pytest.raises(TimeoutError):
            async with asyncio.timeout(0.5):
                await other.recv()
    await finished(http, owner, team_id)


def _node_ready() -> str | None:
    if shutil.which("node") is None or shutil.which("npm") is None:
        return "node/npm is not installed"
    if (NODE_DIR / "node_modules" / "@azure" / "web-pubsub-client").is_dir():
        return None
    done = subprocess.run(["npm", "ci", "--no-audit", "--no-fund"], cwd=NODE_DIR, capture_output=True, timeout=120,
                          check=False)
    return None if done.returncode == 0 else f"npm ci failed in {NODE_DIR}: {done.stderr.decode()[-300:]}"


async def test_the_js_client_sees_every_event_of_a_team_run_in_order(http):
    reason = await asyncio.to_thread(_node_ready)
    if reason is not None:
        pytest.skip(reason)
    auth = await register(http, "Node watchers")
    team_id = await new_team(http, auth)
    access = await negotiate(http, auth, team_id)
    node = await asyncio.create_subprocess_exec(
        "node", "watch_team.mjs", cwd=NODE_DIR, env={**os.environ, "PUBSUB_CLIENT_URL": access["url"]},
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    assert node.stdout is not None and node.stderr is not None
    try:
        async with asyncio.timeout(30):
            assert (await node.stdout.readline()).strip() == b"READY"
            await start(http, auth, team_id)
            output = (await node.stdout.read()).decode()
            await node.wait()
    finally:
        if node.returncode is None:
            node.kill()
            await node.wait()
    assert node.returncode == 0, (await node.stderr.read()).decode()
    received = [json.loads(line) for line in output.splitlines() if line.strip()]
    stored = await finished(http, auth, team_id)
    first = received[0]["seq"]
    assert received == stored[first - 1:] and first <= 2
