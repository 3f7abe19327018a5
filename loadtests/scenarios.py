"""Each benchmark scenario, bounded in time, returning per-endpoint figures.

Locust runs the user-shaped scenarios (think time, DB-heavy, mixed) as a child process and hands
back every sample; the lean driver runs the saturation ones against the app and the bare baseline.
"""

from __future__ import annotations

import json
import os
import random
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from loadtests.accounts import PASSWORD, Population
from loadtests.driver import Loop, Samples, Target, drive, percentile
from loadtests.processes import REPO, Devhost, run_command

READ_ENDPOINTS = ("GET /api/teams", "GET /api/teams/{id}", "GET /api/teams/{id}/tasks",
                  "GET /api/tasks?status=active", "GET /api/audit?limit=100")


@dataclass(frozen=True)
class EndpointStats:
    name: str
    count: int
    errors: int
    p50: float
    p95: float
    p99: float
    rps: float

    @property
    def error_rate(self) -> float:
        return self.errors / self.count if self.count else 0.0


def stats(name: str, values: Sequence[float], errors: int, seconds: float) -> EndpointStats:
    return EndpointStats(name, len(values), errors, percentile(values, 50), percentile(values, 95),
                         percentile(values, 99), len(values) / seconds if seconds else 0.0)


def from_samples(samples: Samples, *, mix_label: str | None = None) -> list[EndpointStats]:
    rows = [stats(label, values, samples.errors.get(label, 0), samples.seconds)
            for label, values in sorted(samples.latencies.items())]
    if mix_label:
        rows.append(stats(mix_label, samples.merged(), sum(samples.errors.values()), samples.seconds))
    return rows


@dataclass
class LocustRun:
    seconds: float
    samples: dict[str, list[tuple[float, bool]]]
    output: str
    exit_code: int
    failures: dict[str, int] = field(default_factory=dict)

    def endpoint(self, name: str) -> EndpointStats:
        values = self.samples.get(name, [])
        return stats(name, [ms for ms, _ in values], sum(1 for _, ok in values if not ok), self.seconds)

    def rows(self, *, mix: Sequence[str] = ()) -> list[EndpointStats]:
        rows = [self.endpoint(name) for name in sorted(self.samples)]
        if mix:
            values = [s for name in mix for s in self.samples.get(name, [])]
            rows.append(stats("read mix (all of the above but login)", [ms for ms, _ in values],
                              sum(1 for _, ok in values if not ok), self.seconds))
        return rows


async def locust(base_url: str, classes: Sequence[str], *, users: int, spawn_rate: float, seconds: float,
                 population: Population, env: dict[str, str] | None = None,
                 tags: Sequence[str] = ()) -> LocustRun:
    """Run locust headless for `seconds` (plus a bounded grace) and collect every sample."""
    with tempfile.TemporaryDirectory(prefix="gp-locust-") as tmp:
        results = Path(tmp) / "samples.json"
        argv = [sys.executable, "-m", "locust", "-f", str(REPO / "loadtests" / "locustfile.py"), "--headless",
                "-H", base_url, "-u", str(users), "-r", str(spawn_rate), "-t", f"{int(seconds)}s", "--only-summary",
                "--stop-timeout", "5", "--loglevel", "WARNING", *(["--tags", *tags] if tags else []), *classes]
        run_env = {**population.to_env(), "GP_LOAD_RESULTS": str(results), **(env or {})}
        code, output = await run_command(argv, seconds=seconds + 60, env=run_env)
        raw: list[tuple[str, float, bool, str]] = json.loads(results.read_text()) if results.exists() else []
    samples: dict[str, list[tuple[float, bool]]] = {}
    failures: dict[str, int] = {}
    for name, ms, ok, error in raw:
        samples.setdefault(name, []).append((ms, ok))
        if not ok:
            failures[f"{name}: {error}"] = failures.get(f"{name}: {error}", 0) + 1
    return LocustRun(seconds, samples, output, code, failures)


