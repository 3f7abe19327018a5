"""Commit-to-client latency of the real-time path: `python -m loadtests.bench_realtime`.

Starts the Web PubSub emulator in a child process, creates a fresh migrated database, one company and
`--teams` teams, and connects `--clients` WebSocket clients (`json.webpubsub.azure.v1`, each
pre-joined to one team's group by its token, as negotiate does). Then every team commits one agent
message every `--interval` seconds for `--rounds` rounds through the app's own service (a real
transaction writing the outbox row); the app's outbox publisher, kicked after each commit, sends it.
Latency is from the end of the commit to the client's receipt of the frame (one process, one clock).
Prints p50/p95/p99, lost messages, connections, and the emulator's memory per idle connection.
Every phase has a deadline; a run takes about 30 s.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import json
import os
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from uuid import UUID

import psycopg
import websockets
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from loadtests.processes import free_port, wait_listening
from shared.config import Settings
from shared.db.database import Database, make_pool
from shared.db.migrate import migrate
from shared.domain.models import Principal, RegisterRequest, TeamCreate
from shared.realtime import attach_realtime, team_group
from shared.services import Services

HUB = "ghost_pirates"
ACCESS_KEY = "bench-realtime-access-key-0123456789abcdef"
SUBPROTOCOL = "json.webpubsub.azure.v1"


@dataclass
class Tally:
    committed_ns: dict[str, int] = field(default_factory=dict)
    latencies_ms: list[float] = field(default_factory=list)
    received: int = 0
    connected: int = 0


def _rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


async def _client(url: str, tally: Tally, stop: asyncio.Event) -> None:
    async with websockets.connect(url, subprotocols=[SUBPROTOCOL], open_timeout=20, ping_interval=None,  # type: ignore[list-item]
                                  max_queue=None) as ws:
        tally.connected += 1
        reader = asyncio.ensure_future(_read(ws, tally))
        await stop.wait()
        reader.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await reader


async def _read(ws: websockets.ClientConnection, tally: Tally) -> None:
    async for frame in ws:
        now = time.monotonic_ns()
        message = json.loads(frame)
        if message.get("type") != "message":
            continue
        event = message["data"]
        committed = tally.committed_ns.get(event.get("data", {}).get("id", ""))
        if committed is not None:
            tally.latencies_ms.append((now - committed) / 1e6)
            tally.received += 1


def _percentile(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(p / 100 * len(ordered)))]


async def run(*, clients: int, teams: int, rounds: int, interval: float, admin_url: str) -> dict[str, Any]:
    port = free_port()
    emulator = subprocess.Popen(  # noqa: ASYNC220 - started before any load
        [sys.executable, "-m", "devhost.pubsub", "--port", str(port), "--access-key", ACCESS_KEY, "--hub", HUB],
        stdout=subprocess.DEVNULL, env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    name = f"gp_bench_rt_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    database_url = make_conninfo(admin_url, dbname=name)
    tally, stop = Tally(), asyncio.Event()
    tasks: list[asyncio.Task[None]] = []
    pool = make_pool(database_url, min_size=4, max_size=12)
    try:
        await migrate(database_url)
        await pool.open(wait=True)
        db = Database(pool)
        services = Services.build(db)
        settings = Settings(DATABASE_URL=database_url, WEBPUBSUB_HUB=HUB,
                            WEBPUBSUB_CONNECTION_STRING=f"Endpoint=http://127.0.0.1:{port};AccessKey={ACCESS_KEY};")
        realtime = attach_realtime(db, settings)
        assert realtime is not None
        user = await services.auth.register(RegisterRequest(
            company_name="Bench", email=f"{uuid.uuid4().hex[:8]}@example.com", password="correct horse battery",
            full_name="Bench"))
        principal = Principal(user_id=user.id, company_id=user.company_id, role=user.role)
        team_ids: list[UUID] = [
            (await services.teams.create(principal, TeamCreate(goal=f"bench {t}"))).id for t in range(teams)]
        await wait_listening(port, 15)
        await asyncio.sleep(0.3)
        baseline_kib = _rss_kib(emulator.pid)
        urls = [(await realtime.client.get_client_access_token(user_id=str(user.id), groups=[team_group(t)]))["url"]
                for t in team_ids]
        started = time.monotonic()
        for i in range(clients):
            tasks.append(asyncio.create_task(_client(urls[i % teams], tally, stop)))
            if i % 50 == 49:
                await asyncio.sleep(0)
        async with asyncio.timeout(30):
            while tally.connected < clients:  # noqa: ASYNC110 - counters, polled with a deadline
                await asyncio.sleep(0.05)
        connect_seconds = time.monotonic() - started
        await realtime.publisher.sweep()  # the team.created events, before measuring
        await asyncio.sleep(1.0)
        # The set-up's long-lived objects (1,000 sockets, their tasks) out of the collector's way, as a
        # long-running worker's would be: full collections over them are pauses of the benchmark itself.
        gc.collect()
        gc.freeze()
        idle_kib = _rss_kib(emulator.pid)

        begin = time.monotonic() + 0.2
        committed = [0]

        async def team_run(index: int, team_id: UUID) -> None:
            for round_index in range(rounds):
                slot = begin + round_index * interval + index * interval / teams
                await asyncio.sleep(max(0.0, slot - time.monotonic()))
                message = await services.messages.post(team_id=team_id, sender="bench", content=f"round {round_index}")
                tally.committed_ns[str(message.id)] = time.monotonic_ns()
                committed[0] += 1

        await asyncio.gather(*(team_run(i, t) for i, t in enumerate(team_ids)))
        expected = committed[0] * clients // teams
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(10):
                while tally.received < expected:  # noqa: ASYNC110 - counters, polled with a deadline
                    await asyncio.sleep(0.05)
        await realtime.aclose()
    finally:
        stop.set()
        if tasks:
            await asyncio.wait(tasks, timeout=10)
        await pool.close()
        emulator.terminate()
        try:
            emulator.wait(timeout=10)
        except subprocess.TimeoutExpired:
            emulator.kill()
        with psycopg.connect(admin_url, autocommit=True) as conn:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
    latencies = tally.latencies_ms
    return {
        "connections": tally.connected, "teams": teams, "connect_seconds": round(connect_seconds, 2),
        "events_committed": committed[0], "events_per_second": round(teams / interval, 1),
        "deliveries_expected": expected, "deliveries_received": tally.received, "lost": expected - tally.received,
        "p50_ms": round(_percentile(latencies, 50), 2), "p95_ms": round(_percentile(latencies, 95), 2),
        "p99_ms": round(_percentile(latencies, 99), 2), "max_ms": round(max(latencies, default=float("nan")), 2),
        "emulator_rss_per_idle_connection_kib": round((idle_kib - baseline_kib) / max(1, clients), 1),
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m loadtests.bench_realtime", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clients", type=int, default=1000)
    parser.add_argument("--teams", type=int, default=100)
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--interval", type=float, default=1.0, help="seconds between a team's commits")
    parser.add_argument("--admin-url", default=os.environ.get("BENCH_ADMIN_DATABASE_URL",
                                                                "postgresql://postgres@127.0.0.1:5432/postgres"))
    args = parser.parse_args(argv)
    conninfo_to_dict(args.admin_url)  # fail early on a malformed DSN
    result = asyncio.run(run(clients=args.clients, teams=args.teams, rounds=args.rounds, interval=args.interval,
                             admin_url=args.admin_url))
    for key, value in result.items():
        print(f"{key:>40}: {value}")
    print(f"{'p99 < 100 ms and nothing lost':>40}: {'yes' if result['p99_ms'] < 100 and result['lost'] == 0 else 'NO'}")


if __name__ == "__main__":
    main()
