"""`make soak`: the mixed scenario for a long, bounded time; fails on leaks, errors or stuck teams.

    python -m loadtests.soak [--minutes 20] [--readers 30] [--runners 4]

Readers read while teams are created and run (offline LLM, 800 ms per call) on a devhost over a
seeded clone. The devhost's RSS is sampled every 10 s. Fails (exit 1) when RSS at the end is more
than 10% above RSS after the warm-up (the first fifth of the run, at least one minute), when any
request errors, or when any team created during the soak has not completed within a grace period
after the load stops.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import psycopg
import redis

from loadtests import scenarios as sc
from loadtests.bench import ADMIN_URL, REDIS_URL
from loadtests.processes import Devhost, devhost
from loadtests.seed_data import SeedPlan
from loadtests.seeded import clone, ensure_template

FINISH_GRACE_SECONDS = 240


async def _sample_rss(app: Devhost, samples: list[tuple[float, float]], stop: asyncio.Event) -> None:
    started = time.monotonic()
    while not stop.is_set():
        samples.append((time.monotonic() - started, app.rss_mib()))
        try:
            await asyncio.wait_for(stop.wait(), 10)
        except TimeoutError:
            continue


async def _unfinished(dsn: str, since: str) -> dict[str, int]:
    async with await psycopg.AsyncConnection.connect(dsn) as conn:
        cur = await conn.execute(
            "SELECT status, count(*) FROM teams WHERE created_at > %s::timestamptz GROUP BY status", (since,))
        return {str(s): int(n) for s, n in await cur.fetchall()}


async def soak(minutes: float, readers: int, runners: int, plan: SeedPlan) -> int:
    seconds = minutes * 60
    warmup = max(60.0, seconds / 5)
    template, _ = await asyncio.to_thread(ensure_template, ADMIN_URL, plan, print)
    failures: list[str] = []
    with clone(ADMIN_URL, template) as dsn, tempfile.TemporaryDirectory(prefix="gp-soak-") as work:
        redis.Redis.from_url(REDIS_URL).flushdb()
        env = {"REDIS_URL": REDIS_URL, "OFFLINE_LLM_LATENCY_MS": "800", "RATE_LIMIT_LOGIN_PER_MINUTE": "100000",
               "LOG_LEVEL": "WARNING"}
        async with devhost(dsn, Path(work) / "devhost", env=env) as app:
            since = datetime.now(UTC).isoformat()
            rss: list[tuple[float, float]] = []
            stop = asyncio.Event()
            sampler = asyncio.create_task(_sample_rss(app, rss, stop))
            print(f"soak: {minutes:g} min, {readers} readers + {runners} team runners on {app.base_url}", flush=True)
            run = await sc.locust(app.base_url, ["ApiUser", "TeamRunnerUser"], users=readers + runners,
                                  spawn_rate=10, seconds=seconds, population=plan.population,
                                  env={"GP_RUNNERS": str(runners), "GP_TEAM_TIMEOUT": str(FINISH_GRACE_SECONDS)})
            deadline = time.monotonic() + FINISH_GRACE_SECONDS
            statuses = await _unfinished(dsn, since)
            while set(statuses) - {"completed", "failed", "cancelled"} and time.monotonic() < deadline:
                await asyncio.sleep(2)
                statuses = await _unfinished(dsn, since)
            stop.set()
            await sampler
            log_tail = app.log_path.read_text(errors="replace").splitlines()[-40:]
    after_warmup = [mib for at, mib in rss if at >= warmup]
    base = after_warmup[0] if after_warmup else rss[0][1]
    end = rss[-1][1]
    growth = (end - base) / base
    errors = {name: sum(1 for _, ok in values if not ok) for name, values in run.samples.items()}
    errors = {name: n for name, n in errors.items() if n and not name.startswith("team run")}
    print(f"RSS after warm-up {base:.1f} MiB, at end {end:.1f} MiB ({growth * 100:+.1f}%); "
          f"samples: {', '.join(f'{mib:.0f}' for _, mib in rss[::6])}")
    print(f"requests: {sum(len(v) for v in run.samples.values())}, errors: {errors or 'none'}")
    print(f"teams created during the soak, by final status: {statuses}")
    if growth > 0.10:
        failures.append(f"RSS grew {growth * 100:.1f}% after warm-up (limit 10%)")
    if errors:
        failures.append(f"request errors: {errors}")
    if set(statuses) - {"completed"}:
        failures.append(f"teams not completed: { {k: v for k, v in statuses.items() if k != 'completed'} }")
    if not statuses.get("completed"):
        failures.append("no team completed during the soak")
    for failure in failures:
        print(f"FAIL: {failure}")
    if failures:
        print("failed requests:", *(f"  {n} x {what}" for what, n in run.failures.items()), sep="\n")
        print("devhost log (last lines):", *log_tail, sep="\n")
    print("soak passed" if not failures else "soak failed")
    return 1 if failures else 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m loadtests.soak", description=__doc__.split("\n")[0])
    parser.add_argument("--minutes", type=float, default=20.0)
    parser.add_argument("--readers", type=int, default=30)
    parser.add_argument("--runners", type=int, default=4)
    args = parser.parse_args(argv)
    import uvloop

    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        return runner.run(soak(args.minutes, args.readers, args.runners, SeedPlan()))


if __name__ == "__main__":
    sys.exit(main())
