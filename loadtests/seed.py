"""Fill a database for load tests with COPY: `python -m loadtests.seed --teams 1000 --tasks-per-team 20
--audit 1000000`.

Companies, load-test users (one argon2id hash shared by all: see `loadtests.accounts`), teams with
members, tasks, costs, messages, checkpoints, outbox events, escalations and the audit log. The
audit table's secondary indexes are dropped for the COPY and rebuilt afterwards, in the same
transaction (bulk index builds are several times faster than a million inserts into five btrees).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import psycopg
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from loadtests.accounts import PASSWORD, Population
from loadtests.seed_data import Dataset, SeedPlan, audit_lines, build
from shared.db.migrate import migrate_sync
from shared.services.auth import hash_password

DEFAULT_URL = "postgresql://postgres@127.0.0.1:5432/ghost_pirates_load"

COLUMNS: dict[str, str] = {
    "companies": "id, name, generation, created_at",
    "users": "id, company_id, email, password_hash, full_name, role, created_at",
    "teams": "id, company_id, name, goal, status, budget_usd, spent_usd, workers, approve_plan, "
             "awaiting_plan_approval, instance_id, created_by, created_at, started_at, completed_at, result, version, "
             "event_seq",
    "team_members": "id, team_id, role, name, specialization, model, status, created_at",
    "tasks": "id, team_id, company_id, plan_key, position, title, description, acceptance_criteria, dependencies, "
             "specialization, status, assigned_to, revision_count, max_revisions, feedback, output, created_at, "
             "started_at, completion_time, version",
    "cost_tracking": "id, company_id, team_id, task_id, member_id, provider, model, input_tokens, output_tokens, "
                     "cost_usd, purpose, idempotency_key, created_at",
    "messages": "id, team_id, task_id, member_id, sender, kind, content, created_at",
    "checkpoints": "id, task_id, step_number, checkpoint_type, step_output, state, created_at",
    "team_events": "team_id, seq, type, task_id, payload, created_at, published_at",
    "escalations": "id, company_id, team_id, task_id, reason, failure_type, status, action, note, input, "
                   "instance_id, created_at, resolved_at, resolved_by",
    "audit_events": "id, company_id, team_id, task_id, actor_type, actor_id, event_type, payload, created_at",
}
APP_TABLES = ("team_events", "escalations", "audit_events", "cost_tracking", "checkpoints", "messages", "tasks",
              "team_members", "teams", "users", "companies")


@dataclass(frozen=True)
class SeedResult:
    rows: dict[str, int]
    seconds: float


def ensure_database(url: str) -> None:
    """Create the database of `url` on its server when it does not exist yet."""
    params = conninfo_to_dict(url)
    name = str(params.get("dbname") or "postgres")
    admin = make_conninfo("", **{**params, "dbname": "postgres"})
    with psycopg.connect(admin, autocommit=True) as conn:
        if conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone() is None:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))


def _copy(conn: psycopg.Connection[tuple[object, ...]], table: str, chunks: Iterable[str]) -> int:
    rows = 0
    statement = sql.SQL("COPY {} ({}) FROM STDIN").format(sql.Identifier(table), sql.SQL(COLUMNS[table]))
    with conn.cursor().copy(statement) as copy:
        for chunk in chunks:
            copy.write(chunk)
            rows += chunk.count("\n")
    return rows


def load(url: str, data: Dataset, *, replace: bool = False, progress: Callable[[str], None] = print) -> dict[str, int]:
    """COPY the data set into an already migrated database (empty, or emptied with `replace`)."""
    counts: dict[str, int] = {}
    with psycopg.connect(url) as conn:
        present = conn.execute("SELECT count(*) FROM teams").fetchone()
        if present and present[0] and not replace:
            raise SystemExit(f"{present[0]} teams already in the database; use --replace to empty it first")
        if replace:
            conn.execute("TRUNCATE " + ", ".join(APP_TABLES) + " RESTART IDENTITY CASCADE")
        conn.execute("SET LOCAL maintenance_work_mem = '256MB'")
        conn.execute("SET LOCAL synchronous_commit = off")
        indexes = conn.execute(
            "SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = current_schema()"
            " AND tablename = 'audit_events' AND indexname <> 'audit_events_pkey'").fetchall()
        for name, _ in indexes:
            conn.execute(sql.SQL("DROP INDEX {}").format(sql.Identifier(str(name))))
        for table in COLUMNS:
            if table == "audit_events":
                continue
            lines = data.tables[table]
            counts[table] = _copy(conn, table, ["".join(lines[i:i + 5000]) for i in range(0, len(lines), 5000)])
        progress(f"  core tables copied ({sum(counts.values())} rows)")
        counts["audit_events"] = _copy(conn, "audit_events", audit_lines(data))
        progress(f"  audit_events copied ({counts['audit_events']} rows); rebuilding {len(indexes)} indexes")
        for _, definition in indexes:
            conn.execute(str(definition).encode())
        conn.commit()
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("VACUUM (ANALYZE) " + ", ".join(APP_TABLES))
    return counts


def seed(url: str, plan: SeedPlan, *, replace: bool = False, progress: Callable[[str], None] = print) -> SeedResult:
    """Create (if needed), migrate and fill the database; return row counts and the time taken."""
    started = time.perf_counter()
    ensure_database(url)
    migrate_sync(url)
    password_hash = asyncio.run(hash_password(PASSWORD))
    data = build(plan, password_hash)
    progress(f"  generated {len(data.teams)} teams in {time.perf_counter() - started:.1f}s")
    counts = load(url, data, replace=replace, progress=progress)
    return SeedResult(counts, time.perf_counter() - started)


def parse_plan(args: argparse.Namespace) -> SeedPlan:
    if args.tasks_per_team < 1 or args.teams < 1 or args.companies < 1 or args.users_per_company < 1:
        raise SystemExit("teams, tasks per team, companies and users per company must be at least 1")
    return SeedPlan(teams=args.teams, tasks_per_team=args.tasks_per_team, audit=args.audit,
                    population=Population(args.companies, args.users_per_company), seed=args.seed)


def add_plan_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--teams", type=int, default=1000)
    parser.add_argument("--tasks-per-team", type=int, default=20)
    parser.add_argument("--audit", type=int, default=1_000_000, help="audit events in total")
    parser.add_argument("--companies", type=int, default=10, help="teams are spread evenly over them")
    parser.add_argument("--users-per-company", type=int, default=10, help="load-test logins per company")
    parser.add_argument("--seed", type=int, default=42, help="random seed (the data set is deterministic)")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m loadtests.seed", description=__doc__.split("\n")[0])
    parser.add_argument("--database-url", default=os.environ.get("DATABASE_URL", DEFAULT_URL),
                        help="created when missing (default: $DATABASE_URL, else %(default)s)")
    parser.add_argument("--replace", action="store_true", help="empty the app's tables first")
    add_plan_arguments(parser)
    args = parser.parse_args(argv)
    plan = parse_plan(args)
    result = seed(args.database_url, plan, replace=args.replace)
    print(f"seeded {', '.join(f'{n} {t}' for t, n in result.rows.items())} in {result.seconds:.1f}s")
    print(f"logins: {plan.population.emails()[0]} ... ({plan.population.companies} companies x "
          f"{plan.population.users_per_company} users), password {PASSWORD!r}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
