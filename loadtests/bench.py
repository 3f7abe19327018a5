"""`make bench`: every performance figure of the product in one table, against bare baselines.

    python -m loadtests.bench [--quick] [--no-profile] [--no-write] [--only api,saturation,...]

Seeds (once, then clones) a database of 1,000 teams, 20,000 tasks and 1,000,000 audit events,
measures the bare baselines (a minimal ASGI app doing one SELECT; a minimal websocket
broadcaster), starts a devhost on the clone (Redis, offline LLM at 800 ms per call) and runs each
scenario for a bounded time, then the existing micro benchmarks (Durable backend, Web PubSub
emulator, HTTP host), the durable scale-out on 1, 2 and 3 hosts, the peer baseline (the same team
on Ghost Pirates and on LangGraph + PostgreSQL, `loadtests.bench_peer`), and the real-time and
dashboard benchmarks when present. Prints one table and
writes it to docs/PERFORMANCE.md with the machine. Loopback only; about 9 minutes, `--quick` about 3.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import sys
import tempfile
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import redis

from loadtests import scenarios as sc
from loadtests.accounts import Population
from loadtests.bench_peer import run_peer
from loadtests.bench_scale import render, run_scale
from loadtests.explain import explain_all
from loadtests.explain import render as render_plans
from loadtests.processes import REPO, Devhost, child, devhost, rss_mib, run_command
from loadtests.report import Row, endpoint_row, machine, stamp, table, write_document
from loadtests.seed_data import SeedPlan
from loadtests.seeded import clone, ensure_template
from loadtests.ws_bench import compare as ws_compare

ADMIN_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
REDIS_URL = "redis://127.0.0.1:6379/13"  # a database of its own, flushed per run
PHASES = ("explain", "api", "saturation", "dbheavy", "mixed", "profile", "websocket", "micro", "scale", "peer",
          "others")


@dataclass(frozen=True)
class Budget:
    api: float
    saturation: float
    dbheavy: float
    mixed: float
    profile: float
    ws_clients: int
    ws_groups: int
    durable_steps: int


FULL = Budget(api=60, saturation=10, dbheavy=30, mixed=90, profile=15, ws_clients=1000, ws_groups=100,
              durable_steps=40)
QUICK = Budget(api=20, saturation=4, dbheavy=10, mixed=40, profile=0, ws_clients=300, ws_groups=30, durable_steps=10)


@dataclass
class Bench:
    budget: Budget
    population: Population
    rows: list[Row] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    plans: list[str] = field(default_factory=list)
    extra: list[str] = field(default_factory=list)

    def say(self, text: str) -> None:
        print(text, flush=True)


def _met(value: float, limit: float) -> bool:
    return value < limit


async def run_app_phases(b: Bench, dsn: str, phases: set[str], work: Path) -> None:
    budget = b.budget
    bare: dict[str, sc.EndpointStats] = {}
    bare_rss = 0.0
    env = {"REDIS_URL": REDIS_URL, "OFFLINE_LLM_LATENCY_MS": "800", "RATE_LIMIT_LOGIN_PER_MINUTE": "100000",
           "LOG_LEVEL": "WARNING"}
    redis.Redis.from_url(REDIS_URL).flushdb()
    async with devhost(dsn, work / "devhost", env=env) as app:
        rss_start = app.rss_mib()
        people = await sc.readers(app.base_url, b.population)
        b.say(f"devhost up at {app.base_url}, RSS {rss_start:.0f} MiB; {len(people)} companies logged in")
        if "saturation" in phases:
            # The bare app first, while the devhost idles: both see the same machine.
            async with child("-m", "loadtests.baseline", "http", "--dsn", dsn) as base:
                bare = await sc.bare_baseline(f"http://127.0.0.1:{base.port}", people,
                                              seconds=budget.saturation, connections=32)
                bare_rss = rss_mib(base.pid)
            b.say(f"bare: SELECT 1 {bare['select1'].rps:.0f} req/s, team SELECT {bare['team'].rps:.0f} req/s")
        if "api" in phases:
            before = await app.health_details()
            locust_run = asyncio.create_task(sc.locust(app.base_url, ["ApiUser"], users=100, spawn_rate=10,
                                                       seconds=budget.api, population=b.population))
            await asyncio.sleep(13)  # the ramp (100 users at 10/s, each logging in once) and a little more
            ramped = await app.health_details()
            run = await locust_run
            after = await app.health_details()
            hits, misses, rate = sc.cache_delta(before, after)
            steady = sc.cache_delta(ramped, after)
            targets = {"GET /api/teams": 20, "GET /api/teams/{id}": 30, "GET /api/tasks?status=active": 30,
                       "GET /api/audit?limit=100": 50}
            for s in run.rows(mix=sc.READ_ENDPOINTS):
                limit = targets.get(s.name)
                if s.name.startswith("read mix"):
                    b.rows.append(endpoint_row("api, 100 users, 1-2 s think", s, bare=bare.get("select1_alone"),
                                               target="p95 < 50, p99 < 150, 0 errors",
                                               met=s.p95 < 50 and s.p99 < 150 and s.errors == 0))
                else:
                    b.rows.append(endpoint_row("api, 100 users, 1-2 s think", s, bare=bare.get("select1_alone"),
                                               target=f"p95 < {limit}" if limit else "",
                                               met=_met(s.p95, limit) if limit else None))
            b.rows.append(Row("api, 100 users, 1-2 s think", "cache hit rate (team list + detail)",
                              value=f"{rate * 100:.1f}% ({hits} hits, {misses} misses)", target="> 90%",
                              met=rate > 0.9))
            b.rows.append(Row("api, 100 users, 1-2 s think", "cache hit rate after the ramp (no more logins)",
                              value=f"{steady[2] * 100:.1f}% ({steady[0]} hits, {steady[1]} misses)",
                              target="> 90%", met=steady[2] > 0.9))
            b.say(f"api scenario done: cache hit rate {rate * 100:.1f}%, after the ramp {steady[2] * 100:.1f}%")
        if "saturation" in phases:
            await _saturation(b, app, people, bare)
        if "dbheavy" in phases:
            run = await sc.locust(app.base_url, ["DbHeavyUser"], users=30, spawn_rate=15, seconds=budget.dbheavy,
                                  population=b.population)
            for s in run.rows():
                b.rows.append(endpoint_row("db-heavy, 30 users, 0.5-1 s think", s, bare=bare.get("team_alone")))
            b.say("db-heavy scenario done")
        if "mixed" in phases:
            await _mixed(b, app, dsn)
        if "profile" in phases and budget.profile:
            await _profile(b, app, people)
        rss_end = app.rss_mib()
        b.rows.append(Row("devhost process", "RSS at start / end (MiB)", value=f"{rss_start:.0f} / {rss_end:.0f}",
                          bare=f"{bare_rss:.0f} MiB (bare app)" if bare else "",
                          ratio=rss_end / bare_rss if bare else None))


async def _saturation(b: Bench, app: Devhost, people: list[sc.Reader],
                      bare: dict[str, sc.EndpointStats]) -> None:
    mix, detail = await sc.saturation(app, people, seconds=b.budget.saturation, connections=32)
    scenario = "no think time, 32 connections"
    for s in mix:
        is_mix = s.name.startswith("read mix")
        b.rows.append(endpoint_row(scenario, s, bare=bare["select1"], ratio_of="rps",
                                   target=">= 40% of bare" if is_mix else "",
                                   met=s.rps >= 0.4 * bare["select1"].rps if is_mix else None))
    for s in detail:
        b.rows.append(endpoint_row(scenario + " (detail only)", s, bare=bare["team"], ratio_of="rps",
                                   target=">= 40% of bare", met=s.rps >= 0.4 * bare["team"].rps))
    one = await sc.alone(app, people, seconds=3)
    b.rows.append(endpoint_row("one request at a time", one, bare=bare["select1_alone"]))
    for key in ("select1", "team"):
        b.rows.append(endpoint_row("bare baseline, 32 connections", bare[key]))
    b.say(f"saturation done: read mix {mix[-1].rps:.0f} req/s vs bare {bare['select1'].rps:.0f}")


async def _mixed(b: Bench, app: Devhost, dsn: str) -> None:
    since = datetime.now(UTC).isoformat()
    runners = 4
    run = await sc.locust(app.base_url, ["ApiUser", "TeamRunnerUser"], users=30 + runners, spawn_rate=10,
                          seconds=b.budget.mixed, population=b.population,
                          env={"GP_RUNNERS": str(runners), "GP_TEAM_TIMEOUT": str(b.budget.mixed)})
    scenario = f"mixed: 30 readers + {runners} team runners, LLM 800 ms"
    for s in run.rows(mix=sc.READ_ENDPOINTS):
        b.rows.append(endpoint_row(scenario, s))
    outcome = await sc.teams_finished_since(dsn, since)
    done = outcome.get("completed", 0)
    b.rows.append(Row(scenario, "orchestration throughput",
                      value=f"{done} teams completed ({done * 60 / b.budget.mixed:.1f}/min), "
                            f"{outcome['tasks_completed'] / b.budget.mixed:.2f} tasks/s; unfinished at stop: "
                            f"{sum(v for k, v in outcome.items() if k not in ('completed', 'tasks_completed'))}",
                      met=outcome.get("failed", 0) == 0))
    b.say(f"mixed done: {outcome}")


async def _profile(b: Bench, app: Devhost, people: list[sc.Reader]) -> None:
    svg = REPO / "docs" / "flamegraph.svg"
    spy = await asyncio.create_subprocess_exec(
        str(Path(sys.executable).parent / "py-spy"), "record", "--pid", str(app.pid), "--duration",
        str(int(b.budget.profile)), "--rate", "200", "--output", str(svg), "--nonblocking",
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE)
    await sc.saturation(app, people, seconds=b.budget.profile, connections=32)
    _, err = await asyncio.wait_for(spy.communicate(), 60)
    outcome = "written" if spy.returncode == 0 else f"py-spy failed: {err.decode(errors='replace').strip()[-300:]}"
    b.notes.append(f"Flame graph of the devhost under the no-think read mix: `docs/flamegraph.svg` "
                   f"(py-spy at 200 Hz for {b.budget.profile:.0f} s; {outcome}).")


async def run_side_phases(b: Bench, phases: set[str]) -> None:
    budget = b.budget
    if "websocket" in phases:
        rounds = 20
        result = await ws_compare(budget.ws_clients, budget.ws_groups, rounds)
        emu, bare = result["emulator"], result["bare"]
        scenario = f"websocket fan-out, {budget.ws_clients} clients / {budget.ws_groups} groups"
        b.rows.append(Row(scenario, "emulator send to receive", p50=emu["p50_ms"], p95=emu["p95_ms"],
                          p99=emu["p99_ms"], value=f"{emu['lost']} lost, {emu['clients']} connections",
                          bare=f"{bare['p99_ms']:.1f} ms p99, {bare['lost']} lost",
                          ratio=emu["p99_ms"] / bare["p99_ms"] if bare["p99_ms"] else None,
                          target="p99 < 100, 0 lost", met=emu["p99_ms"] < 100 and emu["lost"] == 0))
        b.rows.append(Row(scenario, "RSS per idle connection (KiB)", value=f"{emu['rss_per_idle_connection_kib']:.1f}",
                          bare=f"{bare['rss_per_idle_connection_kib']:.1f} KiB",
                          ratio=emu["rss_per_idle_connection_kib"] / bare["rss_per_idle_connection_kib"]
                          if bare["rss_per_idle_connection_kib"] > 0 else None))
        b.say(f"websocket done: emulator p99 {emu['p99_ms']:.1f} ms, bare p99 {bare['p99_ms']:.1f} ms")
    if "micro" in phases:
        await _micro(b)
    if "scale" in phases:
        await _scale(b)
    if "peer" in phases:
        await _peer(b)
    if "others" in phases:
        for module in ("loadtests.bench_realtime", "loadtests.bench_dashboard", "loadtests.bench_teams",
                       "loadtests.bench_agents"):
            if not (REPO / (module.replace(".", "/") + ".py")).exists():
                b.extra.append(f"`{module}`: not present in this tree; not run.")
                continue
            code, out = await run_command([sys.executable, "-m", module], seconds=900)
            tail = "\n".join(out.strip().splitlines()[-25:])
            b.extra.append(f"`python -m {module}` (exit {code}):\n\n```\n{tail}\n```")
            b.say(f"{module} exit {code}")


async def _micro(b: Bench) -> None:
    code, out = await run_command([sys.executable, "-m", "loadtests.bench_durable", "--steps",
                                   str(b.budget.durable_steps)], seconds=120)
    rate = re.search(r"activity calls/s end to end\s*:\s*([\d.]+)", out)
    overhead = re.search(r"per-step overhead, unloaded\s*:\s*median\s*([\d.]+) ms", out)
    if rate and overhead:
        b.rows.append(Row("durable backend, 50 orchestrations", "activity calls/s end to end",
                          value=rate.group(1), target=">= 300", met=float(rate.group(1)) >= 300))
        b.rows.append(Row("durable backend, 50 orchestrations", "per-step overhead, median ms",
                          value=overhead.group(1), target="< 10", met=float(overhead.group(1)) < 10))
    else:
        b.extra.append(f"`loadtests.bench_durable` exit {code}:\n\n```\n{out[-1500:]}\n```")
    code, out = await run_command([sys.executable, "-m", "loadtests.bench_http", "--select",
                                   ADMIN_URL, "--seconds", "3"], seconds=90)
    found = {k: float(v) for k, v in re.findall(r"^\s+(bare|devhost|ratio)\s+([\d.]+)", out, re.M)}
    if {"bare", "devhost", "ratio"} <= found.keys():
        b.rows.append(Row("HTTP host micro bench (SELECT 1 function)", "devhost vs bare ASGI",
                          rps=found["devhost"], bare=f"{found['bare']:.0f} req/s", ratio=found["ratio"]))
    else:
        b.extra.append(f"`loadtests.bench_http` exit {code}:\n\n```\n{out[-1500:]}\n```")
    b.say("micro benchmarks done")


async def _scale(b: Bench) -> None:
    """The same durable workload on 1, 2 and 3 hosts sharing one PostgreSQL (loadtests.bench_scale)."""
    results = await run_scale(ADMIN_URL, quick=b.budget is QUICK, say=b.say)
    for r in results:
        pg = f"{r.postgres_cores:.2f}" if r.postgres_cores is not None else "n/a"
        b.rows.append(Row(f"durable scale-out, {r.workload.name}", f"{r.hosts} host(s) on one PostgreSQL",
                          value=f"{r.rate:.0f} calls/s; step {r.step_ms_loaded:.1f} ms loaded, "
                                f"{r.overhead_ms_alone:.1f} ms alone; cores {r.host_cores:.2f} hosts + {pg} "
                                f"postgres (machine busy {r.machine_cores:.2f} of {os.cpu_count()})",
                          ratio=r.efficiency, bare="efficiency vs N x 1 host" if r.hosts == 1 else ""))
    b.notes.append("Durable scale-out (`python -m loadtests.bench_scale`): the ratio column is the scaling "
                   "efficiency, calls/s of N hosts / (N x one host). On this 2-core machine the hosts and "
                   "PostgreSQL share the same cores, so the CPU-bound workload cannot scale (docs/capacity.md).")
    b.extra.append("`python -m loadtests.bench_scale`:\n\n```\n" + "\n".join(render(results)) + "\n```")
    b.say("scale-out benchmark done")


async def _peer(b: Bench) -> None:
    """Ghost Pirates and LangGraph + PostgreSQL on the same team (loadtests.bench_peer)."""
    rows, lines = await run_peer(quick=b.budget is QUICK, say=b.say)
    for r in rows:
        b.rows.append(Row("peer baseline: the 34-call team vs LangGraph + Postgres", r.figure,
                          value=f"{r.ours}" + (f"; {r.why}" if r.why else ""), bare=f"LangGraph {r.theirs}",
                          ratio=float(r.ratio.rstrip("x")) if r.ratio.endswith("x") else None,
                          target=r.target, met=r.met))
    b.extra.append("`python -m loadtests.bench_peer` (the peer table):\n\n" + "\n".join(lines))
    b.say("peer baseline done")


async def main_async(args: argparse.Namespace) -> int:
    budget = QUICK if args.quick else FULL
    plan = SeedPlan(teams=args.teams, tasks_per_team=args.tasks_per_team, audit=args.audit)
    b = Bench(budget, plan.population)
    phases = set(args.only.split(",")) if args.only else set(PHASES)
    if args.no_profile:
        phases.discard("profile")
    started = time.perf_counter()
    b.say(f"machine: {machine()}")
    template, seeded = await asyncio.to_thread(ensure_template, ADMIN_URL, plan, b.say)
    b.notes.append(f"Data: {plan.teams} teams x {plan.tasks_per_team} tasks, {plan.audit} audit events, "
                   f"{plan.population.companies} companies; " + (f"seeded in {seeded:.1f} s (COPY)." if seeded else
                                                                 "seeded earlier (template reused, cloned)."))
    with clone(ADMIN_URL, template) as dsn, tempfile.TemporaryDirectory(prefix="gp-bench-") as work:
        if "explain" in phases:
            plans = await explain_all(dsn)
            bad = [p for p in plans if not p.ok]
            b.plans = render_plans(plans)
            slowest = max((p.execution_ms for p in plans), default=None)
            b.rows.append(Row("EXPLAIN (ANALYZE, BUFFERS)", f"{len(plans)} API statements",
                              value=(f"max {slowest:.2f} ms; seq scans on large tables: {len(bad)}" if plans
                                     else "no statement was explained"), target="0 seq scans",
                              met=bool(plans) and not bad))
        await run_app_phases(b, dsn, phases, Path(work))
    await run_side_phases(b, phases)
    elapsed = time.perf_counter() - started
    lines = table(b.rows)
    print("\n" + "\n".join(lines))
    if not args.no_write:
        body = [f"Run of {stamp()} ({'--quick' if args.quick else 'full'}, {elapsed / 60:.1f} min) on {machine()}.",
                "Other engineers' tests shared this 2-core machine: figures are noisy; compare ratios, not "
                "absolutes.", "", *lines, "", *[f"- {n}" for n in b.notes], "", *b.extra]
        if b.plans:
            body += ["", "### Query plans on the seeded data", "", *b.plans]
        write_document(REPO / "docs" / "PERFORMANCE.md", body)
        print(f"\nwritten to docs/PERFORMANCE.md ({elapsed:.0f} s)")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m loadtests.bench", description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="shorter runs (about 3 minutes)")
    parser.add_argument("--no-profile", action="store_true", help="skip the py-spy flame graph")
    parser.add_argument("--no-write", action="store_true", help="print only; leave docs/PERFORMANCE.md alone")
    parser.add_argument("--only", help=f"comma-separated phases of: {', '.join(PHASES)}")
    parser.add_argument("--teams", type=int, default=1000)
    parser.add_argument("--tasks-per-team", type=int, default=20)
    parser.add_argument("--audit", type=int, default=1_000_000)
    args = parser.parse_args(argv)
    import uvloop

    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        return runner.run(main_async(args))


if __name__ == "__main__":
    sys.exit(main())
