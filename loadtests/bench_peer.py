"""The peer baseline (issue 18): Ghost Pirates and LangGraph + PostgreSQL on the same team, side by side.

    python -m loadtests.bench_peer [--quick] [--only gp|langgraph] [--concurrent 20] [--crash-teams 5]

The team: the one Ghost Pirates' offline provider plans for `GOAL` (7 tasks: 2 parallel, a chain, 3
parallel; 23 worker steps, 9 reviews, the plan and the summary: 34 LLM calls). The LLM is offline
at 0 ms on both sides, so all that is measured is the platform. LangGraph runs the same shape
(`loadtests/peer_langgraph.py`: a canned chat model, the official `AsyncPostgresSaver`,
`durability="sync"`) in a child process, as Ghost Pirates runs in a devhost child process; each
system gets a fresh database per phase on the machine's PostgreSQL.

Figures (median of 3 where cheap; `--quick` takes one of each):
(a) one team alone: wall time per LLM call (all of it is overhead, the LLM takes 0 ms), after a
    warm-up team; with the host process's CPU per call;
(b) `--concurrent` teams at once: LLM calls per second;
(c) commits per team: the `xact_commit` delta of the run's database (pg_stat_database) over the
    teams of (a), read once every connection's statistics are flushed;
(d) SIGKILL of the process running `--crash-teams` teams once half their LLM calls are made, then
    the time from restarting it to every team completed (Ghost Pirates: the same devhost command on
    the same database and data dir; LangGraph: a new process resuming each thread from its
    checkpoints).

Prints one peer table with both systems, the ratios and the issue's targets (overhead ratio <= 1.0,
throughput >= LangGraph's, recovery <= 5 s, commits per LLM call <= 6), each met or not, with what
the remaining cost is when not. `make bench` runs it as its `peer` phase. LangGraph is a bench-only
dependency (`requirements-bench.txt`); without it the Ghost Pirates side still runs.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import importlib.util
import json
import os
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import psycopg
from psycopg import sql
from psycopg.conninfo import make_conninfo

from loadtests.bench_scale import _cpu_seconds
from loadtests.peer_common import TaskShape, TeamShape, no_backends, xact_commit
from loadtests.processes import REPO, devhost, first_line, team_completed

ADMIN_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
#: A goal whose offline plan is the issue's team: all seven software phases, 23 steps, 9 reviews.
GOAL = "Build a booking website for harbour 182"
WORKERS = 3
GP_ENV = {"OFFLINE_LLM_LATENCY_MS": "0", "RATE_LIMIT_WRITES_PER_MINUTE": "1000000", "LOG_LEVEL": "WARNING"}
#: pg_stat_database lags: an idle backend flushes its counters at most this long after its last commit.
STATS_FLUSH_SECONDS = 10.5
IDLE_SECONDS = 5.0
TARGET_RECOVERY_S = 5.0
TARGET_COMMITS_PER_CALL = 6.0


def team_shape(goal: str = GOAL, workers: int = WORKERS) -> TeamShape:
    """The team Ghost Pirates' offline provider makes of `goal`: its plan, each task's steps and
    whether its first review sends it back."""
    from shared.agents.offline_plans import offline_plan
    from shared.agents.offline_work import needs_revision, step_count
    from shared.agents.schemas import TaskBrief

    tasks = []
    for t in offline_plan(goal, workers).tasks:
        brief = TaskBrief(title=t.title, description=t.description, acceptance_criteria=t.acceptance_criteria,
                          specialization=t.specialization)
        tasks.append(TaskShape(t.key, t.title, tuple(t.dependencies), step_count(brief), needs_revision(brief, 0)))
    return TeamShape(goal, tuple(tasks))


def langgraph_missing() -> str | None:
    """Why the LangGraph side cannot run here, or None."""
    for module in ("langgraph", "langgraph.checkpoint.postgres", "langchain_core"):
        try:
            if importlib.util.find_spec(module) is None:
                raise ImportError(module)
        except ImportError:
            return f"{module} is not installed (pip install -r requirements-bench.txt; `make bench` does)"
    return None


@dataclass
class Figures:
    system: str
    overhead_ms: list[float] = field(default_factory=list)  #: per LLM call, one team alone, each team
    cpu_ms: float | None = None  #: the host process's CPU per LLM call, one team alone
    calls_per_team: float = 0.0
    calls_per_s: list[float] = field(default_factory=list)  #: each concurrent round
    commits_per_team: float | None = None
    idle_commits_per_s: float | None = None  #: committed by the host with no team running
    team_seconds: float | None = None  #: wall time of a team alone
    recovery_s: list[float] = field(default_factory=list)  #: each crash run
    restart_s: list[float] = field(default_factory=list)  #: of which until the restarted process was up
    progress_s: list[float] = field(default_factory=list)  #: until its first LLM call
    notes: list[str] = field(default_factory=list)
    skipped: str | None = None

    @property
    def overhead(self) -> float | None:
        return statistics.median(self.overhead_ms) if self.overhead_ms else None

    @property
    def throughput(self) -> float | None:
        return statistics.median(self.calls_per_s) if self.calls_per_s else None

    @property
    def recovery(self) -> float | None:
        return statistics.median(self.recovery_s) if self.recovery_s else None

    @property
    def commits_per_call(self) -> float | None:
        return self.commits_per_team / self.calls_per_team if self.commits_per_team and self.calls_per_team else None


# --- databases -----------------------------------------------------------------------------


@contextlib.contextmanager
def fresh_database(prefix: str, *, migrate: bool) -> Iterator[str]:
    name = f"{prefix}_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(ADMIN_URL, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    url = make_conninfo(ADMIN_URL, dbname=name)
    try:
        if migrate:
            from shared.db.migrate import migrate_sync

            migrate_sync(url)
        yield url
    finally:
        with psycopg.connect(ADMIN_URL, autocommit=True) as conn:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


# --- Ghost Pirates ----------------------------------------------------------------------------


class Api:
    """The few calls of a team run, as a user's client makes them."""

    def __init__(self, http: httpx.AsyncClient, auth: dict[str, str]) -> None:
        self.http, self.auth = http, auth

    @classmethod
    @contextlib.asynccontextmanager
    async def login(cls, base_url: str) -> AsyncIterator[Api]:
        async with httpx.AsyncClient(base_url=base_url, timeout=60, limits=httpx.Limits(max_connections=50)) as http:
            registered = await http.post("/api/auth/register", json={
                "company_name": "Peer bench", "email": f"peer-{uuid.uuid4().hex[:8]}@example.com",
                "password": "bench-password-1", "full_name": "Peer Bench"})
            registered.raise_for_status()
            yield cls(http, {"Authorization": f"Bearer {registered.json()['token']}"})

    async def create(self) -> str:
        response = await self.http.post("/api/teams", headers=self.auth, json={"goal": GOAL, "workers": WORKERS})
        response.raise_for_status()
        return str(response.json()["id"])

    async def start(self, team_id: str) -> None:
        (await self.http.post(f"/api/teams/{team_id}/start", headers=self.auth)).raise_for_status()

    async def until_done(self, team_id: str, seconds: float = 1800) -> dict[str, Any]:
        return await team_completed(self.http, self.auth, team_id, seconds)

    async def run(self, teams: int) -> tuple[datetime, list[dict[str, Any]]]:
        """Create `teams`, start them together; when the first start was asked, and the final teams."""
        ids = list(await asyncio.gather(*(self.create() for _ in range(teams))))
        asked = datetime.now(UTC)
        await asyncio.gather(*(self.start(i) for i in ids))
        return asked, list(await asyncio.gather(*(self.until_done(i) for i in ids)))


