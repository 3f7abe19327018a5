"""Rows of a realistic, company-scoped data set, produced as PostgreSQL COPY text lines.

Deterministic for a given seed. Ids are UUID v7 whose time matches `created_at`, like the app's;
statuses are consistent across tables (a completed team has only completed tasks, an active one a
mix, an escalated task has its open escalation) so every API read finds what it would in production.
Text never contains tabs, newlines or backslashes, so the COPY text format needs no escaping.
"""

from __future__ import annotations

import itertools
import json
import random
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime

from loadtests.accounts import Population, user_email

DAY_US = 86_400_000_000
MINUTE_US = 60_000_000
SPECIALIZATIONS = ("research", "engineering", "writing", "analysis", "design", "testing")
MODELS = (("anthropic", "claude-sonnet-4-5", "0.0031"), ("openai", "gpt-4.1-mini", "0.0009"))
GOALS = (
    "Build a web scraper for product prices", "Write a market analysis of electric bikes in Europe",
    "Design an onboarding email sequence for new customers", "Audit the accessibility of our checkout page",
    "Plan a migration of the billing service to PostgreSQL 17", "Draft a privacy policy for the mobile app",
    "Compare three vector databases for semantic search", "Create a test plan for the payments API",
)
STEP_TITLES = ("Research the requirements", "Draft the approach", "Implement the core", "Write the tests",
               "Review edge cases", "Document the result", "Measure and tune", "Summarise findings")
#: (event_type, weight) of a team's audit trail
AUDIT_MIX = (("llm.call", 35), ("task.status_changed", 25), ("checkpoint.created", 15), ("cost.recorded", 10),
             ("message.created", 6), ("task.assigned", 5), ("task.created", 2), ("team.status_changed", 2))
TASK_FLOW = ("pending", "assigned", "in_progress", "review", "completed")


@dataclass(frozen=True)
class SeedPlan:
    teams: int = 1000
    tasks_per_team: int = 20
    audit: int = 1_000_000
    population: Population = field(default_factory=lambda: Population(10, 10))
    workers: int = 3
    seed: int = 42
    days: int = 90


@dataclass
class TeamRow:
    id: str
    company: int
    company_id: str
    created_by: str
    created_us: int
    end_us: int
    status: str
    members: list[str]
    task_ids: list[str] = field(default_factory=list)


@dataclass
class Dataset:
    """Every table's COPY lines except audit_events, which `audit_lines` streams."""

    plan: SeedPlan
    now_us: int
    tables: dict[str, list[str]]
    teams: list[TeamRow]
    company_ids: list[str]
    user_ids: list[list[str]]


def ts(us: int) -> str:
    return datetime.fromtimestamp(us / 1_000_000, UTC).isoformat(sep=" ")


