# mypy: disable-error-code="untyped-decorator"
"""Benchmark of devhost's durable backend: `python -m loadtests.bench_durable [--sync] [--steps N] [--crash]`.

No-op activities; 50 orchestrations at once, each calling activities in sequence. Prints
activity calls/s end to end, episodes/s, the per-step overhead (TaskScheduled -> the episode that
sees the completion, minus the activity's own time), loaded and unloaded, and what each step
costs the database: the backend's round trips and commits (its own counters) and the server's
transactions (pg_stat_database, the bench's own polls subtracted). Bounded to ~60 s.

`--crash`: a backend process with a host identity runs 5 orchestrations x 40 steps of 20 ms
activities, is SIGKILLed mid-run and restarted with the same identity (its claims are taken
back at once), then once more with a new identity (it waits for the dead host's leases):
prints the seconds from each restart until every orchestration completed.
"""

from __future__ import annotations

import argparse
import asyncio
import inspect
import json
import os
import signal
import statistics
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import azure.durable_functions as df
import psycopg
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from devhost.durable import DurableBackend, DurableFunctions
from devhost.durable.history import parse_timestamp

DEFAULT_DSN = "postgresql://postgres@127.0.0.1:5432/postgres"
ACTIVITY_SECONDS: list[float] = []


def build_functions(sync: bool) -> DurableFunctions:
    app = df.DFApp()

    if sync:

        @app.activity_trigger(input_name="n", activity="noop")
        def noop_sync(n: int) -> int:
            started = time.perf_counter()
            ACTIVITY_SECONDS.append(time.perf_counter() - started)
            return n

    else:

        @app.activity_trigger(input_name="n", activity="noop")
        async def noop_async(n: int) -> int:
            started = time.perf_counter()
            ACTIVITY_SECONDS.append(time.perf_counter() - started)
            return n

    @app.orchestration_trigger(context_name="context")
    def chain(context: df.DurableOrchestrationContext):  # type: ignore[no-untyped-def]
        steps = int(context.get_input())
        total = 0
        for n in range(steps):
            total += yield context.call_activity("noop", n)
        return total

    return DurableFunctions.from_functions(app.get_functions())


@contextmanager
def scratch_database(admin_dsn: str) -> Iterator[str]:
    """A throw-away database on the server of `admin_dsn`."""
    name = f"gp_durable_bench_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(admin_dsn, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        yield make_conninfo(admin_dsn, dbname=name)
    finally:
        with psycopg.connect(admin_dsn, autocommit=True) as conn:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


POLLS: list[int] = [0]  #: the bench's own polling transactions (subtracted from the server's)


async def run_wave(backend: DurableBackend, dsn: str, instances: int, steps: int, deadline: float) -> float:
    """Start `instances` chains at once; return seconds until the last one finished."""
    admin = backend.admin()
    started = time.perf_counter()
    ids = [
        await admin.start("chain", f"bench-{uuid.uuid4().hex[:10]}", json.dumps(json.dumps(steps)), "")
        for _ in range(instances)
    ]
    POLLS[0] += 2 * instances  # each start is a transaction (its BEGIN..COMMIT and the insert)
    return await wait_completed(dsn, ids, started, deadline)


async def wait_completed(dsn: str, ids: list[str], started: float, deadline: float) -> float:
    """Poll until every instance in `ids` completed; seconds since `started` (perf_counter)."""
    async with await psycopg.AsyncConnection.connect(dsn, autocommit=True) as conn:
        while True:
            cur = await conn.execute(
                "SELECT count(*) FROM durable.instances WHERE instance_id = ANY(%s) AND status = 'Completed'",
                (ids,),
            )
            POLLS[0] += 1
            row = await cur.fetchone()
            if row and row[0] == len(ids):
                return time.perf_counter() - started
            if time.perf_counter() > deadline:
                raise TimeoutError(f"only {row[0] if row else 0}/{len(ids)} orchestrations finished in time")
            await asyncio.sleep(0.02)


