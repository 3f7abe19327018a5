"""The load-test tools keep working: a small seed is consistent, and a bounded run is error-free."""

from __future__ import annotations

import asyncio
import random
from pathlib import Path

import psycopg
import pytest
from argon2 import PasswordHasher

from loadtests import scenarios as sc
from loadtests.accounts import PASSWORD, Population
from loadtests.driver import drive
from loadtests.explain import explain_all
from loadtests.processes import devhost
from loadtests.seed import seed
from loadtests.seed_data import SeedPlan

PLAN = SeedPlan(teams=8, tasks_per_team=5, audit=800, population=Population(2, 3))


@pytest.fixture
def seeded_url(empty_database_url: str) -> str:
    seed(empty_database_url, PLAN, progress=lambda _: None)
    return empty_database_url


def _one(conn: psycopg.Connection[tuple[object, ...]], query: str) -> object:
    row = conn.execute(query).fetchone()
    assert row is not None
    return row[0]


def test_seed_fills_every_table_with_consistent_company_scoped_rows(seeded_url: str) -> None:
    with psycopg.connect(seeded_url) as conn:
        assert _one(conn, "SELECT count(*) FROM teams") == 8
        assert _one(conn, "SELECT count(*) FROM tasks") == 40
        assert _one(conn, "SELECT count(*) FROM audit_events") == 800
        assert _one(conn, "SELECT count(*) FROM users") == 6
        assert _one(conn, "SELECT count(*) FROM tasks k JOIN teams t ON t.id = k.team_id"
                          " WHERE k.company_id <> t.company_id") == 0
        assert _one(conn, "SELECT count(*) FROM audit_events a JOIN teams t ON t.id = a.team_id"
                          " WHERE a.company_id <> t.company_id") == 0
        assert _one(conn, "SELECT count(*) FROM teams t WHERE t.event_seq <>"
                          " (SELECT max(seq) FROM team_events e WHERE e.team_id = t.id)") == 0
        assert _one(conn, "SELECT count(*) FROM tasks k JOIN teams t ON t.id = k.team_id"
                          " WHERE t.status = 'completed' AND k.status <> 'completed'") == 0
        indexes = _one(conn, "SELECT count(*) FROM pg_indexes WHERE tablename = 'audit_events'")
        assert indexes == 6  # the primary key and the five the migration declares, rebuilt after COPY
        stored = str(_one(conn, "SELECT password_hash FROM users LIMIT 1"))
    assert PasswordHasher().verify(stored, PASSWORD)


async def test_bounded_read_scenario_against_devhost_has_no_errors(seeded_url: str, tmp_path: Path) -> None:
    async with asyncio.timeout(25), devhost(seeded_url, tmp_path, env={"RATE_LIMIT_LOGIN_PER_MINUTE": "1000"}) as app:
        people = await sc.readers(app.base_url, PLAN.population)
        assert [len(p.team_ids) for p in people] == [4, 4]
        loops = [p.read_mix(random.Random(1)) for p in people]
        samples = await drive(app.base_url, loops, seconds=1.5, connections=4, warmup=0.2)
        run = await sc.locust(app.base_url, ["ApiUser"], users=4, spawn_rate=4, seconds=3, population=PLAN.population)
    assert samples.total > 20
    assert samples.errors == {}
    assert set(samples.latencies) == set(sc.READ_ENDPOINTS)
    assert run.exit_code == 0, run.output
    logins = run.samples["POST /api/auth/login"]
    assert len(logins) == 4 and all(ok for _, ok in logins)
    assert all(ok for values in run.samples.values() for _, ok in values)


async def test_scale_benchmark_spreads_one_wave_over_two_hosts_and_reports_efficiency(pg_server_url: str) -> None:
    from loadtests.bench_scale import Workload, render, run_scale

    # More orchestrations than one host's 8 activity slots, so the second host always gets calls.
    tiny = Workload("tiny", instances=24, steps=2, activity_ms=20)
    async with asyncio.timeout(120):
        one, two = await run_scale(pg_server_url, host_counts=(1, 2), only=[tiny], say=lambda _: None)

    assert (one.hosts, two.hosts) == (1, 2)
    assert one.calls == two.calls == 48 and one.per_host == [48]
    assert sum(two.per_host) == 48 and all(n > 0 for n in two.per_host), "both hosts claimed activity calls"
    assert one.efficiency == 1.0 and two.efficiency == two.rate / (2 * one.rate)
    assert one.host_cores > 0 and one.step_ms_loaded >= 0
    assert len(render([one, two])) == 4


async def test_explain_records_the_plans_of_the_api_reads_through_typed_rows(seeded_url: str) -> None:
    """`make bench`'s first phase: every read goes through the repositories' typed-row cursors,
    which the explaining connection must see too (it saw only `conn.execute`, and recorded nothing)."""
    plans = await explain_all(seeded_url)
    endpoints = {p.endpoint for p in plans}
    assert {"GET /api/teams/{id}/tasks", "GET /api/audit?limit=100", "GET /api/tasks/{id}/history"} <= endpoints
    assert len(endpoints) >= 15, sorted(endpoints)
    assert all(p.nodes and p.execution_ms >= 0 for p in plans)
