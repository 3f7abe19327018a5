"""Three devhosts on one PostgreSQL, one Redis and one standalone Web PubSub emulator, behind no
balancer: caches and rate limits are shared, and when one host is SIGKILLed mid-run the others
finish every team, with each transition applied once and every event delivered."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import psycopg
import pytest
from azure.messaging.webpubsubclient.aio import WebPubSubClient
from azure.messaging.webpubsubclient.models import CallbackType, WebPubSubProtocolType

from shared.domain.states import TASK_TRANSITIONS, TEAM_TRANSITIONS
from tests.multihost.cluster import Cluster, orphaned_claims, start_cluster

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("multihost"), pytest.mark.redis]

LEASE_SECONDS = 3.0
LOGIN_LIMIT = 4
TERMINAL = {"completed", "failed", "cancelled"}
GOALS = ("Build a web scraper for product prices", "Write a guide to sourdough baking",
         "Plan a team offsite", "Design a logo for a coffee shop")


@pytest.fixture(scope="module")
async def cluster(pg_server_url: str, migrated_template: str, redis_url: str,
                  tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Cluster]:
    from tests.conftest import _create_database, _drop_database

    name = f"gp_multi_{uuid.uuid4().hex[:10]}"
    database_url = _create_database(pg_server_url, name, template=migrated_template)
    env = {"REDIS_URL": redis_url, "OFFLINE_LLM_LATENCY_MS": "150", "RATE_LIMIT_WRITES_PER_MINUTE": "5000",
           "RATE_LIMIT_LOGIN_PER_MINUTE": str(LOGIN_LIMIT), "LOG_LEVEL": "WARNING",
           # As behind Azure's front end: the address a client's X-Forwarded-For names is its own, so
           # each test client has rate-limit buckets of its own on the shared Redis (see `client`).
           "TRUSTED_PROXY_HOPS": "1"}
    started = await start_cluster(tmp_path_factory.mktemp("cluster"), database_url, ("A", "B", "C"),
                                  lease_seconds=LEASE_SECONDS, env=env)
    yield started
    await started.stop()
    _drop_database(pg_server_url, name)


def client(cluster: Cluster, host: str) -> httpx.AsyncClient:
    """A client of one host. Its own X-Forwarded-For address (trusted: TRUSTED_PROXY_HOPS=1) keeps its
    per-address rate-limit buckets apart from other runs on the same Redis."""
    address = f"10.{uuid.uuid4().int % 250}.{uuid.uuid4().int % 250}.{uuid.uuid4().int % 250}"
    return httpx.AsyncClient(base_url=cluster.url(host), timeout=30, headers={"X-Forwarded-For": address})


async def register(http: httpx.AsyncClient) -> tuple[dict[str, str], str]:
    email = f"{uuid.uuid4().hex[:10]}@example.com"
    response = await http.post("/api/auth/register", json={
        "company_name": "Many Hosts", "email": email, "password": "correct horse battery", "full_name": "Ada"})
    assert response.status_code == 201, response.text
    return {"Authorization": f"Bearer {response.json()['token']}"}, email


def test_every_host_points_at_the_shared_emulator_and_says_caches_are_shared(cluster: Cluster):
    for host in cluster.hosts.values():
        banner = "\n".join(host.banner)
        assert f"shared emulator at {cluster.emulator.url}" in banner
        assert "caches and rate limits shared by every host" in banner
        assert f"leases {LEASE_SECONDS:g} s" in banner


async def test_a_write_through_one_host_is_seen_at_once_by_a_cached_read_through_another(cluster: Cluster):
    async with client(cluster, "A") as a, client(cluster, "B") as b:
        auth, _ = await register(a)
        first = (await a.post("/api/teams", headers=auth, json={"goal": "one"})).json()
        assert [t["id"] for t in (await b.get("/api/teams", headers=auth)).json()] == [first["id"]]
        assert [t["id"] for t in (await b.get("/api/teams", headers=auth)).json()] == [first["id"]]  # cached now
        second = (await a.post("/api/teams", headers=auth, json={"goal": "two"})).json()
        listed = [t["id"] for t in (await b.get("/api/teams", headers=auth)).json()]
    assert listed == [second["id"], first["id"]]


async def test_login_rate_limit_counts_attempts_on_every_host_together(cluster: Cluster):
    clients = [client(cluster, name) for name in ("A", "B", "C")]
    try:
        _, email = await register(clients[0])
        codes = []
        for attempt in range(LOGIN_LIMIT + 1):
            response = await clients[attempt % 3].post("/api/auth/login",
                                                       json={"email": email, "password": "correct horse battery"})
            codes.append(response.status_code)
    finally:
        for http in clients:
            await http.aclose()
    assert codes == [200] * LOGIN_LIMIT + [429], "one host alone saw at most two of these attempts"


class Inbox:
    def __init__(self) -> None:
        self.events: list[dict[str, Any]] = []

    async def on_message(self, args: Any) -> None:
        if isinstance(args.data, dict) and "seq" in args.data:
            self.events.append(args.data)


def status_changes(database_url: str, team_id: str) -> list[tuple[str, str | None, str, str]]:
    with psycopg.connect(database_url) as conn:
        return [(r[0], r[1], r[2], r[3]) for r in conn.execute(
            "SELECT event_type, task_id::text, payload->>'from', payload->>'to' FROM audit_events"
            " WHERE team_id = %s AND event_type IN ('team.status_changed', 'task.status_changed')"
            " ORDER BY created_at, id", (team_id,))]


def assert_each_transition_applied_once(database_url: str, team_id: str) -> None:
    """Per team and per task the audited status changes form one chain of legal transitions from
    the initial status: a transition applied twice would repeat a `from` that is no longer current."""
    legal: dict[str, dict[Any, frozenset[Any]]] = {"team.status_changed": dict(TEAM_TRANSITIONS),
                                                  "task.status_changed": dict(TASK_TRANSITIONS)}
    current: dict[str | None, str] = {}
    rows = status_changes(database_url, team_id)
    for kind, task_id, source, target in rows:
        previous = current.get(task_id, "pending")
        assert source == previous, f"{kind} {task_id}: {source}->{target} while {previous}"
        assert target in legal[kind][source], f"{kind} {task_id}: {source}->{target} is not a transition"
        current[task_id] = target
    assert current[None] == "completed"
    with psycopg.connect(database_url) as conn:
        row = conn.execute("SELECT count(*) FROM team_events WHERE team_id = %s"
                           " AND type IN ('team.status_changed', 'task.status_changed')", (team_id,)).fetchone()
    assert row is not None and row[0] == len(rows), "one outbox event per audited transition"


async def wait_until(check, seconds: float, what: str) -> None:
    deadline = asyncio.get_running_loop().time() + seconds
    while not await check():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.2)


async def test_hosts_b_and_c_finish_every_team_started_through_a_after_a_is_killed(cluster: Cluster):
    db = cluster.database_url
    async with client(cluster, "A") as a, client(cluster, "B") as b:
        auth, _ = await register(a)
        teams = [str((await a.post("/api/teams", headers=auth, json={"goal": goal})).json()["id"]) for goal in GOALS]

        # A browser of this company, negotiated through host B, follows every team.
        access = (await b.post("/api/realtime/negotiate", headers=auth, json={})).json()
        inbox = Inbox()
        browser = WebPubSubClient(access["url"], protocol_type=WebPubSubProtocolType.JSON_RELIABLE,
                                  message_retry_total=0)
        await browser.subscribe(CallbackType.SERVER_MESSAGE, inbox.on_message)
        await browser.open()
        try:
            for team_id in teams:
                await browser.join_group(f"team_{team_id}")
            before = {t: len((await b.get(f"/api/teams/{t}/events", headers=auth)).json()) for t in teams}
            for team_id in teams:
                started = await a.post(f"/api/teams/{team_id}/start", headers=auth)
                assert started.status_code == 202, started.text

            async def mid_run() -> bool:
                details = [(await b.get(f"/api/teams/{t}", headers=auth)).json() for t in teams]
                done = sum(task["status"] == "completed" for d in details for task in d["tasks"])
                return done >= 2 and not any(d["status"] in TERMINAL for d in details)

            await wait_until(mid_run, 120, "two completed tasks with every team still running")
            # Kill A while it holds claims: pause it, and what nobody renews for half a lease is its.
            held: set[tuple[str, str]] = set()
            for _ in range(20):
                cluster.pause("A")
                held = await asyncio.to_thread(orphaned_claims, db, LEASE_SECONDS / 2)
                if held:
                    break
                cluster.resume("A")
                await asyncio.sleep(0.3)
            cluster.kill("A")
            assert held, "host A never held a claim while the teams ran"

            async def all_finished() -> bool:
                statuses = [(await b.get(f"/api/teams/{t}", headers=auth)).json()["status"] for t in teams]
                return all(s in TERMINAL for s in statuses)

            await wait_until(all_finished, 240, "hosts B and C to finish every team")
            stored = {t: (await b.get(f"/api/teams/{t}/events", headers=auth,
                                      params={"limit": 5000})).json() for t in teams}

            async def delivered() -> bool:
                return all({e["seq"] for e in inbox.events if e["team_id"] == t} >=
                           {e["seq"] for e in stored[t][before[t]:]} for t in teams)

            await wait_until(delivered, 30, "the client to receive every event")
            finals = [(await b.get(f"/api/teams/{t}", headers=auth)).json() for t in teams]
        finally:
            await browser.close()

    with psycopg.connect(db) as conn:
        leftover = conn.execute("SELECT count(*) FROM durable.activities").fetchone()
    for team_id, team in zip(teams, finals, strict=True):
        assert team["status"] == "completed", team["status"]
        assert all(task["status"] == "completed" for task in team["tasks"])
        events = stored[team_id]
        assert [e["seq"] for e in events] == list(range(1, len(events) + 1)), "the seq stream is gap-free"
        live = [e for e in inbox.events if e["team_id"] == team_id]
        seqs, after_join = sorted({e["seq"] for e in live}), [e["seq"] for e in events[before[team_id]:]]
        # Every event from the join on; earlier ones too when their publish came after the join
        # (the publisher coalesces a few ms after a commit).
        assert seqs[len(seqs) - len(after_join):] == after_join and seqs == list(range(seqs[0], seqs[-1] + 1))
        assert all(e == events[e["seq"] - 1] for e in live), "what the client got is what is stored"
        assert_each_transition_applied_once(db, team_id)
    assert leftover is not None and leftover[0] == 0, "the claims A held were all taken over and finished"
