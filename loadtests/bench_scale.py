# mypy: disable-error-code="untyped-decorator"
"""Scale-out benchmark: the same durable workload on 1, 2 and 3 hosts sharing one PostgreSQL.

    python -m loadtests.bench_scale [--hosts 1,2,3] [--quick] [--dsn postgresql://...]

A host is a process running devhost's `DurableBackend` (what `python -m devhost serve` runs for
Durable work), all on one scratch database. Two workloads, each a wave of orchestrations that call
activities in sequence:
- *no-op activities*: all the cost is the backend's own (replay, SQL, NOTIFY), i.e. CPU;
- *activities waiting 50 ms* (an LLM call, a tool call): the cost is waiting, bounded per host by
  its activity concurrency (8, as host.json's maxConcurrentActivityFunctions).
For each: activity calls/s end to end, the median per-step time under load and unloaded (one
orchestration alone: TaskScheduled to the episode that sees its completion, minus the activity's
own time), scaling efficiency = calls/s of N hosts / (N x calls/s of one host), and the cores
used: CPU seconds of the host processes and of the PostgreSQL backends serving the database,
divided by the wall time, next to the whole machine's busy cores (other load included).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import statistics
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import psycopg
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict, make_conninfo

ADMIN_DSN = "postgresql://postgres@127.0.0.1:5432/postgres"
SCHEMA = "durable"
CONCURRENCY = 8  # activities per host, as host.json's maxConcurrentActivityFunctions
_TICKS = os.sysconf("SC_CLK_TCK")


@dataclass(frozen=True)
class Workload:
    name: str
    instances: int
    steps: int
    activity_ms: int


@dataclass
class Result:
    workload: Workload
    hosts: int
    calls: int
    seconds: float
    step_ms_loaded: float
    overhead_ms_alone: float
    host_cores: float
    postgres_cores: float | None
    machine_cores: float
    efficiency: float | None = None
    per_host: list[int] = field(default_factory=list)

    @property
    def rate(self) -> float:
        return self.calls / self.seconds


def workloads(quick: bool) -> list[Workload]:
    return [
        Workload("no-op activities (CPU bound)", 50, 12 if quick else 40, 0),
        Workload("activities waiting 50 ms (I/O bound)", 48, 6 if quick else 12, 50),
    ]


# --- the host process -------------------------------------------------------------------------


def build_functions() -> Any:
    import azure.durable_functions as df

    from devhost.durable import DurableFunctions

    app = df.DFApp()

    @app.activity_trigger(input_name="job", activity="work")
    async def work(job: dict[str, int]) -> int:
        if job["ms"]:
            await asyncio.sleep(job["ms"] / 1000)
        return job["n"]

    @app.orchestration_trigger(context_name="context")
    def chain(context: df.DurableOrchestrationContext):  # type: ignore[no-untyped-def]
        job = context.get_input()  # the SDK decodes the JSON text the host stored
        total = 0
        for n in range(job["steps"]):
            total += yield context.call_activity("work", {"n": n, "ms": job["ms"]})
        return total

    return DurableFunctions.from_functions(app.get_functions())


async def serve_host(dsn: str) -> None:
    """One host: a DurableBackend, driven by lines on stdin (`start COUNT STEPS MS PREFIX`, `stop`)."""
    import logging

    from devhost.durable import DurableBackend

    logging.basicConfig(level=logging.ERROR)  # not azure.functions' note on auth levels, once per host
    backend = DurableBackend(dsn, build_functions(), schema=SCHEMA, activity_concurrency=CONCURRENCY)
    await backend.start()
    print("ready", flush=True)
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    try:
        while line := (await reader.readline()).decode().split():
            if line[0] == "start":
                count, steps, ms, prefix = int(line[1]), int(line[2]), int(line[3]), line[4]
                admin = backend.admin()
                raw = json.dumps(json.dumps({"steps": steps, "ms": ms}))
                for i in range(count):
                    await admin.start("chain", f"{prefix}-{i}", raw, "")
                print("started", flush=True)
            elif line[0] == "stats":
                print(f"activities {backend.stats.activities}", flush=True)
            elif line[0] == "stop":
                break
    finally:
        await backend.stop(grace=2)


# --- measuring ------------------------------------------------------------------------------


def _cpu_seconds(pid: int) -> float | None:
    try:
        with open(f"/proc/{pid}/stat") as handle:
            fields = handle.read().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / _TICKS


def _machine_busy() -> tuple[float, float]:
    """(busy, total) CPU seconds of the whole machine since boot, from /proc/stat."""
    with open("/proc/stat") as handle:
        values = [int(v) for v in handle.readline().split()[1:]]
    idle = values[3] + (values[4] if len(values) > 4 else 0)
    return (sum(values) - idle) / _TICKS, sum(values) / _TICKS


def _postgres_cpu(conn: psycopg.Connection[Any]) -> dict[int, float]:
    pids = [r[0] for r in conn.execute("SELECT pid FROM pg_stat_activity WHERE datname = current_database()")]
    found = {pid: _cpu_seconds(pid) for pid in pids}
    return {pid: cpu for pid, cpu in found.items() if cpu is not None}


@dataclass
class Host:
    process: asyncio.subprocess.Process

    async def send(self, line: str, expect: str | None = None, seconds: float = 120) -> str:
        assert self.process.stdin is not None and self.process.stdout is not None
        self.process.stdin.write((line + "\n").encode())
        await self.process.stdin.drain()
        if expect is None:
            return ""
        while True:
            answer = (await asyncio.wait_for(self.process.stdout.readline(), seconds)).decode().strip()
            if not answer:
                raise RuntimeError(f"host {self.process.pid} exited while waiting for {expect!r}")
            if answer.startswith(expect):
                return answer


async def start_hosts(dsn: str, count: int) -> list[Host]:
    hosts = []
    for _ in range(count):
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "loadtests.bench_scale", "--serve", dsn,
            stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE)
        hosts.append(Host(process))
    for host in hosts:
        assert host.process.stdout is not None
        line = (await asyncio.wait_for(host.process.stdout.readline(), 60)).decode().strip()
        if line != "ready":
            raise RuntimeError(f"a host did not start (said {line!r})")
    return hosts


async def stop_hosts(hosts: list[Host]) -> None:
    for host in hosts:
        if host.process.returncode is None:
            await host.send("stop")
    for host in hosts:
        try:
            await asyncio.wait_for(host.process.wait(), 20)
        except TimeoutError:
            host.process.kill()
            await host.process.wait()


def _reset(conn: psycopg.Connection[Any]) -> None:
    conn.execute(sql.SQL("TRUNCATE {}.history, {}.instances, {}.inbox, {}.activities").format(
        *(sql.Identifier(SCHEMA),) * 4))


def _step_latencies_ms(conn: psycopg.Connection[Any], activity_ms: int) -> list[float]:
    """Per activity call: TaskScheduled -> OrchestratorStarted of the episode that delivered its
    TaskCompleted, minus the activity's own time."""
    rows = conn.execute(sql.SQL("SELECT instance_id, event FROM {}.history ORDER BY instance_id, seq").format(
        sql.Identifier(SCHEMA)))
    scheduled: dict[tuple[str, int], float] = {}
    episode = 0.0
    found: list[float] = []
    for instance_id, text in rows:
        item = json.loads(text)
        moment = datetime.fromisoformat(item["Timestamp"].replace("Z", "+00:00")).timestamp()
        if item["EventType"] == 12:
            episode = moment
        elif item["EventType"] == 4:
            scheduled[(instance_id, item["EventId"])] = moment
        elif item["EventType"] == 5:
            found.append((episode - scheduled[(instance_id, item["TaskScheduledId"])]) * 1000 - activity_ms)
    return found


