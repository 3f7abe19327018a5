"""Leases: the fence (a host whose lease was taken cannot commit), a restarted host taking back
the claims of its dead previous run at once, and the heartbeat renewing claims in progress.

Leases are driven directly in the database (expired or shortened by an UPDATE), so nothing here
waits for one to run out.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from datetime import datetime
from typing import Any
from uuid import uuid4

import psycopg
import pytest
from psycopg import AsyncConnection
from psycopg_pool import AsyncConnectionPool

from devhost.durable.episode import decide
from devhost.durable.instances import InstanceAdmin
from devhost.durable.store import ClaimedEpisode, LeaseLost, WorkerStore, connection_kwargs, create_schema

from . import sample_app
from .conftest import StartBackend, wait_until_done
from .sample_app import FUNCTIONS


def sql(dsn: str, statement: str, params: tuple[object, ...] = ()) -> list[tuple[Any, ...]]:
    with psycopg.connect(dsn, autocommit=True) as conn:
        cur = conn.execute(statement, params or None)  # type: ignore[arg-type]
        return cur.fetchall() if cur.description else []


@pytest.fixture
async def pool(empty_database_url: str) -> AsyncIterator[AsyncConnectionPool[AsyncConnection[Any]]]:
    """The backend's schema and a pool on it, without any worker loop running."""
    await create_schema(empty_database_url, "durable")
    opened: AsyncConnectionPool[AsyncConnection[Any]] = AsyncConnectionPool(
        empty_database_url, min_size=1, max_size=4, kwargs=connection_kwargs("durable"), open=False
    )
    await opened.open(wait=True)
    yield opened
    await opened.close()


async def start(pool: AsyncConnectionPool[AsyncConnection[Any]], instance_id: str, *names: str) -> None:
    # the client's input is JSON text of JSON text (protocol §1)
    await InstanceAdmin(pool).start("sequence", instance_id, json.dumps(json.dumps(list(names))), "")


def replay(claim: ClaimedEpisode, now: datetime) -> Any:
    return decide(claim.row, claim.history or [], claim.inbox, FUNCTIONS.orchestrators, now)


def expire_leases(dsn: str, table: str) -> None:
    """What a host stalled past its lease leaves: claims anyone may take."""
    sql(dsn, f"UPDATE durable.{table} SET lease_expires = now() - interval '1 second'"
             " WHERE lease_token IS NOT NULL")


async def test_a_host_whose_lease_was_taken_cannot_commit_its_episode(
    pool: AsyncConnectionPool[AsyncConnection[Any]], empty_database_url: str
) -> None:
    stalled = WorkerStore(pool, 5, owner="host-a", holder=uuid4())
    successor = WorkerStore(pool, 5, owner="host-b", holder=uuid4())
    await start(pool, "fenced", "a")
    claims, now = await stalled.claim_episodes(8, uuid4())
    assert [c.row.instance_id for c in claims] == ["fenced"] and now is not None
    late = replay(claims[0], now)  # decided, but the host stalls before committing
    assert [a.name for a in late.activities] == ["greet"]
    expire_leases(empty_database_url, "instances")
    taken, taken_at = await successor.claim_episodes(8, uuid4())
    assert [c.row.instance_id for c in taken] == ["fenced"] and taken_at is not None
    assert [m.id for m in taken[0].inbox] == [m.id for m in claims[0].inbox]  # nothing consumed

    with pytest.raises(LeaseLost):
        await stalled.commit_episode(claims[0].row, late)
    assert sql(empty_database_url, "SELECT count(*) FROM durable.history") == [(0,)]
    assert sql(empty_database_url, "SELECT count(*) FROM durable.activities") == [(0,)]
    assert sql(empty_database_url, "SELECT count(*) FROM durable.inbox") == [(1,)]

    await successor.commit_episode(taken[0].row, replay(taken[0], taken_at))
    assert sql(empty_database_url, "SELECT name FROM durable.activities") == [("greet",)]
    (status, history_len, token), = sql(
        empty_database_url, "SELECT status, history_len, lease_token FROM durable.instances")
    assert (status, token) == ("Running", None) and history_len > 0
    assert sql(empty_database_url, "SELECT count(*) FROM durable.history") == [(history_len,)]


