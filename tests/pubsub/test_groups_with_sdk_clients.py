"""Group messaging through the official Python SDKs (service REST client and WebPubSubClient)."""

from __future__ import annotations

import pytest
from azure.messaging.webpubsubclient.models import SendMessageError, WebPubSubDataType, WebPubSubProtocolType

from tests.pubsub.conftest import HUB, error_name


async def test_send_to_group_reaches_joined_clients_and_not_others(service, open_client):
    member, member_inbox = await open_client(roles=["webpubsub.joinLeaveGroup"])
    outsider, outsider_inbox = await open_client(roles=["webpubsub.joinLeaveGroup"])
    await member.join_group("team_1")
    await outsider.join_group("team_2")

    await service.send_to_group("team_1", {"seq": 1, "type": "task.created"})
    await service.send_to_all({"marker": "after"})

    await member_inbox.count(2)
    await outsider_inbox.count(1)
    assert member_inbox.data == [{"seq": 1, "type": "task.created"}, {"marker": "after"}]
    # Per-connection order is preserved, so the outsider's first message proves it skipped team_1's.
    assert outsider_inbox.data == [{"marker": "after"}]
    assert member_inbox.items[0].data_type == "json"


async def test_group_message_from_rest_arrives_as_server_message(service, open_client):
    _, inbox = await open_client(groups=["team_9"])  # joined at connect by the token claim
    await service.send_to_group("team_9", "plain text", content_type="text/plain")
    (message,) = await inbox.count(1)
    assert message.data == "plain text"
    assert message.data_type == "text"
    assert not hasattr(message, "group")  # server data, not group data


async def test_join_without_role_is_refused_with_forbidden_ack(service, open_client):
    client, _ = await open_client(roles=[])
    with pytest.raises(SendMessageError) as refused:
        await client.join_group("team_1")
    assert error_name(refused.value) == "Forbidden"
    assert not await service.group_exists("team_1")


async def test_group_scoped_role_allows_only_that_group(service, open_client):
    client, _ = await open_client(roles=["webpubsub.joinLeaveGroup.team_1"])
    await client.join_group("team_1")
    with pytest.raises(SendMessageError) as refused:
        await client.join_group("team_2")
    assert error_name(refused.value) == "Forbidden"
    assert await service.group_exists("team_1")
    assert not await service.group_exists("team_2")


async def test_send_to_group_echoes_to_sender_unless_no_echo(open_client):
    roles = ["webpubsub.joinLeaveGroup.team_1", "webpubsub.sendToGroup.team_1"]
    sender, sender_inbox = await open_client(user_id="alice", roles=roles)
    peer, peer_inbox = await open_client(user_id="bob", roles=roles)
    await sender.join_group("team_1")
    await peer.join_group("team_1")

    await sender.send_to_group("team_1", {"n": 1}, WebPubSubDataType.JSON, no_echo=True)
    await sender.send_to_group("team_1", "echoed", WebPubSubDataType.TEXT, no_echo=False)

    await peer_inbox.count(2)
    await sender_inbox.count(1)
    assert peer_inbox.data == [{"n": 1}, "echoed"]
    assert sender_inbox.data == ["echoed"]
    assert peer_inbox.items[0].group == "team_1"
    assert peer_inbox.items[0].from_user_id == "alice"


async def test_send_to_group_without_send_role_is_forbidden(open_client):
    client, _ = await open_client(roles=["webpubsub.joinLeaveGroup", "webpubsub.sendToGroup.team_1"])
    with pytest.raises(SendMessageError) as refused:
        await client.send_to_group("team_2", "nope", WebPubSubDataType.TEXT)
    assert error_name(refused.value) == "Forbidden"


async def test_binary_data_round_trips_through_a_group(open_client):
    roles = ["webpubsub.joinLeaveGroup", "webpubsub.sendToGroup"]
    sender, _ = await open_client(roles=roles, protocol=WebPubSubProtocolType.JSON)
    receiver, inbox = await open_client(roles=roles, protocol=WebPubSubProtocolType.JSON)
    await receiver.join_group("blobs")
    await sender.send_to_group("blobs", memoryview(b"\x00\x01\xfe"), WebPubSubDataType.BINARY)
    (message,) = await inbox.count(1)
    assert bytes(message.data) == b"\x00\x01\xfe"


async def test_user_membership_and_send_to_user(service, open_client):
    _, inbox = await open_client(user_id="carol")
    await service.add_user_to_group("team_5", "carol")
    await service.send_to_group("team_5", {"via": "group"})
    await service.send_to_user("carol", {"via": "user"})
    await inbox.count(2)
    assert inbox.data == [{"via": "group"}, {"via": "user"}]
    assert await service.user_exists("carol")
    await service.remove_user_from_group("team_5", "carol")
    assert not await service.group_exists("team_5")


async def test_send_to_all_honours_filter_and_excluded(service, open_client):
    _, alice_inbox = await open_client(user_id="alice")
    _, bob_inbox = await open_client(user_id="bob")
    await service.send_to_all({"to": "not bob"}, filter="userId ne 'bob'")
    await service.send_to_all({"to": "everyone"})
    await alice_inbox.count(2)
    await bob_inbox.count(1)
    assert alice_inbox.data == [{"to": "not bob"}, {"to": "everyone"}]
    assert bob_inbox.data == [{"to": "everyone"}]


async def test_hub_not_served_is_not_found(emulator):
    from azure.core.exceptions import ResourceNotFoundError
    from azure.messaging.webpubsubservice.aio import WebPubSubServiceClient

    connection_string = emulator.connection_string
    async with WebPubSubServiceClient.from_connection_string(connection_string, hub="other") as other:
        with pytest.raises(ResourceNotFoundError):
            await other.send_to_all({"x": 1})
    assert HUB == "ghost_pirates"
