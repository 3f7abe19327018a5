"""Reads without N+1: the team endpoints run one SQL statement per request, whatever the data size."""

from __future__ import annotations

import contextvars
import json
import uuid
from collections.abc import AsyncIterator

import azure.functions as func
import psycopg
import pytest

from functions.http_common import ROUTES, run
from shared.config import get_settings
from shared.domain.models import Actor, PlannedTaskIn, Principal, TeamCreate
from shared.runtime import get_context, reset_context

_statements: contextvars.ContextVar[list[str] | None] = contextvars.ContextVar("statements", default=None)


@pytest.fixture
async def app(pool, database_url, monkeypatch) -> AsyncIterator[None]:
    """The app context on the test database, with every statement of the current task counted."""
    monkeypatch.setenv("DATABASE_URL", database_url)
    monkeypatch.delenv("REDIS_URL", raising=False)
    get_settings.cache_clear()
    await reset_context()
    original = psycopg.AsyncCursor.execute

    async def counting(self, query, params=None, **kwargs):
        seen = _statements.get()
        if seen is not None:
            seen.append(str(query)[:80])
        return await original(self, query, params, **kwargs)

    monkeypatch.setattr(psycopg.AsyncCursor, "execute", counting)
    yield
    await reset_context()
    get_settings.cache_clear()


async def call(name: str, principal: Principal, *, route: dict[str, str] | None = None,
               query: dict[str, str] | None = None) -> tuple[func.HttpResponse, list[str]]:
    handler = _handlers()[name]
    spec = next(r for r in ROUTES if r.name == name)
    ctx = await get_context()
    token = (await ctx.sessions.issue(await ctx.services.auth.get_user(principal.user_id, principal.company_id))).token
    request = func.HttpRequest(method=spec.method, url=f"http://test{spec.path}",
                               headers={"Authorization": f"Bearer {token}"}, params=query or {},
                               route_params=route or {}, body=b"")
    seen: list[str] = []
    marker = _statements.set(seen)
    try:
        response = await run(request, spec, handler)
    finally:
        _statements.reset(marker)
    return response, seen


def _handlers():
    from functions import http_audit, http_teams

    return {"teams_get": http_teams.teams_get, "teams_list": http_teams.teams_list,
            "audit_list": http_audit.audit_list}


async def _big_company(services, principal: Principal, teams: int, tasks: int) -> list[uuid.UUID]:
    ids = []
    for t in range(teams):
        team = await services.teams.create(principal, TeamCreate(goal=f"goal {t}", workers=3))
        await services.tasks.create_plan(team.id, [
            PlannedTaskIn(key=f"k{i}", title=f"task {i}", acceptance_criteria=["ok"]) for i in range(tasks)
        ], Actor.system())
        ids.append(team.id)
    return ids


async def test_team_detail_is_one_query_for_any_number_of_tasks(app, services, principal):
    small, big = await _big_company(services, principal, 1, 2) + await _big_company(services, principal, 1, 12)
    for team_id, expected_tasks in ((small, 2), (big, 12)):
        response, statements = await call("teams_get", principal, route={"team_id": str(team_id)})
        assert response.status_code == 200
        assert len(json.loads(response.get_body())["tasks"]) == expected_tasks
        assert len(statements) == 1, statements


async def test_team_list_with_members_and_tasks_is_one_query_for_any_number_of_teams(app, services, principal):
    await _big_company(services, principal, 2, 3)
    _, few = await call("teams_list", principal, query={"include": "members,tasks"})
    await _big_company(services, principal, 6, 3)
    response, many = await call("teams_list", principal, query={"include": "members,tasks", "limit": "100"})
    body = json.loads(response.get_body())
    assert len(body) == 8 and all(len(t["tasks"]) == 3 and len(t["members"]) == 4 for t in body)
    assert len(few) == len(many) == 1, many


async def test_repeated_team_detail_is_served_from_the_cache_without_sql(app, services, principal):
    [team_id] = await _big_company(services, principal, 1, 3)
    await call("teams_get", principal, route={"team_id": str(team_id)})
    response, statements = await call("teams_get", principal, route={"team_id": str(team_id)})
    assert response.status_code == 200 and statements == []


async def test_a_login_keeps_team_reads_cached_but_refreshes_the_audit_log(app, services, principal):
    [team_id] = await _big_company(services, principal, 1, 2)
    await call("teams_get", principal, route={"team_id": str(team_id)})
    user = await services.auth.get_user(principal.user_id, principal.company_id)
    await call("audit_list", principal)
    ctx = await get_context()  # its Database carries the cache listener
    await ctx.services.auth.login(user.email, "correct horse battery")
    _, statements = await call("teams_get", principal, route={"team_id": str(team_id)})
    assert statements == []
    response, statements = await call("audit_list", principal)
    assert len(statements) == 1
    assert json.loads(response.get_body())[0]["event_type"] == "user.login"