async def test_a_host_whose_activity_lease_was_taken_cannot_record_its_completion(
    pool: AsyncConnectionPool[AsyncConnection[Any]], empty_database_url: str
) -> None:
    stalled = WorkerStore(pool, 5, owner="host-a", holder=uuid4())
    successor = WorkerStore(pool, 5, owner="host-b", holder=uuid4())
    await start(pool, "fenced-call", "a")
    claims, now = await stalled.claim_episodes(8, uuid4())
    assert now is not None
    await stalled.commit_episode(claims[0].row, replay(claims[0], now))
    (call,) = await stalled.claim_activities(4, uuid4())
    expire_leases(empty_database_url, "activities")
    (again,) = await successor.claim_activities(4, uuid4())
    assert again.id == call.id and again.token != call.token

    await stalled.complete_activities([(call, '{"EventType": 5, "late": true}')])
    assert sql(empty_database_url, "SELECT count(*) FROM durable.inbox") == [(0,)]
    await successor.complete_activities([(again, '{"EventType": 5}')])
    assert sql(empty_database_url, "SELECT event FROM durable.inbox") == [('{"EventType": 5}',)]
    assert sql(empty_database_url, "SELECT count(*) FROM durable.activities") == [(0,)]


async def test_a_restarted_host_takes_back_its_dead_runs_claims_at_once_and_others_wait(
    pool: AsyncConnectionPool[AsyncConnection[Any]], empty_database_url: str, start_backend: StartBackend
) -> None:
    # The dead run of host-1 (30 s leases) holds an episode claim and an activity call.
    dead = WorkerStore(pool, 30, owner="host-1", holder=uuid4())
    await start(pool, "orphaned-call", "a")
    claims, now = await dead.claim_episodes(8, uuid4())
    assert now is not None
    await dead.commit_episode(claims[0].row, replay(claims[0], now))
    assert len(await dead.claim_activities(4, uuid4())) == 1
    await start(pool, "orphaned-episode", "b")
    assert len((await dead.claim_episodes(8, uuid4()))[0]) == 1

    other = await start_backend(host_id="host-2", lease_seconds=30)
    await asyncio.sleep(0.5)  # it runs, but must not touch live leases of another host
    assert sql(empty_database_url, "SELECT instance_id, status FROM durable.instances ORDER BY 1") == [
        ("orphaned-call", "Running"), ("orphaned-episode", "Pending")]
    assert other.backend.stats.episodes == other.backend.stats.activities == 0

    started = time.monotonic()
    restarted = await start_backend(host_id="host-1", lease_seconds=30)
    for instance_id, name in (("orphaned-call", "a"), ("orphaned-episode", "b")):
        status = await wait_until_done(restarted.client, instance_id, timeout=10)
        assert status.output == [f"Hello {name}"]
    assert time.monotonic() - started < 10  # not the 30 s the dead run's leases had left
    assert sql(empty_database_url, "SELECT count(*) FROM durable.activities") == [(0,)]


async def test_the_heartbeat_renews_the_leases_of_work_in_progress(
    start_backend: StartBackend, empty_database_url: str
) -> None:
    sample_app.RELEASE_HUNG.clear()
    running = await start_backend(lease_seconds=5, heartbeat_seconds=0.2)
    try:
        await running.client.start_new("hung_with_retry", "beating", "hang")
        async with asyncio.timeout(10):  # the hung call is claimed and running
            while not sql(empty_database_url, "SELECT 1 FROM durable.activities WHERE lease_token IS NOT NULL"):
                await asyncio.sleep(0.02)
        # about to run out: the next beats (every 0.2 s) push it a whole lease ahead again
        (shortened,), = sql(empty_database_url, "UPDATE durable.activities SET lease_expires = now() + "
                                                "interval '1 second' RETURNING lease_expires")
        async with asyncio.timeout(3):
            while True:
                (left, expires), = sql(empty_database_url, "SELECT extract(epoch FROM lease_expires - now()),"
                                                           " lease_expires FROM durable.activities")
                if expires > shortened:
                    break
                await asyncio.sleep(0.05)
        assert 4 < float(left) <= 5
        # and one beat, driven directly, renews it as well
        sql(empty_database_url, "UPDATE durable.activities SET lease_expires = now()")
        await running.backend.heartbeat()
        (left,), = sql(empty_database_url, "SELECT extract(epoch FROM lease_expires - now()) FROM durable.activities")
        assert 4 < float(left) <= 5
    finally:
        sample_app.RELEASE_HUNG.set()
    assert (await wait_until_done(running.client, "beating")).output == "not reached"  # the late result