@dataclass(frozen=True)
class Reader:
    """A logged-in user of one company and that company's team ids: what a driver loop needs."""

    token: str
    company_id: str
    team_ids: list[str]

    def read_mix(self, rng: random.Random) -> Loop:
        teams = rng.sample(self.team_ids, min(len(self.team_ids), 6))
        targets = [Target("GET /api/teams", "/api/teams")] * 3
        targets += [Target("GET /api/teams/{id}", f"/api/teams/{t}") for t in teams[:3]]
        targets += [Target("GET /api/teams/{id}/tasks", f"/api/teams/{t}/tasks") for t in teams[3:5]]
        targets += [Target("GET /api/tasks?status=active", "/api/tasks?status=active&limit=50"),
                    Target("GET /api/audit?limit=100", "/api/audit?limit=100")]
        rng.shuffle(targets)
        return Loop(targets, {"Authorization": f"Bearer {self.token}"})

    def team_detail(self) -> Loop:
        targets = [Target("GET /api/teams/{id}", f"/api/teams/{t}") for t in self.team_ids[:20]]
        return Loop(targets, {"Authorization": f"Bearer {self.token}"})


async def readers(base_url: str, population: Population) -> list[Reader]:
    """One logged-in user per company (distinct client addresses, so no login rate limit trips)."""
    out = []
    async with httpx.AsyncClient(base_url=base_url, timeout=30) as client:
        for n, email in enumerate(population.emails()[:population.companies]):
            response = await client.post("/api/auth/login", json={"email": email, "password": PASSWORD},
                                         headers={"X-Forwarded-For": f"10.99.0.{n + 1}"})
            response.raise_for_status()
            body = response.json()
            headers = {"Authorization": f"Bearer {body['token']}"}
            teams = (await client.get("/api/teams?limit=200", headers=headers)).json()
            out.append(Reader(body["token"], body["user"]["company_id"], [t["id"] for t in teams]))
    return out


async def saturation(app: Devhost, people: list[Reader], *, seconds: float, connections: int
                     ) -> tuple[list[EndpointStats], list[EndpointStats]]:
    """No think time: the read mix over every company, then team detail alone."""
    rng = random.Random(7)
    mix = await drive(app.base_url, [r.read_mix(rng) for r in people], seconds=seconds, connections=connections)
    detail = await drive(app.base_url, [r.team_detail() for r in people], seconds=seconds,
                         connections=connections)
    return (from_samples(mix, mix_label="read mix (no think time)"),
            from_samples(detail))


async def bare_baseline(base_url: str, people: list[Reader], *, seconds: float, connections: int
                        ) -> dict[str, EndpointStats]:
    """The bare app: one SELECT 1 and the team-detail SELECT, saturated and one at a time."""
    select1 = [Loop([Target("bare SELECT 1", "/select1")])]
    team = [Loop([Target("bare team SELECT", f"/team/{t}?company={r.company_id}") for t in r.team_ids[:20]])
            for r in people]
    out: dict[str, EndpointStats] = {}
    for key, loops in (("select1", select1), ("team", team)):
        saturated = await drive(base_url, loops, seconds=seconds, connections=connections)
        out[key] = from_samples(saturated)[0]
        alone = await drive(base_url, loops, seconds=min(3.0, seconds), connections=1, warmup=0.3)
        out[f"{key}_alone"] = from_samples(alone)[0]
    return out


async def alone(app: Devhost, people: list[Reader], *, seconds: float) -> EndpointStats:
    """The read mix one request at a time: latency without queueing, to compare with the bare app."""
    samples = await drive(app.base_url, [people[0].read_mix(random.Random(3))], seconds=seconds, connections=1,
                          warmup=0.3)
    return from_samples(samples, mix_label="read mix, 1 connection")[-1]


def cache_delta(before: dict[str, Any], after: dict[str, Any]) -> tuple[int, int, float]:
    """Hits, misses and hit rate between two `/api/health` detail snapshots."""
    hits = after["cache"]["hits"] - before["cache"]["hits"]
    misses = after["cache"]["misses"] - before["cache"]["misses"]
    return hits, misses, hits / (hits + misses) if hits + misses else float("nan")


async def teams_finished_since(database_url: str, since: str) -> dict[str, int]:
    """Teams created after `since` by final status, and their completed tasks: orchestration output."""
    import psycopg

    async with await psycopg.AsyncConnection.connect(database_url) as conn:
        cur = await conn.execute(
            "SELECT t.status, count(DISTINCT t.id), count(k.id) FILTER (WHERE k.status = 'completed')"
            " FROM teams t LEFT JOIN tasks k ON k.team_id = t.id WHERE t.created_at > %s::timestamptz"
            " GROUP BY t.status", (since,))
        rows = await cur.fetchall()
    out = {str(status): int(teams) for status, teams, _ in rows}
    out["tasks_completed"] = sum(int(tasks) for _, _, tasks in rows)
    return out


def cpu_count() -> int:
    return os.cpu_count() or 1
