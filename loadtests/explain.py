"""`EXPLAIN (ANALYZE, BUFFERS)` of every API read, on seeded data: `python -m loadtests.explain DSN`.

The statements are not copied here: each read goes through the real service with a connection that
explains every statement it is asked to run (same SQL, same parameters) before running it, so the
plans are those of the code as it is. A sequential scan on a large table is a finding.
"""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any
from uuid import UUID

from shared.db.database import Conn, Database, make_pool
from shared.services import Services

LARGE_TABLES = {"audit_events", "tasks", "team_events", "checkpoints", "messages", "cost_tracking", "team_members"}


@dataclass
class Plan:
    endpoint: str
    statement: str
    execution_ms: float = 0.0
    shared_hit: int = 0
    shared_read: int = 0
    seq_scans: list[str] = field(default_factory=list)
    nodes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not any(t in LARGE_TABLES for t in self.seq_scans)


def _walk(node: dict[str, Any], plan: Plan) -> None:
    kind = node["Node Type"]
    relation = node.get("Relation Name")
    index = node.get("Index Name")
    plan.nodes.append(f"{kind}{' on ' + relation if relation else ''}{' using ' + index if index else ''}")
    if kind == "Seq Scan" and relation:
        plan.seq_scans.append(relation)
    for sub in node.get("Plans", []):
        _walk(sub, plan)


class _ExplainingConnection:
    """Wraps a connection: each statement is explained first (its plan recorded), then run. Both paths
    a repository takes: `conn.execute`, and `conn.cursor(row_factory=...)` (the typed rows of
    shared/db/rows.py)."""

    def __init__(self, conn: Conn, sink: list[Plan], endpoint: str) -> None:
        self._conn = conn
        self._sink = sink
        self._endpoint = endpoint

    async def explain(self, statement: Any, params: Any = None) -> None:
        text = statement if isinstance(statement, str) else statement.as_string(self._conn)
        cur = await self._conn.execute("EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) " + text, params)
        row = await cur.fetchone()
        document = (row["QUERY PLAN"] if isinstance(row, dict) else row[0])[0]  # type: ignore[index]
        plan = Plan(self._endpoint, " ".join(text.split())[:160], execution_ms=document["Execution Time"],
                    shared_hit=document["Plan"].get("Shared Hit Blocks", 0),
                    shared_read=document["Plan"].get("Shared Read Blocks", 0))
        _walk(document["Plan"], plan)
        self._sink.append(plan)

    async def execute(self, statement: Any, params: Any = None) -> Any:
        await self.explain(statement, params)
        return await self._conn.execute(statement, params)

    def cursor(self, *args: Any, **kwargs: Any) -> _ExplainingCursor:
        return _ExplainingCursor(self._conn.cursor(*args, **kwargs), self)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._conn, name)


class _ExplainingCursor:
    """A cursor of `_ExplainingConnection`: `execute` explains the statement first."""

    def __init__(self, cursor: Any, owner: _ExplainingConnection) -> None:
        self._cursor = cursor
        self._owner = owner

    async def __aenter__(self) -> _ExplainingCursor:
        await self._cursor.__aenter__()
        return self

    async def __aexit__(self, *exc: object) -> Any:
        return await self._cursor.__aexit__(*exc)

    async def execute(self, statement: Any, params: Any = None) -> _ExplainingCursor:
        await self._owner.explain(statement, params)
        await self._cursor.execute(statement, params)
        return self

    def __getattr__(self, name: str) -> Any:
        return getattr(self._cursor, name)


class ExplainingDatabase(Database):
    def __init__(self, database: Database) -> None:
        super().__init__(database.pool)
        self.plans: list[Plan] = []
        self.endpoint = ""

    @asynccontextmanager
    async def connection(self) -> AsyncIterator[Any]:
        async with super().connection() as conn:
            yield _ExplainingConnection(conn, self.plans, self.endpoint)


async def _sample(db: Database) -> dict[str, Any]:
    """The busiest company, one of its teams with tasks, one of those tasks."""
    async with db.connection() as conn:
        cur = await conn.execute(
            "SELECT t.company_id, t.id AS team_id, k.id AS task_id FROM teams t JOIN tasks k ON k.team_id = t.id"
            " WHERE t.company_id = (SELECT company_id FROM teams GROUP BY company_id ORDER BY count(*) DESC LIMIT 1)"
            " AND k.status <> 'pending' ORDER BY t.created_at DESC LIMIT 1")
        row = await cur.fetchone()
    if row is None:
        raise SystemExit("the database has no started task: seed it first (python -m loadtests.seed)")
    return dict(row)


