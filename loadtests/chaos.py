"""Chaos: teams run through a real devhost while everything under it fails; then the invariants.

    python -m loadtests.chaos [--quick] [--teams N] [--rounds N] [--timeout SECONDS]

Every process is the run's own, in a temp dir: an embedded PostgreSQL (`pg_ctl`, never the machine's
shared server), a `redis-server` on a free port, devhost's Web PubSub emulator (standalone, in this process),
a devhost using them (`--pubsub-url`), and the fault-injecting OpenAI-compatible model server of
`loadtests.fault_llm`, which every agent calls. Teams are created over the HTTP API (and more
before a fault that would find none running); each round then injects, a few seconds apart: a
burst of 429s, an immediate (crash) stop of PostgreSQL and its restart, Redis stopped and started,
a SIGKILL of devhost (restarted on the same data dir and port while the next faults land), the
emulator stopped and started, a burst of 500s and a burst of garbage streams. When every team has
settled the run checks, from the database and the model server's own counts:

- every team ends `completed`, or with an open escalation (its budget, a task that failed for good);
- no state transition is written twice: each `*.status_changed` event has its own (entity, version),
  each follows from the one before it, and the audit has exactly one row per event;
- each team's event `seq` runs 1..`event_seq` without a gap;
- call by call (the model server knows each call by the cost-row id the app sends as
  `X-Client-Request-Id`): every call it served is settled with exactly the tokens it served, every
  call it answered with an error is released, nothing it did not serve is settled; the one
  exception is a call whose step a SIGKILL cut short between the answer and the step's commit
  (its row was still reserved when the kill landed): it is billed at its worst case by the sweep,
  or still awaits it; and each team's `spent_usd` and `reserved_usd` are the sums of its cost rows;
- `spent_usd <= budget_usd` (and with what is still reserved) for every team.

It prints the table and exits 1 on any failure. The faults that kill a process mid-call (devhost,
PostgreSQL) are placed while the model server holds its calls before their first byte, after every
call it served is billed where that can be waited for (a step that makes a second call keeps its
first one unsettled until it commits: then the wait gives up, a "quiesce timeout"). A PostgreSQL
restart must not cost exactness at all: a step whose commit failed settles its calls once the
database is back (shared/services/metering.py). docs/runbook.md, "Chaos".
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import os
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import psycopg
from psycopg.rows import dict_row

from devhost.postgres import EmbeddedPostgres
from devhost.pubsub import EmulatorServer, PubSubEmulator
from devhost.pubsub.keys import load_or_create_access_key
from loadtests.fault_llm import MODEL, FaultyLLM
from loadtests.processes import REPO, free_port, stop_process, wait_listening

#: Tasks in these states are being worked on: a team with one is not settled yet.
RUNNING_TASKS = ("assigned", "in_progress", "review", "revision_requested")
FINAL_TEAMS = ("completed", "failed", "cancelled")


@dataclass(frozen=True)
class ChaosPlan:
    teams: int  #: teams created before each round
    rounds: int  #: each round injects every fault once
    gap_seconds: float  #: between two faults
    settle_seconds: float  #: how long teams may take to settle after the last fault
    tight_every: int = 4  #: every n-th team gets a budget it cannot finish within
    workers: int = 2
    max_tasks: int = 12  #: TEAM_MAX_TASKS of the devhost
    llm_latency_seconds: float = 0.05


QUICK = ChaosPlan(teams=3, rounds=1, gap_seconds=1.0, settle_seconds=45, tight_every=3, max_tasks=2)
FULL = ChaosPlan(teams=8, rounds=4, gap_seconds=3.0, settle_seconds=600)


async def _drain(stream: asyncio.StreamReader | None) -> None:
    if stream is not None:
        while await stream.readline():
            pass


@dataclass
class Stack:
    """The run's own PostgreSQL, Redis, Web PubSub emulator, model server and devhost."""

    work: Path
    llm: FaultyLLM
    plan: ChaosPlan
    pg: EmbeddedPostgres = field(init=False)
    database_url: str = ""
    redis_port: int = field(default_factory=free_port)
    pubsub_port: int = field(default_factory=free_port)
    http_port: int = field(default_factory=free_port)
    redis: asyncio.subprocess.Process | None = None
    pubsub: EmulatorServer | None = None
    devhost: asyncio.subprocess.Process | None = None
    devhost_starts: list[float] = field(default_factory=list)  #: seconds each devhost start took
    _tasks: set[asyncio.Task[None]] = field(default_factory=set)
    _starting: asyncio.Future[None] | None = None

    def __post_init__(self) -> None:
        self.pg = EmbeddedPostgres(self.work / "pg")

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    @property
    def data_dir(self) -> Path:
        return self.work / "devhost"

    async def start(self) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        database_url, _, _ = await asyncio.gather(asyncio.to_thread(self.pg.start), self.start_redis(),
                                                  self.start_pubsub())
        self.database_url = database_url
        await self.start_devhost()

    def restart_devhost_soon(self) -> None:
        """Start devhost again in the background (the next fault that needs it awaits `ready()`)."""
        self._starting = asyncio.ensure_future(self.start_devhost())

    async def ready(self) -> None:
        """Until a devhost started in the background is up (its failure to start fails the run)."""
        if self._starting is not None:
            starting, self._starting = self._starting, None
            await starting

    async def stop(self) -> None:
        if self._starting is not None:
            with contextlib.suppress(Exception):
                await self._starting
        await stop_process(self.devhost, 20)
        await self.stop_pubsub()
        await stop_process(self.redis)
        for task in self._tasks:
            task.cancel()
        with contextlib.suppress(Exception):
            await asyncio.to_thread(self.pg.stop)

    def _keep(self, coro: Awaitable[None]) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def start_redis(self) -> None:
        self.redis = await asyncio.create_subprocess_exec(
            "redis-server", "--port", str(self.redis_port), "--bind", "127.0.0.1", "--save", "",
            "--appendonly", "no", "--protected-mode", "no", stdout=asyncio.subprocess.DEVNULL)
        await wait_listening(self.redis_port, 10)

    async def stop_redis(self) -> None:
        await stop_process(self.redis)

    async def start_pubsub(self) -> None:
        """devhost's emulator, standalone (what `python -m devhost.pubsub` runs) in this process: a
        restart is a new emulator with no connections or groups, on the same port and key."""
        upstream = f"{self.base_url}/api/realtime/events"
        key = load_or_create_access_key(self.data_dir)  # devhost --pubsub-url reads it from there
        self.pubsub = EmulatorServer(PubSubEmulator(key, hub_names=None, upstream_url=[upstream]),
                                     port=self.pubsub_port)
        await self.pubsub.start()

    async def stop_pubsub(self) -> None:
        if self.pubsub is not None:
            await self.pubsub.stop()
            self.pubsub = None

    def devhost_env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if k not in ("WEBPUBSUB_CONNECTION_STRING",)}
        env.update({
            "PYTHONPATH": str(REPO),
            "DATABASE_URL": self.database_url,
            "REDIS_URL": f"redis://127.0.0.1:{self.redis_port}/0",
            "LLM_PROVIDER": "openai",
            "OPENAI_BASE_URL": self.llm.url,
            "LLM_MANAGER": f"openai:{MODEL}",
            "LLM_WORKER": f"openai:{MODEL}",
            "LLM_PRICE_INPUT_PER_MTOK": "0.5",
            "LLM_PRICE_OUTPUT_PER_MTOK": "2",
            "LLM_STALL_TIMEOUT_SECONDS": "120",
            "LLM_CALL_TIMEOUT_SECONDS": "180",
            "RATE_LIMIT_WRITES_PER_MINUTE": "100000",
            "RATE_LIMIT_LOGIN_PER_MINUTE": "1000",
            "TEAM_MAX_TASKS": str(self.plan.max_tasks),
        })
        return env

    async def start_devhost(self) -> None:
        started = time.monotonic()
        self.data_dir.mkdir(parents=True, exist_ok=True)
        log = (self.work / "devhost.log").open("ab")
        argv = [sys.executable, "-m", "devhost", "serve", "--port", str(self.http_port), "--pubsub-url",
                f"http://127.0.0.1:{self.pubsub_port}", "--data-dir", str(self.data_dir), "--app-dir", str(REPO),
                "--lease-seconds", "2", "--grace", "3"]
        self.devhost = await asyncio.create_subprocess_exec(*argv, cwd=REPO, env=self.devhost_env(),
                                                            stdout=asyncio.subprocess.PIPE, stderr=log)
        log.close()
        assert self.devhost.stdout is not None
        async with asyncio.timeout(90):
            while True:
                line = await self.devhost.stdout.readline()
                if not line:
                    await self.devhost.wait()
                    tail = (self.work / "devhost.log").read_text(errors="replace")[-3000:]
                    raise RuntimeError(f"devhost exited {self.devhost.returncode} while starting:\n{tail}")
                if b"/api" in line and b"API" in line:
                    break
        self._keep(_drain(self.devhost.stdout))
        self.devhost_starts.append(time.monotonic() - started)

    async def kill_devhost(self) -> None:
        assert self.devhost is not None
        self.devhost.kill()  # SIGKILL: no drain, no lease release, no goodbye
        await self.devhost.wait()