def _completed(team: dict[str, Any]) -> datetime:
    return datetime.fromisoformat(team["completed_at"])


def _llm_calls(url: str, team_ids: list[str]) -> dict[str, int]:
    with psycopg.connect(url) as conn:
        rows = conn.execute("SELECT team_id::text, count(*) FROM cost_tracking WHERE team_id = ANY(%s::uuid[])"
                            " GROUP BY 1", (team_ids,)).fetchall()
    return {team: n for team, n in rows}


def _messages(url: str, team_ids: list[str]) -> dict[str, int]:
    with psycopg.connect(url) as conn:
        rows = conn.execute("SELECT team_id::text, count(*) FROM messages WHERE team_id = ANY(%s::uuid[])"
                            " GROUP BY 1", (team_ids,)).fetchall()
    return {team_id: 0 for team_id in team_ids} | {team: n for team, n in rows}


async def gp_steady(figures: Figures, concurrent: int, rounds: int, alone: int, say: Callable[[str], None]) -> int:
    """(b) on one devhost and fresh database, then (a) and (c) on another pair; the messages of a team alone.

    (a) and (c) get a devhost of their own: `pg_stat_database` takes a backend's counters when it
    flushes them, so commits of the busy rounds of (b) would still be arriving inside (c)'s window
    (a full run's three rounds added ~900 per team)."""
    with fresh_database("gp_peer", migrate=True) as url, tempfile.TemporaryDirectory(prefix="gp-peer-") as work:
        async with devhost(url, Path(work), env=GP_ENV) as host, Api.login(host.base_url) as api:
            await api.run(1)  # warm-up: imports, first queries, caches (LangGraph's side has one too)
            for _ in range(rounds):
                asked, teams = await api.run(concurrent)
                wall = (max(_completed(t) for t in teams) - asked).total_seconds()
                calls = sum(_llm_calls(url, [t["id"] for t in teams]).values())
                figures.calls_per_s.append(calls / wall)
                say(f"  Ghost Pirates, {concurrent} teams at once: {calls} LLM calls in {wall:.2f} s")
    with fresh_database("gp_peer", migrate=True) as url, tempfile.TemporaryDirectory(prefix="gp-peer-") as work:
        async with devhost(url, Path(work), env=GP_ENV) as host, Api.login(host.base_url) as api:
            await api.run(1)  # the same warm-up
            await asyncio.sleep(STATS_FLUSH_SECONDS)
            idle_from = await xact_commit(url)
            await asyncio.sleep(IDLE_SECONDS)  # what the devhost commits with nothing to do (its polling)
            before, cpu_before = await xact_commit(url), _cpu_seconds(host.pid)
            figures.idle_commits_per_s = (before - idle_from) / IDLE_SECONDS
            walls: list[tuple[str, float]] = []
            for _ in range(alone):
                asked, (team,) = await api.run(1)
                walls.append((team["id"], (_completed(team) - asked).total_seconds()))
            cpu_after = _cpu_seconds(host.pid)
        await no_backends(url)  # the devhost stopped: every backend's counters are flushed
        commits = await xact_commit(url) - before
        calls_by_team = _llm_calls(url, [t for t, _ in walls])
        messages = _messages(url, [t for t, _ in walls])
    per_team = statistics.median(calls_by_team.values())
    figures.calls_per_team = per_team
    figures.overhead_ms = [wall * 1000 / calls_by_team[t] for t, wall in walls]
    figures.commits_per_team = commits / alone
    figures.team_seconds = statistics.median(w for _, w in walls)
    if cpu_before is not None and cpu_after is not None:
        figures.cpu_ms = (cpu_after - cpu_before) * 1000 / sum(calls_by_team.values())
    say(f"  Ghost Pirates, one team alone: {per_team:.0f} LLM calls, " + ", ".join(f"{w:.2f} s" for _, w in walls)
        + f"; {commits} commits over {alone} teams")
    return int(statistics.median(messages.values()))