async def _wait_completed(conn: psycopg.Connection[Any], prefix: str, count: int, deadline: float) -> None:
    query = sql.SQL("SELECT count(*) FROM {}.instances WHERE status = 'Completed' AND starts_with(instance_id, %s)")
    while True:
        row = conn.execute(query.format(sql.Identifier(SCHEMA)), (prefix,)).fetchone()
        if row and row[0] == count:
            return
        if time.monotonic() > deadline:
            raise TimeoutError(f"{row[0] if row else 0}/{count} orchestrations finished in time")
        await asyncio.sleep(0.02)


async def wave(dsn: str, hosts: list[Host], workload: Workload) -> Result:
    with psycopg.connect(dsn, autocommit=True) as conn:
        # Warm-up: connections, prepared statements, the replay caches of every host.
        _reset(conn)
        await hosts[0].send(f"start {2 * len(hosts)} 3 0 warm", "started")
        await _wait_completed(conn, "warm", 2 * len(hosts), time.monotonic() + 60)
        _reset(conn)
        before_hosts = [_cpu_seconds(h.process.pid) or 0.0 for h in hosts]
        before_pg = _postgres_cpu(conn)
        before_activities = [int((await h.send("stats", "activities")).split()[1]) for h in hosts]
        busy_before, _ = _machine_busy()
        started = time.monotonic()
        await hosts[0].send(f"start {workload.instances} {workload.steps} {workload.activity_ms} wave", "started")
        await _wait_completed(conn, "wave", workload.instances, started + 300)
        seconds = time.monotonic() - started
        busy_after, _ = _machine_busy()
        after_pg = _postgres_cpu(conn)
        host_cpu = sum((_cpu_seconds(h.process.pid) or 0.0) - b for h, b in zip(hosts, before_hosts, strict=True))
        pg_cpu = sum(cpu - before_pg.get(pid, 0.0) for pid, cpu in after_pg.items()) if after_pg else None
        per_host = [int((await h.send("stats", "activities")).split()[1]) - b
                    for h, b in zip(hosts, before_activities, strict=True)]
        loaded = _step_latencies_ms(conn, workload.activity_ms)
        # Unloaded: one orchestration alone, so the figure is the backend's latency, not queueing.
        _reset(conn)
        await hosts[0].send(f"start 1 {min(50, workload.steps * 4)} {workload.activity_ms} alone", "started")
        await _wait_completed(conn, "alone", 1, time.monotonic() + 120)
        alone = _step_latencies_ms(conn, workload.activity_ms)
    return Result(workload, len(hosts), workload.instances * workload.steps, seconds,
                  statistics.median(loaded), statistics.median(alone), host_cpu / seconds,
                  pg_cpu / seconds if pg_cpu is not None else None, (busy_after - busy_before) / seconds,
                  per_host=per_host)