# --- the faults ---------------------------------------------------------------------------------


@dataclass
class Faults:
    """Each fault, as the run injects it, and what it took."""

    stack: Stack
    log: list[tuple[str, float, int]] = field(default_factory=list)  #: (fault, seconds, teams running then)
    quiesce_misses: int = 0
    #: Cost rows still reserved when a SIGKILL landed: their calls may end billed at their worst case.
    cut_by_kill: set[str] = field(default_factory=set)

    async def unbilled(self) -> int:
        """Calls the model server served that the app has not billed (yet), but for those a kill cut."""
        served = {k for k, (outcome, _, _) in self.stack.llm.figures.calls.items() if outcome == "served"}
        return len((served & await reserved_calls(self.stack.database_url)) - self.cut_by_kill)

    async def quiesce(self, seconds: float = 15) -> None:
        """Hold the model server (new calls wait before their first byte) and wait until every call it
        served is billed: then no call is between "answered" and "billed" when the fault lands."""
        llm = self.stack.llm
        llm.hold()
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            if llm.in_flight == 0 and await self.unbilled() == 0:
                return
            await asyncio.sleep(0.05)
        self.quiesce_misses += 1

    async def teams_running(self) -> int:
        """Teams neither settled (completed, or waiting on a person) nor ended."""
        return sum(1 for t in await team_states(self.stack.database_url)
                   if not settled(t) and t["status"] not in FINAL_TEAMS)

    async def _timed(self, name: str, action: Callable[[], Awaitable[None]]) -> None:
        running = await self.teams_running()
        started = time.monotonic()
        await action()
        self.log.append((name, time.monotonic() - started, running))

    async def llm_burst(self, fault: str, calls: int) -> None:
        async def act() -> None:
            self.stack.llm.burst(fault, calls)  # type: ignore[arg-type]

        await self._timed(f"LLM {fault} x{calls}", act)

    async def kill_devhost(self) -> None:
        async def act() -> None:
            await self.stack.ready()
            await self.quiesce()
            try:
                self.cut_by_kill |= await reserved_calls(self.stack.database_url)
                await self.stack.kill_devhost()
            finally:
                self.stack.llm.release()  # the killed calls find their client gone: not served
            self.stack.restart_devhost_soon()

        await self._timed("SIGKILL devhost (restarted meanwhile)", act)

    async def restart_postgres(self) -> None:
        async def act() -> None:
            await self.stack.ready()  # a devhost starting would fail its migrations
            await self.quiesce()
            try:
                await asyncio.to_thread(self.stack.pg.stop, "immediate")
                await asyncio.sleep(0.5)
                await asyncio.to_thread(self.stack.pg.start)
            finally:
                self.stack.llm.release()

        await self._timed("PostgreSQL crash stop, restart", act)

    async def bounce(self, name: str, stop: Callable[[], Awaitable[None]], start: Callable[[], Awaitable[None]],
                     down_seconds: float = 2.0) -> None:
        """A dependency down for `down_seconds`, then up again on the same port."""
        async def act() -> None:
            await stop()
            await asyncio.sleep(down_seconds)
            await start()

        await self._timed(f"{name} stop {down_seconds:g} s, start", act)

    def round(self) -> list[Callable[[], Awaitable[None]]]:
        stack = self.stack
        return [lambda: self.llm_burst("429", 3), self.restart_postgres,
                lambda: self.bounce("Redis", stack.stop_redis, stack.start_redis), self.kill_devhost,
                lambda: self.bounce("Web PubSub emulator", stack.stop_pubsub, stack.start_pubsub),
                lambda: self.llm_burst("500", 3), lambda: self.llm_burst("garbage", 2)]


