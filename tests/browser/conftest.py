"""The dashboard under test: one devhost subprocess per module (on a migrated database of its own).

Two ways to drive a browser: `page`/`context` are Debian's Chromium through Playwright (the older
tests, which use Playwright's API directly); `driver` is the engine-neutral page driver of
engines.py, parametrized over chromium, firefox and webkit (module scope: one browser per module and
engine). An engine whose binary is absent is skipped with the reason."""

from __future__ import annotations

import asyncio
import re
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.browser.drivers import Xvfb, new_playwright_driver, new_selenium_driver, playwright_browser
from tests.browser.engines import ENGINES, Driver, OfflineHook, missing
from tests.browser.seed_data import SeededTeam, seed_team_tasks
from tests.conftest import _create_database, _drop_database
from tests.e2e.conftest import AppHost, start_app, stop_app

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-background-networking",
    "--disable-component-update", "--no-first-run", "--disable-sync",
]
PASSWORD = "correct horse battery"
#: Slow enough to watch a team move (planning, active, tasks in progress), fast enough for the suite.
LLM_LATENCY_MS = "60"
_EMULATOR = re.compile(r"Web PubSub\s+emulator ws://(\S+)")


@dataclass
class Account:
    email: str
    password: str
    full_name: str
    headers: dict[str, str]


@pytest.fixture(scope="module")
def dashboard_database_url(pg_server_url: str, migrated_template: str):
    name = f"gp_browser_{uuid.uuid4().hex[:10]}"
    yield _create_database(pg_server_url, name, template=migrated_template)
    _drop_database(pg_server_url, name)


@pytest.fixture(scope="module")
def dashboard_dir(tmp_path_factory) -> Path:
    return Path(tmp_path_factory.mktemp("dashboard"))


@pytest.fixture(scope="module")
async def dashboard_host(dashboard_database_url: str, dashboard_dir: Path) -> AsyncIterator[AppHost]:
    host = await start_app(dashboard_dir, dashboard_database_url,
                           OFFLINE_LLM_LATENCY_MS=LLM_LATENCY_MS, RATE_LIMIT_LOGIN_PER_MINUTE="1000",
                           RATE_LIMIT_WRITES_PER_MINUTE="5000")
    yield host
    await stop_app(host)


@pytest.fixture(scope="module")
def pubsub_connection_string(dashboard_host: AppHost, dashboard_dir: Path) -> str:
    """The service connection string of devhost's Web PubSub emulator (as the app itself gets it)."""
    found = next((m for line in dashboard_host.process.banner if (m := _EMULATOR.search(line))), None)
    if found is None:
        pytest.skip("this devhost runs no Web PubSub emulator")
    key = (dashboard_dir / "data" / "pubsub.key").read_text().strip()
    return f"Endpoint=http://{found.group(1)};AccessKey={key};Version=1.0;"


@pytest.fixture
async def http(dashboard_host: AppHost) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=dashboard_host.base_url, timeout=20) as client:
        yield client


@pytest.fixture
async def account(http: httpx.AsyncClient) -> Account:
    """A company of its own per test, so that what one test creates never shows in another."""
    email = f"{uuid.uuid4().hex[:10]}@example.com"
    response = await http.post("/api/auth/register", json={
        "company_name": "Black Pearl", "email": email, "password": PASSWORD, "full_name": "Anne Bonny"})
    assert response.status_code == 201, response.text
    return Account(email, PASSWORD, "Anne Bonny", {"Authorization": f"Bearer {response.json()['token']}"})


@pytest.fixture(scope="module")
async def browser() -> AsyncIterator[Any]:
    if not CHROMIUM.exists():
        pytest.skip(f"no Chromium at {CHROMIUM}: install it with `apt-get install -y chromium`")
    from playwright.async_api import async_playwright, expect

    expect.set_options(timeout=10_000)  # a cold devhost (first imports, first argon2 hash) can be slow

    async with async_playwright() as playwright:
        chromium = await playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS)
        yield chromium
        await chromium.close()


@pytest.fixture
async def context(browser: Any, dashboard_host: AppHost) -> AsyncIterator[Any]:
    ctx = await browser.new_context(base_url=dashboard_host.base_url, viewport={"width": 1280, "height": 900})
    ctx.set_default_timeout(10_000)
    errors: list[str] = []
    ctx.on("weberror", lambda error: errors.append(str(error.error)))
    yield ctx
    await ctx.close()
    assert errors == [], f"uncaught errors in the page: {errors}"


@pytest.fixture
async def page(context: Any) -> Any:
    return await context.new_page()


async def login(page: Any, account: Account) -> None:
    """Sign in through the form, as a user would; lands on /dashboard."""
    from playwright.async_api import expect

    await page.goto("/login")
    await page.fill('input[name="email"]', account.email)
    await page.fill('input[name="password"]', account.password)
    await page.click('button[type="submit"]')
    await expect(page).to_have_url(re.compile(r"/dashboard$"))


async def create_team(http: httpx.AsyncClient, account: Account, goal: str, *, start: bool = False,
                      **extra: Any) -> str:
    response = await http.post("/api/teams", headers=account.headers, json={"goal": goal, **extra})
    assert response.status_code == 201, response.text
    team_id = str(response.json()["id"])
    if start:
        started = await http.post(f"/api/teams/{team_id}/start", headers=account.headers)
        assert started.status_code == 202, started.text
    return team_id


async def wait_until(fetch: Callable[[], Awaitable[Any]], ready: Callable[[Any], bool], seconds: float = 30) -> Any:
    """Poll `fetch` until `ready(result)`, failing after `seconds` with the last result."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + seconds
    while True:
        result = await fetch()
        if ready(result):
            return result
        if loop.time() > deadline:
            raise AssertionError(f"not ready after {seconds}s: {str(result)[:500]}")
        await asyncio.sleep(0.1)


async def finished_team(http: httpx.AsyncClient, account: Account, goal: str) -> dict[str, Any]:
    """A team that ran to the end with the offline provider (its full read model)."""
    team_id = await create_team(http, account, goal, start=True)

    async def fetch() -> dict[str, Any]:
        return dict((await http.get(f"/api/teams/{team_id}", headers=account.headers)).json())

    return dict(await wait_until(fetch, lambda t: t["status"] in ("completed", "failed", "cancelled"), 60))


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
async def seeded_team(http: httpx.AsyncClient, account: Account, dashboard_database_url: str) -> SeededTeam:
    """The team the seed's team and task specs open: the company's newest (first) team card."""
    older = await http.post("/api/teams", headers=account.headers,
                            json={"goal": "Chart the coast of Hispaniola", "name": "Chart the coast"})
    assert older.status_code == 201, older.text
    response = await http.post("/api/teams", headers=account.headers, json={
        "goal": "Build a web scraper for product prices", "name": "Price scraper", "budget_usd": 10})
    assert response.status_code == 201, response.text
    team_id = str(response.json()["id"])
    tasks = await asyncio.to_thread(seed_team_tasks, dashboard_database_url, team_id)
    return SeededTeam(team_id, tasks)