async def gp_crash(figures: Figures, teams: int, expected_calls: int, messages_alone: int,
                   say: Callable[[str], None]) -> None:
    """(d): SIGKILL the devhost once half the teams' LLM calls are made; restart it on the same
    database and data dir; time until every team is completed."""
    half = teams * expected_calls // 2
    with fresh_database("gp_peer_crash", migrate=True) as url, tempfile.TemporaryDirectory(prefix="gp-peer-") as work:
        async with devhost(url, Path(work), env=GP_ENV) as host, Api.login(host.base_url) as api:
            ids = list(await asyncio.gather(*(api.create() for _ in range(teams))))
            await asyncio.gather(*(api.start(i) for i in ids))
            made = await _wait_calls(url, ids, half, seconds=300)
            host.process.kill()
            await host.process.wait()
        say(f"  Ghost Pirates: SIGKILL after {made} of {teams * expected_calls} LLM calls")
        at_kill = await _wait_calls(url, ids, 0, seconds=10)
        restarted = time.monotonic()
        async with devhost(url, Path(work), env=GP_ENV):
            up = time.monotonic() - restarted
            await _wait_calls(url, ids, at_kill + 1, seconds=600)
            progress = time.monotonic() - restarted
            await _wait_completed(url, ids, seconds=600)
            took = time.monotonic() - restarted
        messages = _messages(url, ids)
    figures.progress_s.append(progress)
    figures.recovery_s.append(took)
    figures.restart_s.append(up)
    short = [n for n in messages.values() if n < messages_alone]
    say(f"  Ghost Pirates: all {teams} completed {took:.1f} s after the restart (up after {up:.1f} s, first new "
        f"LLM call after {progress:.1f} s); "
        f"messages per team {min(messages.values())}-{max(messages.values())} (alone: {messages_alone})")
    if short:
        figures.notes.append(f"a crash run ended with {len(short)} of {teams} teams short of chat messages "
                             f"({sorted(short)} vs {messages_alone} without a crash)")