# --- the teams ----------------------------------------------------------------------------------


async def _request(http: httpx.AsyncClient, method: str, url: str, seconds: float = 60, **kwargs: Any
                   ) -> httpx.Response:
    """A request that outlives a restarting devhost: retried on connection errors and 5xx."""
    deadline = time.monotonic() + seconds
    while True:
        try:
            response = await http.request(method, url, **kwargs)
            if response.status_code < 500:
                return response
        except httpx.TransportError:
            pass
        if time.monotonic() > deadline:
            raise RuntimeError(f"{method} {url} did not succeed in {seconds:.0f} s")
        await asyncio.sleep(0.3)


async def register(http: httpx.AsyncClient) -> dict[str, str]:
    response = await _request(http, "POST", "/api/auth/register", json={
        "company_name": "Chaos", "email": f"chaos-{uuid.uuid4().hex[:8]}@example.com",
        "password": "chaos-password-1", "full_name": "Chaos Monkey"})
    response.raise_for_status()
    return {"Authorization": f"Bearer {response.json()['token']}"}


async def create_teams(http: httpx.AsyncClient, auth: dict[str, str], plan: ChaosPlan, first: int) -> list[str]:
    ids = []
    for n in range(first, first + plan.teams):
        tight = plan.tight_every and n % plan.tight_every == plan.tight_every - 1
        response = await _request(http, "POST", "/api/teams", headers=auth, json={
            "goal": f"Chaos team {n}: write a short field guide to surviving outages",
            "budget_usd": 0.02 if tight else 5, "workers": plan.workers, "auto_start": True})
        response.raise_for_status()
        ids.append(response.json()["id"])
    return ids


