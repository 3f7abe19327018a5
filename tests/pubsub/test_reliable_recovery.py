"""The reliable subprotocol: a dropped socket resumes its session without loss or duplicates."""

from __future__ import annotations

import asyncio

import pytest

from tests.pubsub.tcp_proxy import CuttableProxy


@pytest.fixture
async def proxy(emulator):
    proxy = CuttableProxy(emulator.port)
    await proxy.start()
    yield proxy
    await proxy.stop()


async def test_reliable_client_resumes_after_network_drop_without_loss_or_duplicates(
    emulator, service, open_client, proxy
):
    via_proxy = lambda url: url.replace(f":{emulator.port}/", f":{proxy.port}/")  # noqa: E731
    _, inbox = await open_client(groups=["team_7"], url_rewrite=via_proxy)
    connection_id = inbox.connected[0].connection_id

    for n in range(1, 6):
        await service.send_to_group("team_7", {"n": n})
    await inbox.count(5)

    proxy.cut()  # no close frame either way, like a lost network
    for n in range(6, 11):
        await service.send_to_group("team_7", {"n": n})

    await inbox.count(10, seconds=10)
    await asyncio.sleep(0.2)  # room for a stray duplicate to show up before asserting
    assert [item["n"] for item in inbox.data] == list(range(1, 11))
    assert [item.sequence_id for item in inbox.items] == list(range(1, 11))
    # Resumed, not replaced: still one `connected` callback and the same connection id on the service.
    assert len(inbox.connected) == 1
    assert await service.connection_exists(connection_id)
    await service.send_to_group("team_7", {"n": 11})
    await inbox.count(11)


async def test_closed_session_is_not_resumed_and_client_starts_a_new_connection(service, open_client):
    _, inbox = await open_client(groups=["team_8"])
    first_id = inbox.connected[0].connection_id

    await service.close_connection(first_id, reason="kicked")

    await inbox.until(lambda: len(inbox.connected) == 2, seconds=10)
    assert inbox.disconnected[0].message == "kicked"
    assert not await service.connection_exists(first_id)
    assert await service.connection_exists(inbox.connected[1].connection_id)