def server_transactions(dsn: str) -> int:
    """Transactions committed in this database so far (every backend's stats flushed first:
    idle backends flush theirs within a second)."""
    time.sleep(1.2)
    with psycopg.connect(dsn, autocommit=True) as conn:
        row = conn.execute("SELECT xact_commit FROM pg_stat_database WHERE datname = current_database()").fetchone()
    POLLS[0] += 1
    return int(row[0]) if row else 0


def counters(backend: DurableBackend) -> tuple[int, int, int | None, int | None]:
    """(episodes, activities, round trips, commits); the last two None on a backend that does not
    count them (before they existed)."""
    stats = backend.stats
    return (stats.episodes, stats.activities, getattr(stats, "round_trips", None),
            getattr(stats, "commits", None))


def per(part: int | None, whole: int) -> str:
    return "n/a" if part is None or whole == 0 else f"{part / whole:.2f}"


def step_latencies(dsn: str) -> list[float]:
    """Seconds from each TaskScheduled to the OrchestratorStarted of the episode delivering it."""
    latencies: list[float] = []
    with psycopg.connect(dsn) as conn:
        rows = conn.execute("SELECT instance_id, event FROM durable.history ORDER BY instance_id, seq")
        scheduled: dict[tuple[str, int], float] = {}
        episode_start = 0.0
        for instance_id, text in rows:
            item: dict[str, Any] = json.loads(text)
            moment = parse_timestamp(item["Timestamp"]).timestamp()
            kind = item["EventType"]
            if kind == 12:
                episode_start = moment
            elif kind == 4:
                scheduled[(instance_id, item["EventId"])] = moment
            elif kind == 5:
                latencies.append(episode_start - scheduled[(instance_id, item["TaskScheduledId"])])
    return latencies


async def bench(dsn: str, *, instances: int, steps: int, sync: bool, budget: float) -> None:
    functions = build_functions(sync)
    deadline = time.perf_counter() + budget
    backend = DurableBackend(dsn, functions, activity_concurrency=16)
    await backend.start()
    try:
        await run_wave(backend, dsn, 5, 3, deadline)  # warm up: connections, prepared statements
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute("TRUNCATE durable.history, durable.instances")
        ACTIVITY_SECONDS.clear()
        xacts_before, polls_before, before = server_transactions(dsn), POLLS[0], counters(backend)
        cpu = time.process_time()
        resumed = getattr(backend.stats, "episodes_resumed", None)
        elapsed = await run_wave(backend, dsn, instances, steps, deadline)
        cpu = time.process_time() - cpu
        after = counters(backend)
        resumed = None if resumed is None else backend.stats.episodes_resumed - resumed
        xacts = server_transactions(dsn) - xacts_before - (POLLS[0] - polls_before)
        loaded = step_latencies(dsn)
        own = statistics.median(ACTIVITY_SECONDS) if ACTIVITY_SECONDS else 0.0
        calls = instances * steps
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute("TRUNCATE durable.history, durable.instances")
        xacts_before, polls_before, before_alone = server_transactions(dsn), POLLS[0], counters(backend)
        cpu_alone = time.process_time()
        await run_wave(backend, dsn, 1, 100, deadline)
        cpu_alone = time.process_time() - cpu_alone
        after_alone = counters(backend)
        xacts_alone = server_transactions(dsn) - xacts_before - (POLLS[0] - polls_before)
        alone = step_latencies(dsn)
    finally:
        await backend.stop(grace=2)
    kind = "sync (thread executor)" if sync else "async (event loop)"
    rate = calls / elapsed
    episodes = after[0] - before[0]
    trips = None if after[2] is None or before[2] is None else after[2] - before[2]
    commits = None if after[3] is None or before[3] is None else after[3] - before[3]
    print(f"durable backend benchmark: {instances} concurrent orchestrations x {steps} no-op {kind} calls")
    print(f"  activity calls/s end to end : {rate:8.1f}   ({calls} calls in {elapsed:.2f} s; target >= 300)")
    print(f"  episodes/s                  : {episodes / elapsed:8.1f}   ({episodes} episodes, "
          f"{per(resumed, episodes)} of them continued in a live session)")
    print(f"  host CPU per activity step  : loaded {cpu / calls * 1000:6.2f} ms, "
          f"unloaded {cpu_alone / 100 * 1000:6.2f} ms (this process: backend, SDK replay, bench polls)")
    print(f"  per activity step, loaded   : {per(trips, calls)} round trips, {per(commits, calls)} commits "
          f"(backend's counters), {per(xacts, calls)} server transactions (pg_stat_database)")
    trips = None if after_alone[2] is None or before_alone[2] is None else after_alone[2] - before_alone[2]
    commits = None if after_alone[3] is None or before_alone[3] is None else after_alone[3] - before_alone[3]
    print(f"  per activity step, unloaded : {per(trips, 100)} round trips, {per(commits, 100)} commits, "
          f"{per(xacts_alone, 100)} server transactions (1 orchestration x 100 steps: nothing to batch)")
    print(f"  per-step time under load    : median {statistics.median(loaded) * 1000:6.2f} ms, "
          f"p95 {statistics.quantiles(loaded, n=20)[-1] * 1000:6.2f} ms "
          f"(Little's law: {instances} in flight / throughput = {instances / rate * 1000:.1f} ms)")
    print(f"  per-step overhead, unloaded : median {(statistics.median(alone) - own) * 1000:6.2f} ms "
          f"(1 orchestration x 100 steps; activity's own time {own * 1e6:.1f} us subtracted; target < 10 ms)")