# --- the checks ---------------------------------------------------------------------------------


@dataclass
class Check:
    name: str
    ok: bool
    figures: str


_SETTLED = """
SELECT t.id, t.status,
       EXISTS (SELECT 1 FROM escalations e WHERE e.team_id = t.id AND e.status = 'open') AS escalated,
       (SELECT count(*) FROM tasks k WHERE k.team_id = t.id AND k.status = ANY(%(running)s)) AS running
FROM teams t
"""


async def reserved_calls(database_url: str) -> set[str]:
    """The ids of the LLM calls whose cost rows are still reservations."""
    async with await psycopg.AsyncConnection.connect(database_url, connect_timeout=5) as conn:
        cur = await conn.execute("SELECT id::text FROM cost_tracking WHERE status = 'reserved' AND provider = 'openai'")
        return {str(row[0]) for row in await cur.fetchall()}


async def team_states(database_url: str) -> list[dict[str, Any]]:
    async with await psycopg.AsyncConnection.connect(database_url, row_factory=dict_row) as conn:
        cur = await conn.execute(_SETTLED, {"running": list(RUNNING_TASKS)})
        return await cur.fetchall()


def settled(team: dict[str, Any]) -> bool:
    """Done, or waiting on a person (a budget-paused team keeps its interrupted task in progress)."""
    return bool(team["status"] == "completed" or team["escalated"])