def _uuid7(rng: random.Random, us: int) -> str:
    value = (us // 1000) << 80 | 0x7 << 76 | rng.getrandbits(12) << 64 | 0b10 << 62 | rng.getrandbits(62)
    h = f"{value:032x}"
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def _line(*values: object) -> str:
    return "\t".join("\\N" if v is None else str(v) for v in values) + "\n"


def _team_status(rng: random.Random, age: float) -> str:
    """Old teams have finished; the newest quarter is where the running ones are."""
    roll = rng.random()
    if age < 0.25:
        return "active" if roll < 0.55 else "paused" if roll < 0.65 else "failed" if roll < 0.7 else "completed"
    return "completed" if roll < 0.88 else "failed" if roll < 0.94 else "cancelled"


def _task_statuses(rng: random.Random, team_status: str, n: int) -> list[str]:
    if team_status == "completed":
        return ["completed"] * n
    done = rng.randrange(0, n)
    if team_status in ("active", "paused"):
        open_now = [rng.choice(("assigned", "in_progress", "review", "revision_requested")) for _ in range(3)]
        return (["completed"] * done + open_now + ["pending"] * n)[:n]
    if team_status == "failed":
        return (["completed"] * done + ["failed", "escalated"] + ["pending"] * n)[:n]
    return (["completed"] * done + ["pending"] * n)[:n]


def build(plan: SeedPlan, password_hash: str, now: datetime | None = None) -> Dataset:
    rng = random.Random(plan.seed)
    now_us = int((now or datetime.now(UTC)).timestamp() * 1_000_000)
    start_us = now_us - plan.days * DAY_US
    pop = plan.population
    tables: dict[str, list[str]] = {name: [] for name in (
        "companies", "users", "teams", "team_members", "tasks", "cost_tracking", "messages", "checkpoints",
        "team_events", "escalations")}
    company_ids: list[str] = []
    user_ids: list[list[str]] = []
    for c in range(pop.companies):
        created = start_us - 30 * DAY_US + c * MINUTE_US
        company_id = _uuid7(rng, created)
        company_ids.append(company_id)
        tables["companies"].append(_line(company_id, f"Load Test Company {c:04d}", 0, ts(created)))
        ids = []
        for u in range(pop.users_per_company):
            user_id = _uuid7(rng, created + u * 1000)
            ids.append(user_id)
            tables["users"].append(_line(user_id, company_id, user_email(c, u), password_hash,
                                         f"Load User {c}-{u}", "admin" if u == 0 else "member", ts(created)))
        user_ids.append(ids)
    span = max(1, plan.days * DAY_US - 4 * 60 * MINUTE_US)
    teams: list[TeamRow] = []
    for i in range(plan.teams):
        created_us = start_us + span * i // max(1, plan.teams) + rng.randrange(0, MINUTE_US)
        c = i % pop.companies
        status = _team_status(rng, 1 - i / max(1, plan.teams))
        end_us = min(now_us - MINUTE_US, created_us + rng.randrange(30, 180) * MINUTE_US)
        team = TeamRow(_uuid7(rng, created_us), c, company_ids[c], rng.choice(user_ids[c]), created_us,
                       end_us, status, [])
        teams.append(team)
        _team_rows(rng, plan, team, i, tables)
    return Dataset(plan, now_us, tables, teams, company_ids, user_ids)


def _team_rows(rng: random.Random, plan: SeedPlan, team: TeamRow, number: int,
               tables: dict[str, list[str]]) -> None:
    goal = rng.choice(GOALS)
    started = team.created_us + MINUTE_US
    for m in range(plan.workers + 1):
        member_id = _uuid7(rng, team.created_us + m)
        team.members.append(member_id)
        role, name, spec = ("manager", "Manager", "planning") if m == 0 else (
            "worker", f"Worker {m}", SPECIALIZATIONS[(m - 1) % len(SPECIALIZATIONS)])
        busy = "busy" if team.status == "active" and m > 0 and rng.random() < 0.5 else "idle"
        model = MODELS[0][1] if m == 0 else MODELS[m % 2][1]
        tables["team_members"].append(_line(member_id, team.id, role, name, spec, model, busy, ts(team.created_us)))
    spent = 0.0
    seq = 0
    events = tables["team_events"]

    def event(kind: str, at: int, task_id: str | None, payload: str) -> None:
        nonlocal seq
        seq += 1
        events.append(_line(team.id, seq, kind, task_id, payload, ts(at), ts(at + 20_000)))

    event("team.status_changed", started, None, '{"from": "pending", "to": "planning"}')
    statuses = _task_statuses(rng, team.status, plan.tasks_per_team)
    step = max(1, (team.end_us - started) // max(1, plan.tasks_per_team + 1))
    for p, status in enumerate(statuses):
        created = started + 1000 + p
        task_id = _uuid7(rng, created)
        team.task_ids.append(task_id)
        worker = team.members[1 + p % plan.workers]
        at = started + step * (p + 1)
        begun = status not in ("pending",)
        criteria = json.dumps([f"{STEP_TITLES[p % 8]} is complete", "The output cites its sources",
                               "A reviewer can reproduce the result"])
        deps = "{" + team.task_ids[p - 1] + "}" if p else "{}"
        output = (f"Result of step {p + 1} for '{goal}': the work covers the scope agreed in the plan, lists "
                  f"assumptions, trade-offs and open questions, and ends with next steps. ") * 2 if status in (
            "review", "completed", "escalated") else None
        revisions = 1 if status == "revision_requested" or (status == "completed" and p % 7 == 3) else 0
        tables["tasks"].append(_line(
            task_id, team.id, team.company_id, f"step-{p + 1}", p, f"{STEP_TITLES[p % 8]} ({p + 1})",
            f"Step {p + 1} of the plan for: {goal}", criteria, deps, SPECIALIZATIONS[p % 6], status,
            worker if begun else None, revisions, 2,
            "Cite the sources of each figure" if revisions else None, output, ts(created),
            ts(at - step // 2) if begun else None, ts(at) if status == "completed" else None, 1 + 4 * begun))
        event("task.created", created, task_id, json.dumps({"title": f"Step {p + 1}", "status": "pending"}))
        if begun:
            event("task.status_changed", at, task_id, json.dumps({"from": "pending", "to": status}))
            provider, model, price = MODELS[p % 2]
            tokens_in, tokens_out = rng.randrange(800, 6000), rng.randrange(200, 2000)
            cost = round((tokens_in + tokens_out) / 1000 * float(price), 8)
            spent += cost
            tables["cost_tracking"].append(_line(
                _uuid7(rng, at), team.company_id, team.id, task_id, worker, provider, model, tokens_in, tokens_out,
                f"{cost:.8f}", "llm", f"seed:{task_id}", ts(at)))
            tables["messages"].append(_line(_uuid7(rng, at), team.id, task_id, worker, f"Worker {1 + p % 3}",
                                            "note", f"Working on step {p + 1}: {STEP_TITLES[p % 8].lower()}.",
                                            ts(at - 1000)))
            for s in range(2):
                tables["checkpoints"].append(_line(_uuid7(rng, at), task_id, s, "step",
                                                   json.dumps({"summary": f"step {s} done"}), "{}",
                                                   ts(at - step // 4 + s * 1000)))
        if status == "escalated":
            tables["escalations"].append(_line(
                _uuid7(rng, at), team.company_id, team.id, task_id, "the reviewer rejected the output twice",
                "invalid_output", "open", None, None, None, f"task-{task_id}", ts(at), None, None))
    finished = team.status in ("completed", "failed", "cancelled")
    event("team.status_changed", team.end_us if finished else started + 2000, None,
          json.dumps({"from": "active" if finished else "planning", "to": team.status}))
    budget = "25.0000" if team.company % 3 else None
    tables["teams"].append(_line(
        team.id, team.company_id, f"{goal[:60]} #{number + 1}", goal,
        team.status, budget, f"{spent:.8f}", plan.workers, "false", "false", f"team-{team.id}", team.created_by,
        ts(team.created_us), ts(started), ts(team.end_us) if finished else None,
        "All tasks approved; summary delivered." if team.status == "completed" else None, 4, seq))


def audit_lines(data: Dataset, chunk: int = 20_000) -> Iterator[str]:
    """`plan.audit` audit rows spread over the teams (2% are team-less logins), in chunks of lines."""
    plan = data.plan
    rng = random.Random(plan.seed + 1)
    kinds = [k for k, w in AUDIT_MIX for _ in range(w)]
    payloads = {
        "llm.call": [json.dumps({"model": m, "input_tokens": 1200 + 97 * i, "output_tokens": 300 + 41 * i})
                     for _, m, _ in MODELS for i in range(8)],
        "task.status_changed": [json.dumps({"from": a, "to": b}) for a, b in itertools.pairwise(TASK_FLOW)],
        "checkpoint.created": [json.dumps({"step_number": i}) for i in range(4)],
        "team.status_changed": ['{"from": "planning", "to": "active"}'],
    }
    logins = plan.audit // 50
    per_team = plan.audit - logins
    buffer: list[str] = []
    for t, team in enumerate(data.teams):
        n = per_team // len(data.teams) + (1 if t < per_team % len(data.teams) else 0)
        span = max(1, team.end_us - team.created_us)
        for e in range(n):
            at = team.created_us + span * e // max(1, n) + rng.randrange(0, 900)
            kind = rng.choice(kinds)
            task_id = rng.choice(team.task_ids) if kind != "team.status_changed" and team.task_ids else None
            actor = ("user", team.created_by) if kind.startswith("team.") else (
                ("agent", rng.choice(team.members)) if kind in ("llm.call", "message.created") else ("system", None))
            options = payloads.get(kind)
            payload = rng.choice(options) if options else "{}"
            buffer.append(_line(_uuid7(rng, at), team.company_id, team.id, task_id, actor[0], actor[1], kind,
                                payload, ts(at)))
            if len(buffer) >= chunk:
                yield "".join(buffer)
                buffer = []
    for i in range(logins):
        c = i % len(data.company_ids)
        at = data.now_us - plan.days * DAY_US + rng.randrange(0, plan.days * DAY_US)
        user = rng.choice(data.user_ids[c])
        buffer.append(_line(_uuid7(rng, at), data.company_ids[c], None, None, "user", user, "user.login", "{}",
                            ts(at)))
        if len(buffer) >= chunk:
            yield "".join(buffer)
            buffer = []
    if buffer:
        yield "".join(buffer)
