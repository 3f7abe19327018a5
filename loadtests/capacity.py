"""Per-unit costs for the capacity model (docs/capacity.md), measured on this machine.

    python -m loadtests.capacity [--teams 10] [--tasks 8] [--read-seconds 10] [--json]

A devhost on a scratch database with Redis, the offline LLM at 0 ms, and the Web PubSub emulator in
a process of its own (`--pubsub-url`-style: `WEBPUBSUB_CONNECTION_STRING` pointed at it), so the
devhost's CPU is the app's: HTTP functions, orchestrator replay, activities, the outbox publisher,
and devhost's own Durable backend (which Azure replaces by the Durable Task Scheduler). Then:
- **team runs**: `--teams` teams of `--tasks` tasks at once (the plan of loadtests.bench_teams);
  per team: CPU of the host and of PostgreSQL, activity calls, episodes, LLM calls, events,
  audit rows, database growth, and the Durable Task Scheduler actions the same history would bill;
- **reads**: the read mix of loadtests.scenarios with no think time; CPU per request;
- **writes**: `POST /api/teams`; CPU per request;
- **logins**: `POST /api/auth/login` (argon2id); CPU per login.
CPU is read from /proc (the devhost process, and the PostgreSQL backends serving the database), so
the figures are CPU time consumed, which other load on the machine inflates far less than latency.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import sys
import tempfile
import time
import uuid
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import httpx
import psycopg
import redis

from loadtests.bench_scale import _cpu_seconds
from loadtests.bench_teams import _database, _drop, _one_team
from loadtests.driver import drive, percentile
from loadtests.processes import REPO, devhost
from loadtests.scenarios import Reader

REDIS_URL = "redis://127.0.0.1:6379/12"  # a database of its own, flushed per run

#: History event types (DTFx) that the Durable Task Scheduler bills as actions (docs/capacity.md):
#: an orchestration start, each activity scheduled and its result, each sub-orchestration started
#: and its result, each timer fired, each external event.
EXECUTION_STARTED, TASK_SCHEDULED, TASK_COMPLETED, TASK_FAILED = 0, 4, 5, 6
SUB_CREATED, SUB_COMPLETED, SUB_FAILED, TIMER_FIRED, ORCHESTRATOR_STARTED, EVENT_RAISED = 7, 8, 9, 11, 12, 15
ACTION_EVENTS = {EXECUTION_STARTED, TASK_SCHEDULED, TASK_COMPLETED, TASK_FAILED, SUB_CREATED, SUB_COMPLETED,
                 SUB_FAILED, TIMER_FIRED, EVENT_RAISED}


@dataclass
class Costs:
    teams: int
    tasks_per_team: int
    team_seconds: float
    host_cpu_s_per_team: float
    postgres_cpu_s_per_team: float | None
    app_sql_cpu_s_per_team: float | None
    activities_per_team: float
    episodes_per_team: float
    llm_calls_per_team: float
    events_per_team: float
    event_bytes_per_team: float
    audit_rows_per_team: float
    db_kib_per_team: float
    dts_actions_per_team: float
    host_cpu_ms_per_activity: float
    postgres_cpu_ms_per_activity: float | None
    peak_db_connections: int
    read_requests: int
    read_rps: float
    read_p50_ms: float
    read_p95_ms: float
    host_cpu_ms_per_read: float
    postgres_cpu_ms_per_read: float | None
    write_requests: int
    host_cpu_ms_per_write: float
    postgres_cpu_ms_per_write: float | None
    host_cpu_ms_per_login: float
    cpus: int


class CpuMeter:
    """CPU seconds of the devhost process and of the PostgreSQL backends on one database."""

    def __init__(self, pid: int, dsn: str) -> None:
        self.pid = pid
        self.conn = psycopg.connect(dsn, autocommit=True)
        self._host = 0.0
        self._pg: dict[int, float] = {}

    def _postgres(self) -> dict[int, float]:
        mine = self.conn.info.backend_pid
        pids = [r[0] for r in self.conn.execute(
            "SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND pid <> %s", (mine,))]
        found = {pid: _cpu_seconds(pid) for pid in pids}
        return {pid: cpu for pid, cpu in found.items() if cpu is not None}

    def start(self) -> None:
        self._host = _cpu_seconds(self.pid) or 0.0
        self._pg = self._postgres()

    def stop(self, exclude: set[int] | None = None) -> tuple[float, float | None]:
        """(host, PostgreSQL) CPU seconds since start(); backends in `exclude` are not counted."""
        host = (_cpu_seconds(self.pid) or 0.0) - self._host
        after = {pid: cpu for pid, cpu in self._postgres().items() if pid not in (exclude or set())}
        pg = sum(cpu - self._pg.get(pid, 0.0) for pid, cpu in after.items()) if after else None
        return host, pg

    def durable_backends(self) -> set[int]:
        """Backends whose current or last statement is devhost's Durable backend's (its own pool,
        schema `durable`): in Azure the scheduler does that work, so it is counted apart."""
        rows = self.conn.execute(
            "SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND"
            " query ~ '(lease_token|lease_expires|\\minbox\\M|\\mhistory\\M|LISTEN|pg_notify|durable)'")
        return {int(r[0]) for r in rows}

    def connections(self) -> int:
        row = self.conn.execute("SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
                                ).fetchone()
        return int(row[0]) - 1 if row else 0

    def close(self) -> None:
        self.conn.close()


def _history_counts(conn: psycopg.Connection[Any]) -> dict[int, int]:
    counts: dict[int, int] = {}
    for (text,) in conn.execute("SELECT event FROM durable.history"):
        kind = int(json.loads(text)["EventType"])
        counts[kind] = counts.get(kind, 0) + 1
    return counts


def _scalar(conn: psycopg.Connection[Any], query: str) -> float:
    row = conn.execute(query).fetchone()  # type: ignore[call-overload]
    return float(row[0] or 0) if row else 0.0


async def _pubsub(work: Path) -> tuple[asyncio.subprocess.Process, str]:
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "devhost.pubsub", "--port", "0", "--data-dir", str(work / "pubsub"), cwd=REPO,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL)
    assert process.stdout is not None
    line = (await asyncio.wait_for(process.stdout.readline(), 30)).decode().strip()
    return process, line


async def measure(*, teams: int, tasks: int, read_seconds: float, say: Any = print) -> Costs:
    name, dsn = await asyncio.to_thread(_database)
    redis.Redis.from_url(REDIS_URL).flushdb()
    env = {"REDIS_URL": REDIS_URL, "OFFLINE_LLM_LATENCY_MS": "0", "RATE_LIMIT_WRITES_PER_MINUTE": "1000000",
           "RATE_LIMIT_LOGIN_PER_MINUTE": "100000", "LOG_LEVEL": "WARNING"}
    try:
        with tempfile.TemporaryDirectory(prefix="gp-capacity-") as work:
            emulator, connection_string = await _pubsub(Path(work))
            env["WEBPUBSUB_CONNECTION_STRING"] = connection_string
            try:
                async with devhost(dsn, Path(work) / "devhost", env=env) as host:
                    return await _phases(host.base_url, host.pid, dsn, teams, tasks, read_seconds, say)
            finally:
                emulator.terminate()
                await emulator.wait()
    finally:
        await asyncio.to_thread(_drop, name)


async def _phases(base_url: str, pid: int, dsn: str, teams: int, tasks: int, read_seconds: float,
                  say: Any) -> Costs:
    meter = CpuMeter(pid, dsn)
    try:
        async with httpx.AsyncClient(base_url=base_url, timeout=60,
                                     limits=httpx.Limits(max_connections=50)) as http:
            registered = await http.post("/api/auth/register", json={
                "company_name": "Capacity", "email": f"capacity-{uuid.uuid4().hex[:8]}@example.com",
                "password": "capacity-password-1", "full_name": "Capacity"})
            registered.raise_for_status()
            body = registered.json()
            auth = {"Authorization": f"Bearer {body['token']}"}
            # Warm-up: one team, so imports, pools and caches are not billed to the measured ones.
            await _one_team(http, auth, tasks, time.monotonic() + 300, [])
            db_before = _scalar(meter.conn, _APP_DATA_BYTES)
            counts_before = _history_counts(meter.conn)
            rows_before = [_scalar(meter.conn, q) for q in _ROW_QUERIES]
            peak = 0
            meter.start()
            started = time.monotonic()
            errors: list[str] = []
            run = asyncio.gather(*(_one_team(http, auth, tasks, started + 600, errors) for _ in range(teams)))
            durable: set[int] = set()
            while not run.done():
                peak = max(peak, meter.connections())
                durable |= meter.durable_backends()
                await asyncio.sleep(0.1)
            completed = sum(await run)
            team_seconds = time.monotonic() - started
            durable |= meter.durable_backends()
            _, app_sql_cpu = meter.stop(exclude=durable)
            host_cpu, pg_cpu = meter.stop()
            if completed != teams:
                raise RuntimeError(f"only {completed}/{teams} teams completed: {errors[:3]}")
            counts = _history_counts(meter.conn)
            delta = {k: counts.get(k, 0) - counts_before.get(k, 0) for k in counts}
            rows = [_scalar(meter.conn, q) - b for q, b in zip(_ROW_QUERIES, rows_before, strict=True)]
            db_growth = _scalar(meter.conn, _APP_DATA_BYTES) - db_before
            say(f"team runs: {teams} x {tasks} tasks in {team_seconds:.1f} s, host CPU {host_cpu:.1f} s")

            teams_list = (await http.get("/api/teams?limit=200", headers=auth)).json()
            reader = Reader(body["token"], body["user"]["company_id"], [t["id"] for t in teams_list])
            meter.start()
            samples = await drive(base_url, [reader.read_mix(random.Random(5))], seconds=read_seconds,
                                  connections=16, warmup=0)
            read_host, read_pg = meter.stop()
            say(f"reads: {samples.total} in {read_seconds:.0f} s, host CPU {read_host:.1f} s")

            writes = 200
            meter.start()
            semaphore = asyncio.Semaphore(8)

            async def write() -> None:
                async with semaphore:
                    response = await http.post("/api/teams", headers=auth, json={"goal": "capacity write"})
                    response.raise_for_status()

            await asyncio.gather(*(write() for _ in range(writes)))
            write_host, write_pg = meter.stop()

            # Logins: argon2id verification is CPU by design (one at a time, own client address each).
            logins = 8
            meter.start()
            for n in range(logins):
                response = await http.post("/api/auth/login", headers={"X-Forwarded-For": f"10.98.0.{n + 1}"},
                                           json={"email": body["user"]["email"], "password": "capacity-password-1"})
                response.raise_for_status()
            login_host, _ = meter.stop()
    finally:
        meter.close()
    activities = delta.get(TASK_SCHEDULED, 0)
    latencies = samples.merged()
    return Costs(
        teams=teams, tasks_per_team=tasks, team_seconds=team_seconds,
        host_cpu_s_per_team=host_cpu / teams, postgres_cpu_s_per_team=pg_cpu / teams if pg_cpu is not None else None,
        app_sql_cpu_s_per_team=app_sql_cpu / teams if app_sql_cpu is not None else None,
        activities_per_team=activities / teams, episodes_per_team=delta.get(ORCHESTRATOR_STARTED, 0) / teams,
        llm_calls_per_team=rows[0] / teams, events_per_team=rows[1] / teams, event_bytes_per_team=rows[2] / teams,
        audit_rows_per_team=rows[3] / teams, db_kib_per_team=db_growth / 1024 / teams,
        dts_actions_per_team=sum(v for k, v in delta.items() if k in ACTION_EVENTS) / teams,
        host_cpu_ms_per_activity=1000 * host_cpu / activities,
        postgres_cpu_ms_per_activity=1000 * pg_cpu / activities if pg_cpu is not None else None,
        peak_db_connections=peak,
        read_requests=samples.total, read_rps=samples.total / read_seconds,
        read_p50_ms=percentile(latencies, 50), read_p95_ms=percentile(latencies, 95),
        host_cpu_ms_per_read=1000 * read_host / samples.total,
        postgres_cpu_ms_per_read=1000 * read_pg / samples.total if read_pg is not None else None,
        write_requests=writes, host_cpu_ms_per_write=1000 * write_host / writes,
        postgres_cpu_ms_per_write=1000 * write_pg / writes if write_pg is not None else None,
        host_cpu_ms_per_login=1000 * login_host / logins,
        cpus=os.cpu_count() or 1,
    )


#: The app's tables with their indexes and TOAST (schema public): what Azure's PostgreSQL stores.
#: devhost's Durable history (schema durable) is left out: in Azure the scheduler keeps it.
_APP_DATA_BYTES = ("SELECT coalesce(sum(pg_total_relation_size(c.oid)), 0) FROM pg_class c"
                   " JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = 'public' AND c.relkind = 'r'")

_ROW_QUERIES = (
    "SELECT count(*) FROM cost_tracking",
    "SELECT count(*) FROM team_events",
    "SELECT coalesce(sum(octet_length(payload::text)), 0) + 120 * count(*) FROM team_events",
    "SELECT count(*) FROM audit_events",
)


def render(c: Costs) -> list[str]:
    def pg(value: float | None, digits: int = 2) -> str:
        return "n/a" if value is None else f"{value:.{digits}f}"

    return [
        f"per-unit costs on this machine ({c.cpus} CPUs); CPU = time consumed, host = the devhost process",
        f"  team run ({c.tasks_per_team} tasks, offline LLM, {c.teams} at once, {c.team_seconds:.1f} s):",
        f"    host CPU {c.host_cpu_s_per_team:.2f} s, PostgreSQL CPU {pg(c.postgres_cpu_s_per_team)} s per team, "
        f"of which the app's own SQL {pg(c.app_sql_cpu_s_per_team)} s (the rest: devhost's Durable tables)",
        f"    {c.activities_per_team:.0f} activity calls, {c.episodes_per_team:.0f} episodes, "
        f"{c.llm_calls_per_team:.0f} LLM calls, {c.dts_actions_per_team:.0f} scheduler actions per team",
        f"    {c.events_per_team:.0f} events ({c.event_bytes_per_team / 1024:.1f} KiB), "
        f"{c.audit_rows_per_team:.0f} audit rows, {c.db_kib_per_team:.0f} KiB of app data per team",
        f"    per activity call: host {c.host_cpu_ms_per_activity:.2f} ms, "
        f"PostgreSQL {pg(c.postgres_cpu_ms_per_activity)} ms CPU; peak {c.peak_db_connections} DB connections "
        "(app pool + devhost's Durable pool)",
        f"  read mix, 16 connections: {c.read_requests} requests ({c.read_rps:.0f}/s, p50 {c.read_p50_ms:.1f} ms, "
        f"p95 {c.read_p95_ms:.1f} ms): host {c.host_cpu_ms_per_read:.2f} ms, PostgreSQL "
        f"{pg(c.postgres_cpu_ms_per_read, 3)} ms CPU per request",
        f"  POST /api/teams x {c.write_requests}: host {c.host_cpu_ms_per_write:.2f} ms, PostgreSQL "
        f"{pg(c.postgres_cpu_ms_per_write)} ms CPU per request",
        f"  POST /api/auth/login: host {c.host_cpu_ms_per_login:.0f} ms CPU per login (argon2id)",
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m loadtests.capacity", description=__doc__.split("\n")[0])
    parser.add_argument("--teams", type=int, default=10)
    parser.add_argument("--tasks", type=int, default=8)
    parser.add_argument("--read-seconds", type=float, default=10.0)
    parser.add_argument("--json", action="store_true", help="also print the figures as JSON")
    args = parser.parse_args(argv)
    costs = asyncio.run(measure(teams=args.teams, tasks=args.tasks, read_seconds=args.read_seconds))
    print("\n".join(render(costs)))
    if args.json:
        print(json.dumps(asdict(costs), indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