async def wait_settled(stack: Stack, faults: Faults, seconds: float) -> float:
    """Until every team has settled or ended and nothing moved for four looks half a second apart (no
    call at the model server, no reservation, no task or team changed); the seconds it took."""
    started = time.monotonic()
    calm, previous = 0, None
    while time.monotonic() - started < seconds:
        states = await team_states(stack.database_url)
        seen = (stack.llm.figures.requests, sorted((str(t["id"]), t["status"], t["escalated"], t["running"])
                                                   for t in states))
        quiet = stack.llm.in_flight == 0 and stack.llm.held == 0 and await faults.unbilled() == 0
        done = all(settled(t) or t["status"] in FINAL_TEAMS for t in states)
        calm = calm + 1 if quiet and done and seen == previous else 0
        previous = seen
        if calm >= 4:
            break
        await asyncio.sleep(0.5)
    return time.monotonic() - started


_DUPLICATES = """
SELECT count(*) FROM (
    SELECT 1 FROM team_events WHERE type IN ('team.status_changed', 'task.status_changed')
    GROUP BY team_id, task_id, payload->>'version' HAVING count(*) > 1) d
"""
_BROKEN_CHAINS = """
SELECT count(*) FROM (
    SELECT payload->>'from' AS source,
           lag(payload->>'to') OVER (PARTITION BY team_id, task_id, type ORDER BY seq) AS previous
    FROM team_events WHERE type IN ('team.status_changed', 'task.status_changed')) c
WHERE previous IS NOT NULL AND previous <> source
"""
_TRANSITIONS = """
SELECT (SELECT count(*) FROM team_events WHERE type IN ('team.status_changed', 'task.status_changed')),
       (SELECT count(*) FROM audit_events WHERE event_type IN ('team.status_changed', 'task.status_changed'))
"""
_GAPS = """
SELECT count(*) FILTER (WHERE n <> t.event_seq OR coalesce(hi, 0) <> t.event_seq OR coalesce(lo, 1) <> 1),
       coalesce(sum(n), 0)
FROM teams t LEFT JOIN LATERAL (
    SELECT count(*) AS n, min(seq) AS lo, max(seq) AS hi FROM team_events e WHERE e.team_id = t.id) s ON true
"""
_BILLED = """
SELECT id::text, status, input_tokens, output_tokens FROM cost_tracking WHERE provider = 'openai'
"""
_BUDGETS = """
SELECT count(*) FILTER (WHERE spent_usd > budget_usd),
       count(*) FILTER (WHERE spent_usd + reserved_usd > budget_usd),
       coalesce(max(spent_usd / NULLIF(budget_usd, 0)), 0)
FROM teams WHERE budget_usd IS NOT NULL
"""


_LEDGER = """
SELECT count(*) FILTER (WHERE t.spent_usd <> l.spent OR t.reserved_usd <> l.reserved), coalesce(sum(t.spent_usd), 0)
FROM teams t CROSS JOIN LATERAL (
    SELECT coalesce(sum(cost_usd) FILTER (WHERE status IN ('settled', 'estimated')), 0) AS spent,
           coalesce(sum(reserved_usd) FILTER (WHERE status = 'reserved'), 0) AS reserved
    FROM cost_tracking c WHERE c.team_id = t.id) l
"""


async def _one(conn: psycopg.AsyncConnection[Any], query: str) -> tuple[Any, ...]:
    cur = await conn.execute(query)
    row = await cur.fetchone()
    assert row is not None
    return tuple(row)


