"""Fixtures of the ported seed specs: the spec's `page` and `context` on one browser engine at a time
(the module-scoped `engine` parameter: chromium, firefox, webkit; an engine whose binary is absent
is skipped with the reason), and the data the seed assumed: a logged-in user and a team with tasks
in several states."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import psycopg
import pytest

from tests.browser.conftest import Account
from tests.browser.drivers import (
    Xvfb,
    new_playwright_driver,
    new_selenium_driver,
    playwright_browser,
)
from tests.browser.engines import ENGINES, Context, Driver, OfflineHook, Page, expect, missing
from tests.e2e.conftest import AppHost


@pytest.fixture(scope="module", params=ENGINES)
def engine(request: pytest.FixtureRequest) -> str:
    reason = missing(request.param)
    if reason is not None:
        pytest.skip(f"{request.param}: {reason}")
    return str(request.param)


@pytest.fixture(scope="module")
async def engine_browser(engine: str) -> AsyncIterator[Any]:
    """Playwright's browser for chromium and firefox; for webkit the X display its sessions open on."""
    if engine == "webkit":
        xvfb = Xvfb()
        display = await asyncio.to_thread(xvfb.start)
        yield display
        await asyncio.to_thread(xvfb.stop)
    else:
        async with playwright_browser(engine) as browser:
            yield browser


@pytest.fixture
def offline_hook() -> OfflineHook | None:
    """How `context.set_offline` is done on an engine without network emulation (a module may give one)."""
    return None


@pytest.fixture
async def driver(engine: str, engine_browser: Any, dashboard_host: AppHost,
                 offline_hook: OfflineHook | None) -> AsyncIterator[Driver]:
    if engine == "webkit":
        made: Driver = await new_selenium_driver(engine_browser, dashboard_host.base_url, offline_hook)
    else:
        made = await new_playwright_driver(engine, engine_browser, dashboard_host.base_url)
    yield made
    errors = list(getattr(made, "errors", []))
    await made.close()
    assert errors == [], f"uncaught errors in the page: {errors}"


@pytest.fixture
def page(driver: Driver) -> Page:
    return Page(driver)


@pytest.fixture
def context(driver: Driver) -> Context:
    return Context(driver)


async def login(page: Page, account: Account) -> None:
    """The seed's `beforeEach`: sign in through the form."""
    await page.goto("/login")
    await page.fill('input[name="email"]', account.email)
    await page.fill('input[name="password"]', account.password)
    await page.click('button[type="submit"]')
    await expect(page).to_have_url("/dashboard")


@pytest.fixture
async def logged_in(page: Page, account: Account) -> Account:
    await login(page, account)
    return account


@dataclass
class SeededTeam:
    id: str
    tasks: list[dict[str, Any]]


#: (title, status, revisions, minutes from the team's start to the task's start and end, depends on)
SEED_TASKS = [
    ("Research price sources", "completed", 0, (0, 4), []),
    ("Design the scraper", "completed", 1, (4, 11), [0]),
    ("Write the parser", "review", 0, (11, None), [1]),
    ("Store prices in a table", "revision_requested", 1, (12, None), [1]),
    ("Schedule daily runs", "pending", 0, (None, None), [2, 3]),
    ("Alert on price drops", "failed", 0, (5, 9), [0]),
]


def _seed_team(database_url: str, team_id: str) -> list[dict[str, Any]]:
    """Members and tasks in several states, written as the app would have left them mid-run (no in-progress
    task: the seed's filter test expects none). Straight to the tables: a real plan takes a run."""
    start = datetime.now(UTC) - timedelta(minutes=20)
    manager, worker = str(uuid.uuid4()), str(uuid.uuid4())
    ids = [str(uuid.uuid4()) for _ in SEED_TASKS]
    rows: list[dict[str, Any]] = []
    with psycopg.connect(database_url) as conn:
        conn.execute("UPDATE teams SET status = 'active', started_at = %s, version = version + 2 WHERE id = %s",
                     (start, team_id))
        conn.execute("INSERT INTO team_members (id, team_id, role, name, specialization, model) VALUES"
                     " (%s, %s, 'manager', 'Manager', 'planning', 'offline-manager'),"
                     " (%s, %s, 'worker', 'Worker 1', 'general', 'offline-worker')",
                     (manager, team_id, worker, team_id))
        for position, (title, status, revisions, (began, ended), deps) in enumerate(SEED_TASKS):
            row = {
                "id": ids[position], "title": title, "status": status, "position": position,
                "description": f"{title} for the product price scraper.",
                "acceptance_criteria": [f"{title} is done", "the reviewer approves it"],
                "output": f"{title}: finished work." if status in ("completed", "review") else None,
                "started_at": start + timedelta(minutes=began) if began is not None else None,
                "completion_time": start + timedelta(minutes=ended) if ended is not None and status == "completed"
                else None,
                "assigned_to": worker if status != "pending" else None,
                "revision_count": revisions, "dependencies": [ids[d] for d in deps],
            }
            conn.execute(
                "INSERT INTO tasks (id, team_id, company_id, plan_key, position, title, description,"
                " acceptance_criteria, dependencies, status, assigned_to, revision_count, output, started_at,"
                " completion_time) SELECT %(id)s, t.id, t.company_id, %(key)s, %(position)s, %(title)s,"
                " %(description)s, %(criteria)s::jsonb, %(dependencies)s::uuid[], %(status)s, %(assigned_to)s,"
                " %(revision_count)s, %(output)s, %(started_at)s, %(completion_time)s FROM teams t"
                " WHERE t.id = %(team_id)s",
                {**row, "key": f"t{position}", "criteria": json.dumps(row["acceptance_criteria"]),
                 "team_id": team_id})
            rows.append(row)
    return rows


@pytest.fixture
async def seeded_team(http: httpx.AsyncClient, account: Account, dashboard_database_url: str) -> SeededTeam:
    """The team the seed's team and task specs open: the company's newest (first) team card."""
    older = await http.post("/api/teams", headers=account.headers,
                            json={"goal": "Chart the coast of Hispaniola", "name": "Chart the coast"})
    assert older.status_code == 201, older.text
    response = await http.post("/api/teams", headers=account.headers, json={
        "goal": "Build a web scraper for product prices", "name": "Price scraper", "budget_usd": 10})
    assert response.status_code == 201, response.text
    team_id = str(response.json()["id"])
    tasks = await asyncio.to_thread(_seed_team, dashboard_database_url, team_id)
    return SeededTeam(team_id, tasks)