async def explain_all(dsn: str) -> list[Plan]:
    pool = make_pool(dsn, min_size=1, max_size=2, name="explain")
    await pool.open(wait=True)
    try:
        db = ExplainingDatabase(Database(pool))
        services = Services.build(db)
        s = await _sample(Database(pool))
        company, team, task = UUID(str(s["company_id"])), UUID(str(s["team_id"])), UUID(str(s["task_id"]))
        page = await services.audit.query(company, limit=100)
        teams_page = await services.teams.list_page(company, limit=50)
        reads: list[tuple[str, Callable[[], Awaitable[Any]]]] = [
            ("GET /api/teams", lambda: services.teams.list_page(company, limit=50)),
            ("GET /api/teams (page 2)", lambda: services.teams.list_page(company, limit=50,
                                                                        cursor=teams_page.next_cursor)),
            ("GET /api/teams?status=active", lambda: services.teams.list_page(company, status=_active())),
            ("GET /api/teams?include=members,tasks", lambda: services.teams.list_page(
                company, include_members=True, include_tasks=True)),
            ("GET /api/teams/{id}", lambda: services.teams.get(company, team)),
            ("GET /api/teams/{id}/tasks", lambda: _team_tasks(services, company, team)),
            ("GET /api/teams/{id}/messages", lambda: services.messages.list(team)),
            ("GET /api/teams/{id}/costs", lambda: services.costs.totals(team)),
            ("GET /api/teams/{id}/events", lambda: services.events.after(team, 0)),
            ("GET /api/tasks?status=active&limit=50", lambda: services.tasks.list_for_company(
                company, status="active", limit=50)),
            ("GET /api/tasks?status=completed", lambda: services.tasks.list_for_company(company, status="completed")),
            ("GET /api/tasks?team_id=", lambda: services.tasks.list_for_company(company, team_id=team)),
            ("GET /api/tasks/{id}", lambda: services.tasks.get(task, company_id=company)),
            ("GET /api/tasks/{id}/history", lambda: services.tasks.history(task, company_id=company)),
            ("GET /api/tasks/{id}/checkpoints", lambda: services.checkpoints.list(task)),
            ("GET /api/audit?limit=100", lambda: services.audit.query(company, limit=100)),
            ("GET /api/audit (page 2)", lambda: services.audit.query(company, limit=100, cursor=page.next_cursor)),
            ("GET /api/audit?team_id=", lambda: services.audit.query(company, team_id=team)),
            ("GET /api/audit?event_type=llm.call", lambda: services.audit.query(company, event_type="llm.call")),
            ("GET /api/audit?team_id=&event_type=", lambda: services.audit.query(
                company, team_id=team, event_type="task.status_changed")),
            ("GET /api/escalations", lambda: services.escalations.list(company)),
        ]
        for endpoint, read in reads:
            db.endpoint = endpoint
            await read()
        return [p for p in db.plans if p.endpoint]
    finally:
        await pool.close()


def _active() -> Any:
    from shared.domain.states import TeamStatus

    return TeamStatus.ACTIVE


async def _team_tasks(services: Services, company: UUID, team: UUID) -> Any:
    await services.teams.get_scope_for(company, team)
    return await services.tasks.list_for_team(team)


def render(plans: list[Plan]) -> list[str]:
    lines = ["| endpoint | statement (start) | exec ms | buffers hit/read | plan | seq scan on large table |",
             "|---|---|---:|---:|---|---|"]
    for p in plans:
        nodes = ", ".join(dict.fromkeys(n for n in p.nodes if " on " in n))
        lines.append(f"| {p.endpoint} | `{p.statement[:70]}…` | {p.execution_ms:.2f} | {p.shared_hit}/{p.shared_read}"
                     f" | {nodes} | {'**' + ', '.join(p.seq_scans) + '**' if not p.ok else 'none'} |")
    return lines


def main(argv: list[str] | None = None) -> int:
    args = argv if argv is not None else sys.argv[1:]
    if not args:
        print("usage: python -m loadtests.explain DSN [--json]")
        return 2
    plans = asyncio.run(explain_all(args[0]))
    if "--json" in args:
        print(json.dumps([p.__dict__ for p in plans], indent=1))
    else:
        print("\n".join(render(plans)))
    bad = [p for p in plans if not p.ok]
    print(f"\n{len(plans)} statements, {len(bad)} with a sequential scan on a large table")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