def reconcile(calls: dict[str, tuple[str, int, int]], rows: dict[str, tuple[str, int, int]],
              cut_by_kill: set[str]) -> Check:
    """The model server's record of each call against its cost row (see the module docstring)."""
    exact = cut = wrong = released = unseen = 0
    examples: list[str] = []

    def bad(what: str) -> None:
        nonlocal wrong
        wrong += 1
        if len(examples) < 3:
            examples.append(what)

    for call_id, (outcome, prompt, completion) in calls.items():
        status, input_tokens, output_tokens = rows.get(call_id, ("no row", 0, 0))
        if call_id in cut_by_kill and status in ("estimated", "reserved"):
            cut += 1
        elif outcome == "served":
            if (status, input_tokens, output_tokens) == ("settled", prompt, completion):
                exact += 1
            else:
                bad(f"served {call_id} ({prompt}+{completion}) is {status} ({input_tokens}+{output_tokens})")
        elif status == "released":
            released += 1
        elif outcome == "dropped" and status in ("estimated", "reserved"):
            cut += 1  # its client was killed while the server held it
        else:
            bad(f"{outcome} {call_id} is {status}")
    for call_id, (status, _, _) in rows.items():
        if call_id in calls:
            continue
        if status == "settled":
            bad(f"{call_id} settled but never served")
        else:
            unseen += 1  # reserved, then the process died (or the call failed) before it reached the server
    served = sum(1 for outcome, _, _ in calls.values() if outcome == "served")
    return Check("billed calls == served calls", wrong == 0,
                 f"served {served}: {exact} settled exactly; {released} error answers released; {cut} cut by a "
                 f"SIGKILL (billed at worst case or awaiting the sweep); {unseen} reserved and never sent; "
                 f"{wrong} wrong" + (": " + "; ".join(examples) if examples else ""))


async def checks(stack: Stack, cut_by_kill: set[str]) -> list[Check]:
    states = await team_states(stack.database_url)
    by_status: dict[str, int] = {}
    for team in states:
        label = "escalated" if team["status"] != "completed" and team["escalated"] else team["status"]
        by_status[label] = by_status.get(label, 0) + 1
    unsettled = [t for t in states if not settled(t)]
    out = [Check("every team completed or escalated", not unsettled and bool(states),
                 ", ".join(f"{n} {s}" for s, n in sorted(by_status.items()))
                 + ("; unsettled: " + ", ".join(f"{t['status']} ({t['running']} running)" for t in unsettled)
                    if unsettled else ""))]
    async with await psycopg.AsyncConnection.connect(stack.database_url) as conn:
        (duplicates,) = await _one(conn, _DUPLICATES)
        (broken,) = await _one(conn, _BROKEN_CHAINS)
        events, audits = await _one(conn, _TRANSITIONS)
        out.append(Check("no duplicate state transition", duplicates == 0 and broken == 0 and events == audits,
                         f"{events} transitions, {audits} audit rows, {duplicates} duplicated, {broken} out of order"))
        gapped, total = await _one(conn, _GAPS)
        out.append(Check("event seq gap-free per team", gapped == 0, f"{total} events, {gapped} teams with a gap"))
        cur = await conn.execute(_BILLED)
        rows = {str(i): (str(status), int(n), int(o)) for i, status, n, o in await cur.fetchall()}
        over, over_reserved, ratio = await _one(conn, _BUDGETS)
        unbalanced, spent = await _one(conn, _LEDGER)
    out.append(reconcile(stack.llm.figures.calls, rows, cut_by_kill))
    out.append(Check("spent_usd <= budget_usd", over == 0 and over_reserved == 0,
                     f"{len(states)} teams, {over} over, {over_reserved} over with reservations, "
                     f"highest spent/budget {Decimal(ratio):.3f}"))
    out.append(Check("spent and reserved == the cost rows", unbalanced == 0,
                     f"{unbalanced} teams whose spent_usd or reserved_usd differ from their rows; "
                     f"${Decimal(spent):.4f} spent in all"))
    return out


# --- the run ------------------------------------------------------------------------------------