async def _wait_calls(url: str, ids: list[str], count: int, seconds: float) -> int:
    deadline = time.monotonic() + seconds
    async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
        while time.monotonic() < deadline:
            row = await (await conn.execute("SELECT count(*) FROM cost_tracking WHERE team_id = ANY(%s::uuid[])",
                                            (ids,))).fetchone()
            if row is not None and row[0] >= count:
                return int(row[0])
            await asyncio.sleep(0.02)
    raise TimeoutError(f"fewer than {count} LLM calls after {seconds:.0f} s")


async def _wait_completed(url: str, ids: list[str], seconds: float) -> None:
    deadline = time.monotonic() + seconds
    async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
        while time.monotonic() < deadline:
            rows = await (await conn.execute("SELECT status, count(*) FROM teams WHERE id = ANY(%s::uuid[])"
                                             " GROUP BY 1", (ids,))).fetchall()
            statuses: dict[str, int] = dict(rows)
            if statuses.get("completed", 0) == len(ids):
                return
            if statuses.get("failed") or statuses.get("cancelled"):
                raise RuntimeError(f"teams ended {statuses}")
            await asyncio.sleep(0.05)
    raise TimeoutError(f"teams not completed after {seconds:.0f} s")


async def measure_gp(concurrent: int, rounds: int, crashes: int, crash_teams: int,
                     say: Callable[[str], None]) -> Figures:
    figures = Figures("Ghost Pirates")
    messages_alone = await gp_steady(figures, concurrent, rounds, 3, say)
    for _ in range(crashes):
        await gp_crash(figures, crash_teams, round(figures.calls_per_team), messages_alone, say)
    return figures


# --- LangGraph --------------------------------------------------------------------------------


@contextlib.asynccontextmanager
async def peer_process(mode: str, *args: str) -> AsyncIterator[asyncio.subprocess.Process]:
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "loadtests.peer_langgraph", mode, *args, cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO)}, stdout=asyncio.subprocess.PIPE)
    try:
        yield process
    finally:
        if process.returncode is None:
            process.kill()
        await process.wait()


async def _line(process: asyncio.subprocess.Process, event: str, seconds: float = 600) -> dict[str, Any]:
    """The child's next JSON line with this `event` (its exit before that is an error)."""
    def with_event(raw: bytes) -> dict[str, Any] | None:
        found: dict[str, Any] = json.loads(raw)
        return found if found.get("event") == event else None

    return await first_line(process, with_event, seconds,
                            lambda code: f"loadtests.peer_langgraph exited {code} before {event!r}")


