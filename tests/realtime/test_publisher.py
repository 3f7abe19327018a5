"""The outbox publisher against the Web PubSub emulator, with the official Python client as the receiver."""

from __future__ import annotations

import asyncio
from typing import Any

import psycopg
from psycopg_pool import AsyncConnectionPool

from devhost.pubsub import EmulatorServer, PubSubEmulator
from shared.db.database import Database
from shared.domain.models import Actor, TeamCreate
from shared.realtime import OutboxPublisher, realtime_of, team_group
from shared.realtime.service import ConnectionInfo
from tests.realtime.conftest import ACCESS_KEY, HUB


async def _team(app: Any, principal: Any) -> Any:
    return await app.services.teams.create(principal, TeamCreate(goal="Watch the outbox"))


async def _post(app: Any, team_id: Any, n: int) -> None:
    for i in range(n):
        await app.services.messages.post(team_id=team_id, sender="test", content=f"note {i}")


async def _unpublished(database_url: str, team_id: Any) -> list[int]:
    async with await psycopg.AsyncConnection.connect(database_url) as conn:
        cur = await conn.execute(
            "SELECT seq FROM team_events WHERE team_id = %s AND published_at IS NULL ORDER BY seq", (team_id,))
        return [row[0] for row in await cur.fetchall()]


async def _token_url(app: Any, team_id: Any) -> str:
    realtime = realtime_of(app.db)
    token = await realtime.client.get_client_access_token(groups=[team_group(team_id)])
    return str(token["url"])


async def test_events_committed_after_connect_arrive_in_seq_order_and_are_marked_published(
    app, make_company, open_client, database_url
):
    principal = await make_company()
    team = await _team(app, principal)
    _, inbox = await open_client(await _token_url(app, team.id))
    await realtime_of(app.db).publisher.sweep()  # the team.created event, committed before the client joined
    before = len(inbox.events)

    await _post(app, team.id, 20)  # each commit kicks the publisher; nobody calls it here

    await inbox.until(lambda: len(inbox.events) >= before + 20)
    assert inbox.seqs(team.id)[before:] == list(range(before + 1, before + 21))
    assert inbox.events[-1]["type"] == "message.created" and inbox.events[-1]["data"]["content"] == "note 19"
    assert set(inbox.events[-1]) == {"type", "seq", "team_id", "task_id", "at", "data"}
    await realtime_of(app.db).publisher.drain()
    assert await _unpublished(database_url, team.id) == []


async def test_team_status_changes_also_reach_the_company_group_once(app, make_company, open_client):
    principal = await make_company()
    team = await _team(app, principal)
    realtime = realtime_of(app.db)
    token = await realtime.client.get_client_access_token(
        groups=[f"company_{principal.company_id}", team_group(team.id)])
    _, both = await open_client(token["url"])
    company_only = await realtime.client.get_client_access_token(groups=[f"company_{principal.company_id}"])
    _, company = await open_client(company_only["url"])

    await app.services.teams.start(team.id, Actor.system(), company_id=principal.company_id)
    await _post(app, team.id, 1)

    await both.until(lambda: any(e["type"] == "message.created" for e in both.events))
    await company.until(lambda: any(e["type"] == "team.status_changed" for e in company.events))
    await asyncio.sleep(0.2)  # room for a stray duplicate
    assert [e["type"] for e in both.events].count("team.status_changed") == 1
    assert [e["type"] for e in company.events] == ["team.status_changed"]


async def test_concurrent_publishers_of_one_team_send_each_event_once_and_in_order(
    app, make_company, open_client, database_url, emulator
):
    principal = await make_company()
    app.db.listeners.clear()  # no kicks: the two "processes" below do all the publishing
    team = await _team(app, principal)
    await _post(app, team.id, 150)
    _, inbox = await open_client(await _token_url(app, team.id))
    info = ConnectionInfo.parse(emulator.connection_string)
    pools = [AsyncConnectionPool(database_url, min_size=1, max_size=4, open=False, kwargs={"autocommit": True})
             for _ in range(2)]
    clients = [info.client(HUB) for _ in range(2)]
    try:
        for pool in pools:
            await pool.open(wait=True)
        publishers = [OutboxPublisher(Database(pool), client, batch_size=7)
                      for pool, client in zip(pools, clients, strict=True)]

        counts = await asyncio.gather(*(p.publish_team(team.id) for p in publishers for _ in range(3)),
                                      *(p.sweep() for p in publishers))
    finally:
        for client in clients:
            await client.close()
        for pool in pools:
            await pool.close()

    assert sum(counts) == 151
    await inbox.until(lambda: len(inbox.events) >= 151)
    await asyncio.sleep(0.2)
    assert inbox.seqs(team.id) == list(range(1, 152))
    assert await _unpublished(database_url, team.id) == []


async def test_events_wait_in_the_outbox_while_web_pubsub_is_down_and_all_go_out_once_it_is_back(
    app, make_company, open_client, database_url, emulator
):
    principal = await make_company()
    team = await _team(app, principal)
    publisher = realtime_of(app.db).publisher
    await publisher.sweep()
    port = emulator.port
    await emulator.stop()

    await _post(app, team.id, 5)  # the writes succeed although every send fails
    await publisher.drain()
    assert await publisher.sweep() == 0
    assert await _unpublished(database_url, team.id) == [2, 3, 4, 5, 6]

    back = EmulatorServer(PubSubEmulator(ACCESS_KEY, hub_names={HUB}), port=port)
    await back.start()
    try:
        _, inbox = await open_client(await _token_url(app, team.id))
        assert await publisher.sweep() == 5
        await inbox.until(lambda: len(inbox.events) >= 5)
        assert inbox.seqs(team.id) == [2, 3, 4, 5, 6]
        assert await _unpublished(database_url, team.id) == []
    finally:
        await back.stop()
