"""Frame-level behaviour checked with a plain WebSocket client (`websockets`), where the SDKs hide it."""

from __future__ import annotations

import asyncio
import json

import pytest
import websockets
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.typing import Subprotocol

RELIABLE = "json.reliable.webpubsub.azure.v1"
JSON = "json.webpubsub.azure.v1"


async def _token_url(service, **claims):
    return (await service.get_client_access_token(**claims))["url"]


async def _next_json(socket):
    async with asyncio.timeout(5):
        return json.loads(await socket.recv())


async def test_raw_client_receives_the_raw_payload(service):
    url = await _token_url(service, groups=["team_3"])
    async with websockets.connect(url) as raw:
        assert raw.subprotocol is None
        await service.send_to_group("team_3", {"seq": 4})
        await service.send_to_group("team_3", "hello", content_type="text/plain")
        await service.send_to_group("team_3", b"\x01\x02", content_type="application/octet-stream")
        async with asyncio.timeout(5):
            frames = [await raw.recv() for _ in range(3)]
    assert json.loads(frames[0]) == {"seq": 4}
    assert frames[1] == "hello"
    assert frames[2] == b"\x01\x02"


async def test_connected_message_carries_ids_and_reconnection_token_only_when_reliable(service):
    url = await _token_url(service, user_id="dave")
    async with websockets.connect(url, subprotocols=[Subprotocol(RELIABLE)]) as reliable:
        connected = await _next_json(reliable)
    async with websockets.connect(url, subprotocols=[Subprotocol(JSON)]) as plain:
        plain_connected = await _next_json(plain)
    assert connected["type"] == "system" and connected["event"] == "connected"
    assert connected["userId"] == "dave" and connected["connectionId"] and connected["reconnectionToken"]
    assert plain_connected["event"] == "connected" and "reconnectionToken" not in plain_connected


async def test_resent_ack_id_is_answered_duplicate(service):
    url = await _token_url(service, roles=["webpubsub.joinLeaveGroup"])
    async with websockets.connect(url, subprotocols=[Subprotocol(RELIABLE)]) as socket:
        await _next_json(socket)
        join = json.dumps({"type": "joinGroup", "group": "g1", "ackId": 7})
        await socket.send(join)
        first = await _next_json(socket)
        await socket.send(join)
        second = await _next_json(socket)
    assert first == {"type": "ack", "ackId": 7, "success": True}
    assert second["ackId"] == 7 and second["success"] is False
    assert second["error"]["name"] == "Duplicate"


async def test_forbidden_ack_is_not_remembered_so_a_retry_is_checked_again(service):
    url = await _token_url(service)
    async with websockets.connect(url, subprotocols=[Subprotocol(JSON)]) as socket:
        await _next_json(socket)
        for _ in range(2):
            await socket.send(json.dumps({"type": "joinGroup", "group": "g1", "ackId": 1}))
            assert (await _next_json(socket))["error"]["name"] == "Forbidden"


async def test_ping_is_answered_with_pong(service):
    async with websockets.connect(await _token_url(service), subprotocols=[Subprotocol(JSON)]) as socket:
        await _next_json(socket)
        await socket.send('{"type":"ping"}')
        assert await _next_json(socket) == {"type": "pong"}


async def test_reliable_messages_carry_increasing_sequence_ids_and_replay_after_resume(service, emulator):
    url = await _token_url(service, groups=["team_4"])
    socket = await websockets.connect(url, subprotocols=[Subprotocol(RELIABLE)])
    connected = await _next_json(socket)
    for n in range(3):
        await service.send_to_group("team_4", {"n": n})
    received = [await _next_json(socket) for _ in range(3)]
    assert [m["sequenceId"] for m in received] == [1, 2, 3]
    assert received[0]["from"] == "server" and received[0]["data"] == {"n": 0}
    await socket.send(json.dumps({"type": "sequenceAck", "sequenceId": 2}))
    await socket.send('{"type":"ping"}')  # the ack is processed once the pong comes back
    assert await _next_json(socket) == {"type": "pong"}
    socket.transport.abort()  # drop without a close frame

    resume = (f"{url}&awps_connection_id={connected['connectionId']}"
              f"&awps_reconnection_token={connected['reconnectionToken']}")
    async with websockets.connect(resume, subprotocols=[Subprotocol(RELIABLE)]) as resumed:
        assert (await _next_json(resumed))["connectionId"] == connected["connectionId"]
        replayed = await _next_json(resumed)
    assert replayed["sequenceId"] == 3 and replayed["data"] == {"n": 2}


async def test_resume_of_unknown_session_is_closed_with_1008(emulator):
    url = f"ws://127.0.0.1:{emulator.port}/client/hubs/ghost_pirates?awps_connection_id=nope&awps_reconnection_token=x"
    async with websockets.connect(url, subprotocols=[Subprotocol(RELIABLE)]) as socket:
        with pytest.raises(ConnectionClosed) as closed:
            async with asyncio.timeout(5):
                await socket.recv()
    assert closed.value.rcvd.code == 1008


async def test_client_token_signed_with_another_key_is_refused_with_401(emulator):
    from azure.messaging.webpubsubservice.aio import WebPubSubServiceClient

    wrong = emulator.connection_string.replace("AccessKey=", "AccessKey=wrong")
    async with WebPubSubServiceClient.from_connection_string(wrong, hub="ghost_pirates") as other:
        url = (await other.get_client_access_token())["url"]
    with pytest.raises(InvalidStatus) as refused:
        async with websockets.connect(url, subprotocols=[Subprotocol(JSON)]):
            pass
    assert refused.value.response.status_code == 401


async def test_token_for_another_hub_is_refused(emulator, service):
    token = (await service.get_client_access_token())["token"]
    url = f"ws://127.0.0.1:{emulator.port}/client/hubs/other_hub?access_token={token}"
    with pytest.raises(InvalidStatus) as refused:
        async with websockets.connect(url):
            pass
    assert refused.value.response.status_code in (401, 404)
