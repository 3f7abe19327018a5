"""Session limits and shutdown: expired reconnect windows, overflowing buffers, clean close."""

from __future__ import annotations

import asyncio
import json

import pytest
import websockets
from azure.messaging.webpubsubservice.aio import WebPubSubServiceClient
from websockets.exceptions import ConnectionClosed
from websockets.typing import Subprotocol

from devhost.pubsub import EmulatorServer, Limits, PubSubEmulator
from tests.pubsub.conftest import ACCESS_KEY, HUB

RELIABLE = "json.reliable.webpubsub.azure.v1"


@pytest.fixture
async def strict_emulator():
    server = EmulatorServer(PubSubEmulator(
        ACCESS_KEY, limits=Limits(reconnect_grace_seconds=0.2, max_unacked_messages=3)))
    await server.start()
    async with WebPubSubServiceClient.from_connection_string(server.connection_string, hub=HUB) as service:
        yield server, service
    await server.stop()


async def _recv_json(socket):
    async with asyncio.timeout(5):
        return json.loads(await socket.recv())


async def test_session_dropped_longer_than_the_grace_period_is_gone(strict_emulator):
    _, service = strict_emulator
    url = (await service.get_client_access_token())["url"]
    socket = await websockets.connect(url, subprotocols=[Subprotocol(RELIABLE)])
    connected = await _recv_json(socket)
    socket.transport.abort()
    async with asyncio.timeout(5):
        while await service.connection_exists(connected["connectionId"]):
            await asyncio.sleep(0.05)
    resume = (f"{url}&awps_connection_id={connected['connectionId']}"
              f"&awps_reconnection_token={connected['reconnectionToken']}")
    async with websockets.connect(resume, subprotocols=[Subprotocol(RELIABLE)]) as resumed:
        with pytest.raises(ConnectionClosed) as closed:
            await _recv_json(resumed)
    assert closed.value.rcvd.code == 1008


async def test_client_that_never_acks_is_closed_when_its_buffer_overflows(strict_emulator):
    _, service = strict_emulator
    url = (await service.get_client_access_token(groups=["g"]))["url"]
    async with websockets.connect(url, subprotocols=[Subprotocol(RELIABLE)]) as socket:
        connected = await _recv_json(socket)
        for n in range(4):
            await service.send_to_group("g", {"n": n})
        frames = []
        with pytest.raises(ConnectionClosed) as closed:
            while True:
                frames.append(await _recv_json(socket))
    assert [f["sequenceId"] for f in frames if f["type"] == "message"] == [1, 2, 3, 4]
    assert frames[-1]["event"] == "disconnected"
    assert closed.value.rcvd.code == 1008
    assert not await service.connection_exists(connected["connectionId"])


async def test_emulator_close_sends_going_away_to_clients(strict_emulator):
    server, service = strict_emulator
    url = (await service.get_client_access_token())["url"]
    async with websockets.connect(url, subprotocols=[Subprotocol("json.webpubsub.azure.v1")]) as socket:
        await _recv_json(socket)
        await server.emulator.close()
        assert (await _recv_json(socket))["event"] == "disconnected"
        with pytest.raises(ConnectionClosed) as closed:
            await _recv_json(socket)
    assert closed.value.rcvd.code == 1001
