# mypy: disable-error-code="untyped-decorator"
"""Benchmark of devhost's durable backend: `python -m loadtests.bench_durable [--sync] [--steps N]`.

No-op activities; 50 orchestrations at once, each calling activities in sequence. Prints
activity calls/s end to end and the per-step overhead (TaskScheduled -> the episode that sees
the completion, minus the activity's own time), loaded and unloaded. Bounded to ~60 s.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
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


async def run_wave(backend: DurableBackend, dsn: str, instances: int, steps: int, deadline: float) -> float:
    """Start `instances` chains at once; return seconds until the last one finished."""
    admin = backend.admin()
    started = time.perf_counter()
    ids = [
        await admin.start("chain", f"bench-{uuid.uuid4().hex[:10]}", json.dumps(json.dumps(steps)), "")
        for _ in range(instances)
    ]
    async with await psycopg.AsyncConnection.connect(dsn, autocommit=True) as conn:
        while True:
            cur = await conn.execute(
                "SELECT count(*) FROM durable.instances WHERE instance_id = ANY(%s) AND status = 'Completed'",
                (ids,),
            )
            row = await cur.fetchone()
            if row and row[0] == len(ids):
                return time.perf_counter() - started
            if time.perf_counter() > deadline:
                raise TimeoutError(f"only {row[0] if row else 0}/{len(ids)} orchestrations finished in time")
            await asyncio.sleep(0.02)


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
        elapsed = await run_wave(backend, dsn, instances, steps, deadline)
        loaded = step_latencies(dsn)
        own = statistics.median(ACTIVITY_SECONDS) if ACTIVITY_SECONDS else 0.0
        calls = instances * steps
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute("TRUNCATE durable.history, durable.instances")
        await run_wave(backend, dsn, 1, 100, deadline)
        alone = step_latencies(dsn)
    finally:
        await backend.stop(grace=2)
    kind = "sync (thread executor)" if sync else "async (event loop)"
    rate = calls / elapsed
    print(f"durable backend benchmark: {instances} concurrent orchestrations x {steps} no-op {kind} calls")
    print(f"  activity calls/s end to end : {rate:8.1f}   ({calls} calls in {elapsed:.2f} s; target >= 300)")
    print(f"  per-step time under load    : median {statistics.median(loaded) * 1000:6.2f} ms, "
          f"p95 {statistics.quantiles(loaded, n=20)[-1] * 1000:6.2f} ms "
          f"(Little's law: {instances} in flight / throughput = {instances / rate * 1000:.1f} ms)")
    print(f"  per-step overhead, unloaded : median {(statistics.median(alone) - own) * 1000:6.2f} ms "
          f"(1 orchestration x 100 steps; activity's own time {own * 1e6:.1f} us subtracted; target < 10 ms)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--dsn", default=os.environ.get("DATABASE_URL", DEFAULT_DSN))
    parser.add_argument("--instances", type=int, default=50)
    parser.add_argument("--steps", type=int, default=40)
    parser.add_argument("--sync", action="store_true", help="sync no-op activities (thread executor)")
    parser.add_argument("--budget", type=float, default=50.0, help="seconds before giving up")
    args = parser.parse_args()
    admin = make_conninfo("", **{**conninfo_to_dict(args.dsn), "dbname": "postgres"})
    with scratch_database(admin) as dsn:
        run = bench(dsn, instances=args.instances, steps=args.steps, sync=args.sync, budget=args.budget)
        asyncio.run(run)


if __name__ == "__main__":
    main()
