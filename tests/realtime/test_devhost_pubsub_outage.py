"""Web PubSub down while a team runs: the API keeps working, events wait in the outbox, and once the
service is back the timer's sweep sends them all (devhost with a separately run emulator)."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import psycopg
import pytest
from azure.messaging.webpubsubclient.models import WebPubSubProtocolType

from loadtests.processes import free_port, wait_listening
from tests.e2e.conftest import register, start_app, stop_app
from tests.realtime.helpers import merge_live_with_backfill
from tests.realtime.test_devhost_realtime import finished, negotiate, new_team, start

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("realtime-outage")]
REPO = Path(__file__).resolve().parents[2]
KEY = "outage-test-access-key-0123456789abcdefgh"


class StandaloneEmulator:
    """`python -m devhost.pubsub` in a child process, stoppable and restartable on the same port."""

    def __init__(self) -> None:
        self.port = free_port()
        self.process: asyncio.subprocess.Process | None = None

    @property
    def connection_string(self) -> str:
        return f"Endpoint=http://127.0.0.1:{self.port};AccessKey={KEY};Version=1.0;"

    async def start(self) -> None:
        self.process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "devhost.pubsub", "--port", str(self.port), "--access-key", KEY, cwd=REPO,
            stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL)
        await wait_listening(self.port, 15)

    async def stop(self) -> None:
        if self.process is not None and self.process.returncode is None:
            self.process.kill()
            await self.process.wait()


@pytest.fixture
async def emulator_process() -> AsyncIterator[StandaloneEmulator]:
    emulator = StandaloneEmulator()
    await emulator.start()
    yield emulator
    await emulator.stop()


def unpublished(database_url: str, team_id: str) -> int:
    with psycopg.connect(database_url) as conn:
        row = conn.execute("SELECT count(*) FROM team_events WHERE team_id = %s AND published_at IS NULL",
                           (team_id,)).fetchone()
    return int(row[0]) if row else 0


async def test_events_of_a_run_during_an_outage_all_reach_the_client_once_web_pubsub_is_back(
    emulator_process, migrated_database_url, tmp_path, open_client
):
    host = await start_app(tmp_path, migrated_database_url, OFFLINE_LLM_LATENCY_MS="5",
                           WEBPUBSUB_CONNECTION_STRING=emulator_process.connection_string)
    try:
        async with httpx.AsyncClient(base_url=host.base_url, timeout=20) as http:
            auth = await register(http, "Outage")
            await emulator_process.stop()
            team_id = await new_team(http, auth)
            access = await negotiate(http, auth, team_id)  # a locally signed token: works while down

            await start(http, auth, team_id)
            stored = await finished(http, auth, team_id)
            assert unpublished(migrated_database_url, team_id) == len(stored)

            await emulator_process.start()
            _, inbox = await open_client(access["url"], protocol=WebPubSubProtocolType.JSON)
            async with asyncio.timeout(15):  # the sweep runs every 5 s
                while unpublished(migrated_database_url, team_id):
                    await asyncio.sleep(0.1)
            await inbox.until(lambda: inbox.events and inbox.events[-1]["seq"] == len(stored), seconds=5)
            applied, _ = await merge_live_with_backfill(http, auth, team_id, inbox.events)
            health = (await http.get("/api/health")).json()
    finally:
        await stop_app(host)

    assert applied == stored
    assert [e["seq"] for e in inbox.events] == sorted({e["seq"] for e in inbox.events}), "in order, once each"
    assert health["checks"]["pubsub"]["status"] == "ok"