@dataclass
class Report:
    checks: list[Check]
    faults: list[tuple[str, float, int]]
    llm: dict[str, Any]
    seconds: float
    settle_seconds: float
    devhost_starts: list[float]
    quiesce_misses: int
    teams: int

    @property
    def ok(self) -> bool:
        return all(c.ok for c in self.checks)

    def render(self) -> str:
        lines = [f"chaos: {self.teams} teams, {len(self.faults)} faults in {self.seconds:.0f} s "
                 f"(settled {self.settle_seconds:.0f} s after the last fault)"]
        counts: dict[str, list[tuple[float, int]]] = {}
        for name, took, teams_running in self.faults:
            counts.setdefault(name, []).append((took, teams_running))
        lines.append(f"  {'fault':42} {'times':>5} {'max s':>6} {'teams running then (min-max)':>29}")
        for name, seen in counts.items():
            running = [r for _, r in seen]
            lines.append(f"  {name:42} {len(seen):>5} {max(t for t, _ in seen):>6.1f} "
                         f"{f'{min(running)}-{max(running)}':>29}")
        starts = self.devhost_starts
        lines.append(f"  devhost starts: {len(starts)}, {min(starts):.1f}-{max(starts):.1f} s each; "
                     f"quiesce timeouts: {self.quiesce_misses}")
        lines.append("  model server: " + ", ".join(f"{k} {v}" for k, v in self.llm.items()))
        lines.append(f"  {'check':38} {'result':6}  figures")
        for check in self.checks:
            lines.append(f"  {check.name:38} {'PASS' if check.ok else 'FAIL':6}  {check.figures}")
        lines.append(f"  result: {'PASS' if self.ok else 'FAIL'}")
        return "\n".join(lines)


async def run(plan: ChaosPlan, work: Path | None = None) -> Report:
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="gp-chaos-") as tmp:
        root = work or Path(tmp)
        llm = await FaultyLLM(latency_seconds=plan.llm_latency_seconds).start()
        stack = Stack(root, llm, plan)
        faults = Faults(stack)
        try:
            await stack.start()
            teams: list[str] = []
            async with httpx.AsyncClient(base_url=stack.base_url, timeout=30) as http:
                auth = await register(http)
                for _ in range(plan.rounds):
                    await stack.ready()
                    teams += await create_teams(http, auth, plan, len(teams))
                    for fault in faults.round():
                        await asyncio.sleep(plan.gap_seconds)
                        if not await faults.teams_running():  # every fault must land on running teams:
                            teams += await create_teams(http, auth, plan, len(teams))  # top up
                        await fault()
            await stack.ready()
            last_fault = time.monotonic()
            settle = await wait_settled(stack, faults, plan.settle_seconds)
            results = await checks(stack, faults.cut_by_kill)
            figures = llm.figures
            report = Report(results, faults.log, {"requests": figures.requests, "served": figures.served,
                                                  **dict(figures.faults), "dropped (client killed)": figures.dropped,
                                                  "unanswerable": figures.unanswerable},
                            last_fault - started + settle, settle, stack.devhost_starts, faults.quiesce_misses,
                            len(teams))
            if not report.ok:
                tail = (root / "devhost.log").read_text(errors="replace").splitlines()[-30:]
                print("devhost log, last lines:", *tail, sep="\n  ", file=sys.stderr)
            return report
        finally:
            await stack.stop()
            await llm.stop()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="a few teams, each fault once (CI)")
    parser.add_argument("--teams", type=int, help="teams created before each round")
    parser.add_argument("--rounds", type=int, help="rounds of faults (each fault once a round)")
    parser.add_argument("--timeout", type=float, help="seconds teams may take to settle after the last fault")
    parser.add_argument("--keep", type=Path, help="keep the run's files (logs, database) in this dir")
    args = parser.parse_args()
    plan = QUICK if args.quick else FULL
    plan = dataclasses.replace(plan, teams=args.teams or plan.teams, rounds=args.rounds or plan.rounds,
                               settle_seconds=args.timeout or plan.settle_seconds)
    report = asyncio.run(run(plan, args.keep))
    print(report.render())
    return 0 if report.ok else 1


if __name__ == "__main__":
    sys.exit(main())
