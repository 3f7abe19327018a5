"""`python -m devhost serve` end to end: wiring of env and emulator, graceful SIGTERM, Durable."""

from __future__ import annotations

import asyncio
import signal
from pathlib import Path

import httpx
import pytest
from azure.messaging.webpubsubservice import WebPubSubServiceClient

from tests.devhost.process import spawn_devhost

pytestmark = pytest.mark.slow  # each test runs devhost in a subprocess

HERE = Path(__file__).parent


async def _poll(client: httpx.AsyncClient, url: str, until: str, seconds: float) -> httpx.Response:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + seconds
    while True:
        response = await client.get(url)
        if response.text == until or loop.time() > deadline:
            return response
        await asyncio.sleep(0.05)


async def test_sigterm_drains_a_running_request_then_exits_zero(
    empty_database_url: str, tmp_path: Path
) -> None:
    env = {"DATABASE_URL": empty_database_url}
    host = await spawn_devhost(HERE / "sample_app", tmp_path, env=env, extra=("--no-migrate", "--grace", "5"))
    try:
        async with httpx.AsyncClient(base_url=host.base_url, timeout=10) as client:
            settings = (await client.get("/api/settings")).json()
            assert settings["DATABASE_URL"] == empty_database_url
            connection_string = settings["WEBPUBSUB_CONNECTION_STRING"]
            assert connection_string.startswith("Endpoint=http://127.0.0.1:")
            pubsub = WebPubSubServiceClient.from_connection_string(connection_string, hub="ghost_pirates")
            await asyncio.to_thread(pubsub.send_to_all, {"hello": "emulator"})

            slow = asyncio.create_task(client.get("/api/slow?seconds=1.5"))
            assert (await _poll(client, "/api/slow/started", "1", 5)).text == "1"
            host.process.send_signal(signal.SIGTERM)

            loop = asyncio.get_running_loop()
            deadline = loop.time() + 3
            refused = None
            while loop.time() < deadline and not slow.done():
                refused = await client.get("/api/text")
                if refused.status_code == 503:
                    break
                await asyncio.sleep(0.02)
            assert refused is not None and refused.status_code == 503
            assert refused.headers["connection"] == "close"

            finished = await slow
            assert (finished.status_code, finished.text) == (200, "done")
        assert await host.wait_exit(15) == 0, host.log()
    finally:
        await host.kill()
    assert any("Web PubSub" in line and "emulator" in line for line in host.banner)
    assert any("external (DATABASE_URL)" in line for line in host.banner)


async def test_durable_client_binding_starts_an_orchestration_through_the_backend(
    empty_database_url: str, tmp_path: Path
) -> None:
    host = await spawn_devhost(
        HERE / "durable_app", tmp_path, env={"DATABASE_URL": empty_database_url}, extra=("--no-migrate",)
    )
    try:
        async with httpx.AsyncClient(base_url=host.base_url, timeout=10) as client:
            started = await client.post("/api/start/Pirate")
            assert started.status_code == 202, started.text
            body = started.json()
            management = f"{host.base_url}/runtime/webhooks/durabletask/instances/"
            assert body["statusQueryGetUri"].startswith(management)
            loop = asyncio.get_running_loop()
            deadline = loop.time() + 20
            status: dict[str, object] = {}
            while loop.time() < deadline:
                status = (await client.get(f"/api/status/{body['id']}")).json()
                if status["runtimeStatus"] in ("Completed", "Failed"):
                    break
                await asyncio.sleep(0.1)
            assert status == {"runtimeStatus": "Completed", "output": "Hello Pirate"}
            direct = await client.get(body["statusQueryGetUri"])
            assert direct.status_code == 200
            assert direct.json()["output"] == "Hello Pirate"
        host.process.send_signal(signal.SIGTERM)
        assert await host.wait_exit(20) == 0, host.log()
    finally:
        await host.kill()
