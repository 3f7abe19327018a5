"""Service REST API: authentication, existence checks and closing connections."""

from __future__ import annotations

import time

import httpx
import jwt
import pytest
from azure.core.exceptions import ClientAuthenticationError
from azure.messaging.webpubsubservice.aio import WebPubSubServiceClient

from tests.pubsub.conftest import ACCESS_KEY, HUB


async def test_rest_call_signed_with_wrong_key_is_401(emulator):
    wrong = emulator.connection_string.replace(ACCESS_KEY, "not-the-key-" + "x" * 32)
    async with WebPubSubServiceClient.from_connection_string(wrong, hub=HUB) as client:
        with pytest.raises(ClientAuthenticationError):
            await client.send_to_all({"x": 1})


@pytest.mark.parametrize(
    "authorization",
    [
        None,
        "Bearer not-a-jwt",
        "Bearer " + jwt.encode({"aud": "http://h/api/hubs/ghost_pirates/:send", "exp": int(time.time()) - 5},
                               ACCESS_KEY, algorithm="HS256"),
        "Bearer " + jwt.encode({"aud": "http://h/api/hubs/ghost_pirates/groups/x/:send",
                                "exp": int(time.time()) + 60}, ACCESS_KEY, algorithm="HS256"),
    ],
    ids=["missing", "garbage", "expired", "audience-for-another-path"],
)
async def test_rest_call_without_a_valid_token_is_401(emulator, authorization):
    headers = {"Content-Type": "application/json"}
    if authorization:
        headers["Authorization"] = authorization
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{emulator.port}") as http:
        response = await http.post(f"/api/hubs/{HUB}/:send?api-version=2024-12-01", content=b"{}",
                                   headers=headers)
    assert response.status_code == 401


async def test_valid_token_for_the_path_is_accepted_whatever_the_host(emulator):
    token = jwt.encode({"aud": f"https://example.invalid/api/hubs/{HUB}/:send?api-version=2024-12-01",
                        "exp": int(time.time()) + 60}, ACCESS_KEY, algorithm="HS256")
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{emulator.port}") as http:
        response = await http.post(f"/api/hubs/{HUB}/:send", content=b"{}",
                                   headers={"Authorization": f"Bearer {token}",
                                            "Content-Type": "application/json"})
    assert response.status_code == 202


async def test_exists_checks_follow_connections_groups_and_users(service, open_client):
    _, inbox = await open_client(user_id="erin", groups=["team_2"])
    connection_id = inbox.connected[0].connection_id
    assert await service.connection_exists(connection_id)
    assert await service.group_exists("team_2")
    assert await service.user_exists("erin")
    assert not await service.connection_exists("missing")
    assert not await service.user_exists("frank")

    await service.remove_connection_from_group("team_2", connection_id)
    assert not await service.group_exists("team_2")
    await service.add_connection_to_group("team_6", connection_id)
    assert await service.group_exists("team_6")
    members = [member async for member in service.list_connections(group="team_6")]
    assert [(m.connection_id, m.user_id) for m in members] == [(connection_id, "erin")]


async def test_close_group_connections_ends_only_members(service, open_client):
    _, member_inbox = await open_client(groups=["doomed"], reconnect_retry_total=0)
    _, other_inbox = await open_client()
    await service.close_group_connections("doomed", reason="bye")
    await member_inbox.until(lambda: bool(member_inbox.disconnected))
    assert member_inbox.disconnected[0].message == "bye"
    assert not await service.group_exists("doomed")
    assert await service.connection_exists(other_inbox.connected[0].connection_id)


async def test_permissions_granted_over_rest_allow_joining(service, open_client):
    client, inbox = await open_client()
    connection_id = inbox.connected[0].connection_id
    assert not await service.has_permission("joinLeaveGroup", connection_id, target_name="team_1")
    await service.grant_permission("joinLeaveGroup", connection_id, target_name="team_1")
    assert await service.has_permission("joinLeaveGroup", connection_id, target_name="team_1")
    await client.join_group("team_1")
    assert await service.group_exists("team_1")


async def test_generate_token_endpoint_returns_a_usable_client_token(emulator):
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{emulator.port}") as http:
        url = f"http://127.0.0.1:{emulator.port}/api/hubs/{HUB}/:generateToken?userId=u1&role=r1"
        token = jwt.encode({"aud": url, "exp": int(time.time()) + 60}, ACCESS_KEY, algorithm="HS256")
        response = await http.post(url, headers={"Authorization": f"Bearer {token}"})
    claims = jwt.decode(response.json()["token"], ACCESS_KEY, algorithms=["HS256"],
                        options={"verify_aud": False})
    assert response.status_code == 200
    assert claims["sub"] == "u1" and claims["role"] == ["r1"]
    assert claims["aud"].endswith(f"/client/hubs/{HUB}")