async def measure_langgraph(shape: TeamShape, concurrent: int, rounds: int, crashes: int, crash_teams: int,
                            say: Callable[[str], None]) -> Figures:
    figures = Figures("LangGraph + Postgres")
    missing = langgraph_missing()
    if missing:
        figures.skipped = missing
        say(f"  LangGraph skipped: {missing}")
        return figures
    with tempfile.TemporaryDirectory(prefix="gp-peer-lg-") as work:
        shape_file = Path(work) / "shape.json"
        shape_file.write_text(shape.to_json())
        base = ["--shape", str(shape_file)]
        with fresh_database("lg_peer", migrate=False) as url:
            async with peer_process("concurrent", "--dsn", url, *base, "--teams", str(concurrent),
                                    "--rounds", str(rounds)) as child:
                found = await _line(child, "concurrent")
            figures.calls_per_s = [found["calls"] / s for s in found["seconds"]]
            say(f"  LangGraph, {concurrent} teams at once: {found['calls']} LLM calls in "
                + ", ".join(f"{s:.2f} s" for s in found["seconds"]))
        with fresh_database("lg_peer", migrate=False) as url:
            async with peer_process("alone", "--dsn", url, *base, "--teams", "3") as child:
                found = await _line(child, "alone")
            figures.calls_per_team = found["calls"]
            figures.overhead_ms = [s * 1000 / found["calls"] for s in found["seconds"]]
            figures.commits_per_team = found["commits"] / found["teams"]
            figures.cpu_ms = found["cpu_seconds"] * 1000 / (found["calls"] * found["teams"])
            say(f"  LangGraph, one team alone: {found['calls']} LLM calls, "
                + ", ".join(f"{s:.2f} s" for s in found["seconds"]) + f"; {found['commits']} commits over 3 teams")
        for _ in range(crashes):
            with fresh_database("lg_peer_crash", migrate=False) as url:
                await _langgraph_crash(figures, url, base, crash_teams, shape, say)
    return figures


async def _langgraph_crash(figures: Figures, url: str, base: list[str], teams: int, shape: TeamShape,
                           say: Callable[[str], None]) -> None:
    async with peer_process("crash", "--dsn", url, *base, "--teams", str(teams)) as child:
        threads = (await _line(child, "threads"))["threads"]
        half = await _line(child, "half")
        child.kill()
    say(f"  LangGraph: SIGKILL after {half['calls']} of {teams * shape.calls} LLM calls")
    restarted = time.monotonic()
    async with peer_process("resume", "--dsn", url, *base, "--threads", ",".join(threads)) as child:
        await _line(child, "up")
        up = time.monotonic() - restarted
        await _line(child, "progress")
        progress = time.monotonic() - restarted
        done = await _line(child, "resumed")
        took = time.monotonic() - restarted
    figures.progress_s.append(progress)
    figures.recovery_s.append(took)
    figures.restart_s.append(up)
    say(f"  LangGraph: all {teams} completed {took:.1f} s after the restart (up after {up:.1f} s, first LLM call "
        f"after {progress:.1f} s); "
        f"messages per team {min(done['messages'])}-{max(done['messages'])}")


# --- the table ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class PeerRow:
    figure: str
    ours: str
    theirs: str
    ratio: str
    target: str
    met: bool | None
    why: str = ""


def _fmt(value: float | None, unit: str, digits: int = 1) -> str:
    return "n/a" if value is None else f"{value:.{digits}f}{unit}"


def _ratio(ours: float | None, theirs: float | None) -> float | None:
    return ours / theirs if ours is not None and theirs else None


def peer_rows(gp: Figures, lg: Figures, concurrent: int, crash_teams: int) -> list[PeerRow]:
    """The four figures, each judged against its target; a missed one says what the remaining cost is."""
    return [_overhead_row(gp, lg), _throughput_row(gp, lg, concurrent), _commits_row(gp, lg),
            _recovery_row(gp, lg, crash_teams)]


