"""The agents' two performance figures: `python -m loadtests.bench_agents`.

1. Platform overhead of a team run: a devhost with the offline provider at 800 ms per call runs
   `--teams` teams one after the other; for each, the wall time (team `started_at` to `completed_at`)
   minus its critical path of LLM time, as a fraction of that critical path. The critical path is
   the plan call, the longest chain of dependent tasks (each weighted by its own recorded LLM calls,
   every one 800 ms) and the summary call; `TEAM_MAX_PARALLEL` is raised so no task waits for a slot.
   Target < 3 %.
2. First `llm.delta` latency: the Web PubSub emulator in a child process, the app's `DeltaPublisher`
   on its service client, the official-protocol WebSocket client joined to the team's group; the
   offline provider streams `--calls` answers and each call's first delta is timed from the moment
   the provider hands it over (`on_delta`) to the client's receipt (one process, one clock).
   Target p95 < 50 ms.

Prints one line per figure with PASS/FAIL; exit 1 when a target is missed. About 2 minutes.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import psycopg
import websockets
from psycopg import sql
from psycopg.conninfo import make_conninfo

from loadtests.processes import devhost, free_port, team_completed, wait_listening
from shared.db.migrate import migrate_sync

ADMIN_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
LATENCY_MS = 800
ACCESS_KEY = "bench-agents-access-key-0123456789abcdef"
HUB = "ghost_pirates"
SUBPROTOCOL = "json.webpubsub.azure.v1"
GOALS = ("Build a web scraper for product prices", "Write a blog post about sailing for beginners",
         "Research the EV battery market in Europe and compare suppliers")


def _percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(p / 100 * len(ordered)))] if ordered else float("nan")


def _database() -> tuple[str, str]:
    name = f"gp_bench_agents_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(ADMIN_URL, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    url = make_conninfo(ADMIN_URL, dbname=name)
    migrate_sync(url)
    return name, url


def _drop(name: str) -> None:
    with psycopg.connect(ADMIN_URL, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


def critical_path_calls(tasks: list[dict[str, Any]], calls: dict[str, int]) -> int:
    """LLM calls on the longest chain of dependent tasks (each task weighted by its own calls)."""
    by_id = {t["id"]: t for t in tasks}
    memo: dict[str, int] = {}

    def longest(task_id: str) -> int:
        if task_id not in memo:
            deps = by_id[task_id].get("dependencies") or []
            memo[task_id] = calls.get(task_id, 0) + max((longest(d) for d in deps if d in by_id), default=0)
        return memo[task_id]

    return max((longest(t) for t in by_id), default=0)


async def overhead(teams: int) -> tuple[list[float], list[str]]:
    """Per team: (wall − critical LLM time) / critical LLM time; and one description line per team."""
    name, url = await asyncio.to_thread(_database)
    env = {"OFFLINE_LLM_LATENCY_MS": str(LATENCY_MS), "TEAM_MAX_PARALLEL": "32", "LOG_LEVEL": "WARNING",
           "RATE_LIMIT_WRITES_PER_MINUTE": "100000"}
    fractions: list[float] = []
    lines: list[str] = []
    try:
        with tempfile.TemporaryDirectory(prefix="gp-bench-agents-") as work:
            async with devhost(url, Path(work), env=env) as host, httpx.AsyncClient(base_url=host.base_url,
                                                                                     timeout=30) as http:
                registered = await http.post("/api/auth/register", json={
                    "company_name": "Bench", "email": f"bench-{uuid.uuid4().hex[:8]}@example.com",
                    "password": "bench-password-1", "full_name": "Bench"})
                auth = {"Authorization": f"Bearer {registered.json()['token']}"}
                for index in range(teams + 1):  # the first is a warm-up (imports, first queries)
                    team = (await http.post("/api/teams", headers=auth, json={
                        "goal": GOALS[index % len(GOALS)], "workers": 3})).json()
                    (await http.post(f"/api/teams/{team['id']}/start", headers=auth)).raise_for_status()
                    final = await team_completed(http, auth, team["id"], 300)
                    if index == 0:
                        continue
                    fraction, line = _measure(url, final)
                    fractions.append(fraction)
                    lines.append(line)
    finally:
        await asyncio.to_thread(_drop, name)
    return fractions, lines


def _measure(database_url: str, team: dict[str, Any]) -> tuple[float, str]:
    with psycopg.connect(database_url) as conn:
        rows = conn.execute("SELECT task_id, purpose, count(*) FROM cost_tracking WHERE team_id = %s"
                            " GROUP BY 1, 2", (team["id"],)).fetchall()
    calls: dict[str, int] = {}
    for task_id, _, n in rows:
        if task_id is not None:
            calls[str(task_id)] = calls.get(str(task_id), 0) + n
    team_calls = sum(n for task_id, _, n in rows if task_id is None)  # the plan and the summary
    path_calls = team_calls + critical_path_calls(team["tasks"], calls)
    llm_s = path_calls * LATENCY_MS / 1000
    wall_s = (datetime.fromisoformat(team["completed_at"]) - datetime.fromisoformat(team["started_at"])).total_seconds()
    fraction = (wall_s - llm_s) / llm_s
    line = (f"{len(team['tasks'])} tasks, {sum(calls.values()) + team_calls} calls, {path_calls} on the critical "
            f"path: wall {wall_s:.2f} s, LLM {llm_s:.2f} s, overhead {fraction:+.2%}")
    return fraction, line


async def first_delta(calls: int) -> list[float]:
    """Milliseconds from the provider's first delta of a call to its receipt by a Web PubSub client."""
    from shared.agents.offline import OfflineProvider
    from shared.agents.prompt_templates import load_prompt
    from shared.agents.schemas import Summary
    from shared.realtime.deltas import DeltaPublisher
    from shared.realtime.service import ConnectionInfo, team_group

    port = free_port()
    emulator = subprocess.Popen(  # noqa: ASYNC220 - started before anything is measured
        [sys.executable, "-m", "devhost.pubsub", "--port", str(port), "--access-key", ACCESS_KEY, "--hub", HUB],
        stdout=subprocess.DEVNULL, env={**os.environ, "PYTHONUNBUFFERED": "1"})
    info = ConnectionInfo.parse(f"Endpoint=http://127.0.0.1:{port};AccessKey={ACCESS_KEY};Version=1.0;")
    client = info.client(HUB)
    team_id = uuid.uuid4()
    sent_at: dict[str, float] = {}
    received: dict[str, float] = {}
    try:
        await wait_listening(port, 20)
        token = await client.get_client_access_token(groups=[team_group(team_id)])
        async with websockets.connect(token["url"], subprotocols=[SUBPROTOCOL],  # type: ignore[list-item]
                                      open_timeout=20) as ws:
            reader = asyncio.create_task(_receive(ws, received))
            publisher = DeltaPublisher(client)
            provider = OfflineProvider(latency_ms=40)
            messages = load_prompt("summary.v2").render({"goal": "Measure the first delta", "tasks": []})
            for _ in range(calls + 5):  # the first few warm the connections up
                call = publisher.live(team_id, None, None).open_call()
                await provider.complete(messages, model="offline-manager", schema=Summary, max_tokens=200,
                                        on_delta=_timed(call, sent_at))
                await call.aclose()
            async with asyncio.timeout(10):
                while len(received) < len(sent_at):  # noqa: ASYNC110 - polled with a deadline
                    await asyncio.sleep(0.02)
            reader.cancel()
    finally:
        await client.close()
        emulator.terminate()
        emulator.wait(timeout=10)
    ordered = sorted(sent_at, key=sent_at.get)  # type: ignore[arg-type]
    return [(received[c] - sent_at[c]) * 1000 for c in ordered[5:] if c in received]