@contextmanager
def scratch_database(admin_dsn: str) -> Iterator[str]:
    name = f"gp_scale_bench_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(admin_dsn, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        yield make_conninfo(admin_dsn, dbname=name)
    finally:
        with psycopg.connect(admin_dsn, autocommit=True) as conn:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


async def run_scale(admin_dsn: str = ADMIN_DSN, *, host_counts: tuple[int, ...] = (1, 2, 3),
                    quick: bool = False, say: Any = print, only: list[Workload] | None = None) -> list[Result]:
    """Every workload (`only`, else the standard two) on every host count; efficiency relative to
    the one-host run."""
    from devhost.durable.store import create_schema

    results: list[Result] = []
    with scratch_database(admin_dsn) as dsn:
        await create_schema(dsn, SCHEMA)
        for count in host_counts:
            hosts = await start_hosts(dsn, count)
            try:
                for workload in only or workloads(quick):
                    result = await wave(dsn, hosts, workload)
                    results.append(result)
                    say(f"  {workload.name}, {count} host(s): {result.rate:.0f} calls/s, "
                        f"cores {result.host_cores + (result.postgres_cores or 0):.2f}")
            finally:
                await stop_hosts(hosts)
    for result in results:
        one = next((r for r in results if r.hosts == 1 and r.workload == result.workload), None)
        if one is not None:
            result.efficiency = result.rate / (result.hosts * one.rate)
    return results


def render(results: list[Result]) -> list[str]:
    cpus = os.cpu_count() or 1
    cpu_name = platform.processor() or platform.machine()
    lines = [f"durable scale-out: DurableBackend hosts on one PostgreSQL, {cpus} CPUs ({cpu_name}), "
             f"activity concurrency {CONCURRENCY} per host",
             f"{'workload':38} {'hosts':>5} {'calls/s':>8} {'step ms':>8} {'alone ms':>8} {'effic.':>7} "
             f"{'cores: hosts + postgres = total':>32} {'machine':>8}  calls per host"]
    for r in results:
        pg = f"{r.postgres_cores:.2f}" if r.postgres_cores is not None else "n/a"
        total = r.host_cores + (r.postgres_cores or 0)
        eff = f"{r.efficiency:.2f}" if r.efficiency is not None else ""
        lines.append(f"{r.workload.name:38} {r.hosts:>5} {r.rate:>8.1f} {r.step_ms_loaded:>8.2f} "
                     f"{r.overhead_ms_alone:>8.2f} {eff:>7} {r.host_cores:>13.2f} + {pg:>7} = {total:>5.2f} "
                     f"{r.machine_cores:>8.2f}  {'/'.join(str(n) for n in r.per_host)}")
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m loadtests.bench_scale", description=__doc__.split("\n")[0])
    parser.add_argument("--dsn", default=os.environ.get("DATABASE_URL", ADMIN_DSN),
                        help="a server to create the scratch database on")
    parser.add_argument("--hosts", default="1,2,3", help="host counts to run (default 1,2,3)")
    parser.add_argument("--quick", action="store_true", help="shorter waves")
    parser.add_argument("--serve", metavar="DSN", help=argparse.SUPPRESS)  # a host process (internal)
    args = parser.parse_args(argv)
    if args.serve:
        asyncio.run(serve_host(args.serve))
        return 0
    admin = make_conninfo("", **{**conninfo_to_dict(args.dsn), "dbname": "postgres"})
    counts = tuple(int(n) for n in args.hosts.split(","))
    results = asyncio.run(run_scale(admin, host_counts=counts, quick=args.quick))
    print("\n".join(render(results)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