def _overhead_row(gp: Figures, lg: Figures) -> PeerRow:
    o, t = gp.overhead, lg.overhead
    ratio = _ratio(o, t)
    why = ""
    if o is not None and t is not None and ratio is not None and ratio > 1.0:
        why = f"{o - t:.1f} ms more per call"
        if gp.cpu_ms is not None and lg.cpu_ms is not None:
            why += (f": the host process's own CPU is {gp.cpu_ms:.1f} ms per call (LangGraph's {lg.cpu_ms:.1f} ms); "
                    f"the rest of the wall time is PostgreSQL and waiting")
        if gp.commits_per_call is not None and lg.commits_per_call is not None:
            why += f"; {gp.commits_per_call:.1f} commits per call (LangGraph {lg.commits_per_call:.1f})"
    return PeerRow("1 team alone: overhead per LLM call", _fmt(o, " ms"), _fmt(t, " ms"), _fmt(ratio, "x", 2),
                   "ratio <= 1.0", None if ratio is None else ratio <= 1.0, why)


def _throughput_row(gp: Figures, lg: Figures, concurrent: int) -> PeerRow:
    o, t = gp.throughput, lg.throughput
    ratio = _ratio(o, t)
    why = ""
    if ratio is not None and ratio < 1.0 and gp.cpu_ms:
        cores = os.cpu_count() or 1
        why = (f"CPU-bound on {cores} cores shared with PostgreSQL and the client: {gp.cpu_ms:.1f} ms of host CPU "
               f"per call caps it below {cores * 1000 / gp.cpu_ms:.0f} calls/s")
    return PeerRow(f"{concurrent} teams at once: LLM calls per second", _fmt(o, ""), _fmt(t, ""), _fmt(ratio, "x", 2),
                   ">= LangGraph's (ratio >= 1.0)", None if ratio is None else ratio >= 1.0, why)


def _commits_row(gp: Figures, lg: Figures) -> PeerRow:
    per_call = gp.commits_per_call
    why = ""
    if per_call is not None and per_call > TARGET_COMMITS_PER_CALL:
        why = (f"{per_call - 1:.1f} commits per LLM call beyond one: the transactions of a step that are not its "
               "own commit; by statement log (docs/PERFORMANCE.md, 'Where the commits go'), per call: durable "
               "episode claim ~2 and commit ~1.7, activity completion ~1.2, outbox publish ~0.8, the step's "
               "read-only reads ~1.1, the budget reservation 1")
        if gp.idle_commits_per_s is not None and gp.team_seconds is not None:
            background = gp.idle_commits_per_s * gp.team_seconds
            why += (f"; of a team's {gp.commits_per_team or 0:.0f}, ~{background:.0f} are the host's background, "
                    f"which commits {gp.idle_commits_per_s:.1f}/s with nothing to do")
    return PeerRow("commits per team", _fmt(gp.commits_per_team, "", 0) + f" ({_fmt(per_call, ' per LLM call')})",
                   _fmt(lg.commits_per_team, "", 0) + f" ({_fmt(lg.commits_per_call, ' per LLM call')})",
                   _fmt(_ratio(gp.commits_per_team, lg.commits_per_team), "x", 2),
                   f"<= {TARGET_COMMITS_PER_CALL:.0f} per LLM call",
                   None if per_call is None else per_call <= TARGET_COMMITS_PER_CALL, why)


