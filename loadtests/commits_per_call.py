"""Commits per LLM call of one team run: `pg_stat_database.xact_commit` of a fresh database over the
run of `--teams` teams (offline LLM at 0 ms, default plan), divided by the LLM calls they made (their
`cost_tracking` rows). Every statement outside a transaction is a commit there too (autocommit reads,
the Durable backend's claims and polls, the HTTP API's reads), so this is everything the database
commits for the run, polls of the team's status by this script included (one every `--poll` seconds).

    python -m loadtests.commits_per_call [--teams 1] [--poll 2]
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
import uuid
from pathlib import Path

import httpx
import psycopg

from loadtests.bench_teams import _database, _drop
from loadtests.processes import devhost


def _commits(url: str, name: str) -> int:
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("SELECT pg_stat_clear_snapshot()")
        row = conn.execute("SELECT xact_commit FROM pg_stat_database WHERE datname = %s", (name,)).fetchone()
    assert row is not None
    return int(row[0])


def _calls(url: str, team_ids: list[str]) -> int:
    with psycopg.connect(url) as conn:
        row = conn.execute("SELECT count(*) FROM cost_tracking WHERE team_id = ANY(%s::uuid[])"
                           " AND purpose <> 'tool'", (team_ids,)).fetchone()
    assert row is not None
    return int(row[0])


async def run(teams: int, poll: float) -> int:
    name, url = await asyncio.to_thread(_database)
    env = {"OFFLINE_LLM_LATENCY_MS": "0", "RATE_LIMIT_WRITES_PER_MINUTE": "100000"}
    try:
        with tempfile.TemporaryDirectory(prefix="gp-commits-") as work:
            async with devhost(url, Path(work), env=env) as host, \
                    httpx.AsyncClient(base_url=host.base_url, timeout=30) as http:
                registered = await http.post("/api/auth/register", json={
                    "company_name": "Bench", "email": f"bench-{uuid.uuid4().hex[:8]}@example.com",
                    "password": "bench-password-1", "full_name": "Bench"})
                auth = {"Authorization": f"Bearer {registered.json()['token']}"}
                await asyncio.sleep(3)  # the host's start-up work settles
                before = await asyncio.to_thread(_commits, url, name)
                started = time.monotonic()
                ids = []
                for i in range(teams):
                    created = await http.post("/api/teams", headers=auth, json={
                        "goal": f"Build a web scraper for product prices {i}", "auto_start": True})
                    created.raise_for_status()
                    ids.append(created.json()["id"])
                pending = set(ids)
                while pending and time.monotonic() - started < 600:
                    await asyncio.sleep(poll)
                    for team_id in list(pending):
                        team = (await http.get(f"/api/teams/{team_id}", headers=auth)).json()
                        if team["status"] in ("completed", "failed", "cancelled"):
                            pending.discard(team_id)
                elapsed = time.monotonic() - started
                after = await asyncio.to_thread(_commits, url, name)
            calls = await asyncio.to_thread(_calls, url, ids)
    finally:
        await asyncio.to_thread(_drop, name)
    commits = after - before
    print(f"{teams} team(s) in {elapsed:.1f} s: {calls} LLM calls, {commits} commits, "
          f"{commits / teams:.0f} per team, {commits / max(calls, 1):.1f} per LLM call"
          + (" (unfinished)" if pending else ""))
    return 1 if pending else 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--teams", type=int, default=1)
    parser.add_argument("--poll", type=float, default=2.0)
    args = parser.parse_args()
    return asyncio.run(run(args.teams, args.poll))


if __name__ == "__main__":
    raise SystemExit(main())
