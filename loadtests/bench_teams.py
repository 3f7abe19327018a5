"""100 teams of 8 tasks each, run concurrently to completion, twice: a warm-up round, then the
measured round. Fails (exit 1) on any team that does not complete, or when the devhost's RSS after
the last measured round is more than 10% above its RSS after the warm-up (issue 4's memory target).

    python -m loadtests.bench_teams [--teams 100] [--tasks 8] [--timeout 600] [--rounds 1]
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import httpx
import psycopg
from psycopg import sql

from loadtests.processes import Devhost, devhost
from shared.db.migrate import migrate_sync

ADMIN_URL = "postgresql://postgres@127.0.0.1:5432/postgres"


@dataclass
class Round:
    teams: int
    completed: int
    seconds: float
    rss_mib: float
    errors: list[str]

    @property
    def teams_per_second(self) -> float:
        return self.teams / self.seconds if self.seconds else 0.0


def _plan(tasks: int) -> list[dict[str, object]]:
    """A chain of two parallel lanes, so fan-out and dependencies are both exercised."""
    return [{"key": f"t{i}", "title": f"Step {i + 1} of the work", "description": "Do this part well.",
             "acceptance_criteria": [f"part {i + 1} is done"], "dependencies": [f"t{i - 2}"] if i >= 2 else []}
            for i in range(tasks)]


async def _one_team(http: httpx.AsyncClient, auth: dict[str, str], tasks: int, deadline: float,
                    errors: list[str]) -> bool:
    """Create, approve the plan, poll to the end. A failed request is recorded and, if it was a
    read, the poll goes on (a user's browser would retry), so one error does not hide the rest."""
    created = await http.post("/api/teams", headers=auth, json={
        "goal": f"Benchmark team {uuid.uuid4().hex[:6]}", "approve_plan": True, "auto_start": True, "workers": 3})
    created.raise_for_status()
    team_id = created.json()["id"]
    approved = False
    while time.monotonic() < deadline:
        try:
            response = await http.get(f"/api/teams/{team_id}", headers=auth)
            response.raise_for_status()
        except httpx.HTTPError as exc:
            errors.append(f"GET /api/teams/{team_id}: {type(exc).__name__}: {exc}")
            await asyncio.sleep(0.5)
            continue
        team = response.json()
        if team["status"] in ("completed", "failed", "cancelled"):
            return bool(team["status"] == "completed" and len(team["tasks"]) == tasks
                        and all(t["status"] == "completed" for t in team["tasks"]))
        if team["awaiting_plan_approval"] and not approved:
            response = await http.post(f"/api/teams/{team_id}/plan/approve", headers=auth, json={"tasks": _plan(tasks)})
            approved = response.status_code == 202
        await asyncio.sleep(0.5)
    return False


async def _round(host: Devhost, auth: dict[str, str], teams: int, tasks: int, seconds: float) -> Round:
    limits = httpx.Limits(max_connections=50)
    errors: list[str] = []
    async with httpx.AsyncClient(base_url=host.base_url, timeout=60, limits=limits) as http:
        started = time.monotonic()
        results = await asyncio.gather(*(_one_team(http, auth, tasks, started + seconds, errors)
                                         for _ in range(teams)))
        elapsed = time.monotonic() - started
    return Round(teams, sum(results), elapsed, host.rss_mib(), errors)


def _database() -> tuple[str, str]:
    name = f"gp_bench_teams_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(ADMIN_URL, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    url = f"postgresql://postgres@127.0.0.1:5432/{name}"
    migrate_sync(url)
    return name, url


def _drop(name: str) -> None:
    with psycopg.connect(ADMIN_URL, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


async def run(teams: int, tasks: int, seconds: float, rounds: int = 1) -> int:
    name, url = await asyncio.to_thread(_database)
    env = {"OFFLINE_LLM_LATENCY_MS": "0", "RATE_LIMIT_WRITES_PER_MINUTE": "100000"}
    try:
        with tempfile.TemporaryDirectory(prefix="gp-bench-teams-") as work:
            async with devhost(url, Path(work), env=env) as host:
                async with httpx.AsyncClient(base_url=host.base_url, timeout=30) as http:
                    registered = await http.post("/api/auth/register", json={
                        "company_name": "Bench", "email": f"bench-{uuid.uuid4().hex[:8]}@example.com",
                        "password": "bench-password-1", "full_name": "Bench"})
                    auth = {"Authorization": f"Bearer {registered.json()['token']}"}
                start_rss = host.rss_mib()
                warm = await _round(host, auth, teams, tasks, seconds)
                runs = [await _round(host, auth, teams, tasks, seconds) for _ in range(rounds)]
                log_tail = host.log_path.read_text(errors="replace").splitlines()[-20:]
    finally:
        await asyncio.to_thread(_drop, name)
    measured = runs[-1]
    growth = (measured.rss_mib - warm.rss_mib) / warm.rss_mib
    print(f"{teams} teams x {tasks} tasks, concurrently, offline LLM at 0 ms")
    for label, r in (("warm-up", warm), *((f"round {i + 1}", r) for i, r in enumerate(runs))):
        print(f"  {label:9} {r.completed}/{r.teams} completed in {r.seconds:.1f} s "
              f"({r.teams_per_second:.2f} teams/s, {r.teams * tasks / r.seconds:.1f} tasks/s), "
              f"RSS {r.rss_mib:.0f} MiB, {len(r.errors)} request errors")
        for error in r.errors[:5]:
            print(f"    {error}")
    print(f"  RSS at start {start_rss:.0f} MiB; after the last round {growth:+.1%} vs after the warm-up "
          "(target within 10%)")
    ok = all(r.completed == teams and not r.errors for r in (warm, *runs)) and growth <= 0.10
    if not ok:
        print("  devhost log, last lines:", *log_tail, sep="\n    ")
    print("  result:", "PASS" if ok else "FAIL")
    return 0 if ok else 1


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--teams", type=int, default=100)
    parser.add_argument("--tasks", type=int, default=8)
    parser.add_argument("--timeout", type=float, default=600, help="seconds per round")
    parser.add_argument("--rounds", type=int, default=1, help="measured rounds after the warm-up")
    args = parser.parse_args()
    return asyncio.run(run(args.teams, args.tasks, args.timeout, args.rounds))


if __name__ == "__main__":
    sys.exit(main())