def _recovery_row(gp: Figures, lg: Figures, crash_teams: int) -> PeerRow:
    o, t = gp.recovery, lg.recovery
    ratio = _ratio(o, t)
    why = ""
    if o is not None and o > TARGET_RECOVERY_S and gp.restart_s:
        up = statistics.median(gp.restart_s)
        why = f"the restarted devhost was up after {up:.1f} s"
        if gp.progress_s:
            why += f", made its first LLM call after {statistics.median(gp.progress_s):.1f} s"
        if gp.throughput and gp.calls_per_team:
            work = crash_teams * gp.calls_per_team / 2 / gp.throughput
            why += (f"; the half of the work left takes ~{work:.1f} s at the 20-team rate, and the other "
                    f"~{max(0.0, o - up - work):.1f} s is the wait for the killed host's claims (leases)")
    ours, theirs = _fmt(o, " s") + _phases(gp), _fmt(t, " s") + _phases(lg)
    return PeerRow(f"SIGKILL mid-run of {crash_teams} teams: restart to all completed", ours, theirs,
                   _fmt(ratio, "x", 2), f"<= {TARGET_RECOVERY_S:.0f} s", None if o is None else o <= TARGET_RECOVERY_S,
                   why)


def _phases(f: Figures) -> str:
    """When the restarted process was up and made its first LLM call (medians)."""
    if not f.restart_s:
        return ""
    text = f" (up {statistics.median(f.restart_s):.1f} s"
    if f.progress_s:
        text += f", first call {statistics.median(f.progress_s):.1f} s"
    return text + ")"


def render(rows: list[PeerRow], gp: Figures, lg: Figures) -> list[str]:
    lines = ["| figure | Ghost Pirates | LangGraph + Postgres | ratio (GP / LangGraph) | target | met | why not |",
             "|---|---:|---:|---:|---|---|---|"]
    for r in rows:
        met = "" if r.met is None else ("met" if r.met else "**not met**")
        lines.append(f"| {r.figure} | {r.ours} | {r.theirs} | {r.ratio} | {r.target} | {met} | {r.why} |")
    for f in (gp, lg):
        if f.skipped:
            lines.append(f"\n{f.system} not measured: {f.skipped}.")
        for note in f.notes:
            lines.append(f"\n{f.system}: {note}.")
    spread = []
    for f in (gp, lg):
        if f.overhead_ms:
            spread.append(f"{f.system}: overhead per call " + " / ".join(f"{v:.1f}" for v in f.overhead_ms)
                          + " ms; calls/s " + " / ".join(f"{v:.1f}" for v in f.calls_per_s)
                          + "; recovery " + " / ".join(f"{v:.1f}" for v in f.recovery_s) + " s")
    if spread:
        lines.append("\nEach run: " + "; ".join(spread) + ".")
    return lines


async def run_peer(*, quick: bool = False, only: str | None = None, concurrent: int = 20, crash_teams: int = 5,
                   say: Callable[[str], None] = print) -> tuple[list[PeerRow], list[str]]:
    """Both systems' figures, as rows and as the rendered peer table."""
    shape = team_shape()
    rounds, crashes = (1, 1) if quick else (3, 3)
    say(f"peer baseline: {len(shape.tasks)} tasks, {shape.calls} LLM calls per team (goal {shape.goal!r})")
    gp = Figures("Ghost Pirates", skipped="not asked (--only langgraph)")
    lg = Figures("LangGraph + Postgres", skipped="not asked (--only gp)")
    if only in (None, "langgraph"):
        lg = await measure_langgraph(shape, concurrent, rounds, crashes, crash_teams, say)
    if only in (None, "gp"):
        gp = await measure_gp(concurrent, rounds, crashes, crash_teams, say)
        if gp.calls_per_team and gp.calls_per_team != shape.calls:
            gp.notes.append(f"its team made {gp.calls_per_team:.0f} LLM calls, the shape expects {shape.calls}")
    rows = peer_rows(gp, lg, concurrent, crash_teams)
    return rows, render(rows, gp, lg)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m loadtests.bench_peer", description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="one run of each figure instead of three")
    parser.add_argument("--only", choices=("gp", "langgraph"), help="measure one system")
    parser.add_argument("--concurrent", type=int, default=20, help="teams at once for the throughput")
    parser.add_argument("--crash-teams", type=int, default=5, help="teams running when the process is killed")
    args = parser.parse_args(argv)
    _, lines = asyncio.run(run_peer(quick=args.quick, only=args.only, concurrent=args.concurrent,
                                    crash_teams=args.crash_teams))
    print("\n" + "\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