CRASH_INSTANCES, CRASH_STEPS, CRASH_ACTIVITY_SECONDS = 5, 40, 0.02


def build_crash_functions() -> DurableFunctions:
    app = df.DFApp()

    @app.activity_trigger(input_name="n", activity="work")
    async def work(n: int) -> int:
        await asyncio.sleep(CRASH_ACTIVITY_SECONDS)  # an LLM call's wait, shortened
        return n

    @app.orchestration_trigger(context_name="context")
    def steps(context: df.DurableOrchestrationContext):  # type: ignore[no-untyped-def]
        total = 0
        for n in range(int(context.get_input())):
            total += yield context.call_activity("work", n)
        return total

    return DurableFunctions.from_functions(app.get_functions())


async def serve_crash_host(dsn: str, host_id: str, start: bool) -> None:
    """The crash bench's host process: optionally starts the orchestrations, prints READY."""
    known = inspect.signature(DurableBackend).parameters  # a backend from before host identities
    identity: dict[str, Any] = {"host_id": host_id} if "host_id" in known else {}
    backend = DurableBackend(dsn, build_crash_functions(), **identity)
    await backend.start()
    if start:
        admin = backend.admin()
        for n in range(CRASH_INSTANCES):
            await admin.start("steps", f"crash-{n}", json.dumps(json.dumps(CRASH_STEPS)), "")
    print("READY", flush=True)
    await asyncio.Event().wait()


async def spawn_crash_host(dsn: str, host_id: str, start: bool) -> asyncio.subprocess.Process:
    args = [sys.executable, "-m", "loadtests.bench_durable", "--serve-crash-host", host_id, "--dsn", dsn]
    process = await asyncio.create_subprocess_exec(
        *args, *(["--start"] if start else []), stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL)
    assert process.stdout is not None
    line = await asyncio.wait_for(process.stdout.readline(), 60)
    if not line.startswith(b"READY"):
        raise RuntimeError(f"the crash host printed {line!r}")
    return process