def _timed(call: Any, sent_at: dict[str, float]) -> Callable[[str], Awaitable[None]]:
    async def on_delta(text: str) -> None:
        sent_at.setdefault(call.call_id, time.perf_counter())
        await call(text)

    return on_delta


async def _receive(ws: Any, received: dict[str, float]) -> None:
    async for frame in ws:
        now = time.perf_counter()
        message = json.loads(frame)
        data = message.get("data") if message.get("type") == "message" else None
        if isinstance(data, dict) and data.get("type") == "llm.delta" and data.get("index") == 0:
            received.setdefault(str(data["call_id"]), now)


async def run(teams: int, calls: int) -> int:
    fractions, lines = await overhead(teams)
    median = _percentile(fractions, 50)
    worst = max(fractions)
    print(f"team run overhead, offline LLM at {LATENCY_MS} ms per call ({teams} teams, one at a time):")
    for line in lines:
        print(f"  {line}")
    overhead_ok = median < 0.03
    print(f"  platform overhead: median {median:.2%}, worst {worst:.2%} of the critical path of LLM time "
          f"(target < 3%): {'PASS' if overhead_ok else 'FAIL'}")
    latencies = await first_delta(calls)
    p50, p95, p99 = (_percentile(latencies, p) for p in (50, 95, 99))
    delta_ok = p95 < 50
    print(f"first llm.delta, provider to Web PubSub client ({len(latencies)} calls): p50 {p50:.1f} ms, "
          f"p95 {p95:.1f} ms, p99 {p99:.1f} ms (target p95 < 50 ms): {'PASS' if delta_ok else 'FAIL'}")
    return 0 if overhead_ok and delta_ok else 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--teams", type=int, default=3, help="measured teams (after one warm-up team)")
    parser.add_argument("--calls", type=int, default=200, help="streamed calls for the first-delta latency")
    args = parser.parse_args(argv)
    return asyncio.run(run(args.teams, args.calls))


if __name__ == "__main__":
    sys.exit(main())