async def completed_steps(dsn: str) -> int:
    async with await psycopg.AsyncConnection.connect(dsn, autocommit=True) as conn:
        cur = await conn.execute("SELECT count(*) FROM durable.history WHERE event LIKE '{\"EventType\":5,%%'")
        row = await cur.fetchone()
    return int(row[0]) if row else 0


async def kill(process: asyncio.subprocess.Process) -> None:
    process.send_signal(signal.SIGKILL)
    await process.wait()


async def crash_once(dsn: str, same_identity: bool) -> tuple[float, float, float]:
    """Start, SIGKILL once a third of the steps are done, restart: seconds from the restart's
    spawn to all completed, to the restarted process being ready, and to its first step."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("DROP SCHEMA IF EXISTS durable CASCADE")
    first = await spawn_crash_host(dsn, "bench-host", start=True)
    try:
        deadline = time.perf_counter() + 60
        while await completed_steps(dsn) < CRASH_INSTANCES * CRASH_STEPS // 3:
            if time.perf_counter() > deadline:
                raise TimeoutError("the crash host made no progress")
            await asyncio.sleep(0.05)
    finally:
        await kill(first)
    done_before = await completed_steps(dsn)
    restarted_at = time.perf_counter()
    second = await spawn_crash_host(dsn, "bench-host" if same_identity else "another-host", start=False)
    ready = time.perf_counter() - restarted_at
    try:
        while await completed_steps(dsn) == done_before:
            if time.perf_counter() > restarted_at + 90:
                raise TimeoutError("the restarted host made no progress")
            await asyncio.sleep(0.02)
        resumed = time.perf_counter() - restarted_at
        ids = [f"crash-{n}" for n in range(CRASH_INSTANCES)]
        total = await wait_completed(dsn, ids, restarted_at, restarted_at + 90)
    finally:
        await kill(second)
    return total, ready, resumed


async def crash_bench(dsn: str) -> None:
    same, same_ready, same_resumed = await crash_once(dsn, same_identity=True)
    other, other_ready, other_resumed = await crash_once(dsn, same_identity=False)
    print(f"durable crash recovery: {CRASH_INSTANCES} orchestrations x {CRASH_STEPS} steps of "
          f"{CRASH_ACTIVITY_SECONDS * 1000:.0f} ms, SIGKILL after a third, restarted at once")
    for label, total, ready, resumed in (("same host identity", same, same_ready, same_resumed),
                                         ("new host identity ", other, other_ready, other_resumed)):
        print(f"  restart, {label}: all completed {total:6.2f} s after the restart (process ready "
              f"{ready:.2f} s, first step {resumed:.2f} s, remaining steps {total - resumed:.2f} s)")
    print("  (same identity: the dead run's claims are taken back at start; new identity: its leases run out;"
          " target: all completed <= 5 s after the restart)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--dsn", default=os.environ.get("DATABASE_URL", DEFAULT_DSN))
    parser.add_argument("--instances", type=int, default=50)
    parser.add_argument("--steps", type=int, default=40)
    parser.add_argument("--sync", action="store_true", help="sync no-op activities (thread executor)")
    parser.add_argument("--budget", type=float, default=50.0, help="seconds before giving up")
    parser.add_argument("--crash", action="store_true", help="SIGKILL and restart: recovery time")
    parser.add_argument("--serve-crash-host", metavar="HOST_ID", help=argparse.SUPPRESS)
    parser.add_argument("--start", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve_crash_host:
        asyncio.run(serve_crash_host(args.dsn, args.serve_crash_host, args.start))
        return
    admin = make_conninfo("", **{**conninfo_to_dict(args.dsn), "dbname": "postgres"})
    with scratch_database(admin) as dsn:
        if args.crash:
            asyncio.run(crash_bench(dsn))
            return
        run = bench(dsn, instances=args.instances, steps=args.steps, sync=args.sync, budget=args.budget)
        asyncio.run(run)


if __name__ == "__main__":
    main()
