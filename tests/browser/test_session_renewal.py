"""An open dashboard renews its token before it expires (POST /api/auth/refresh), so an active
session is never cut; a revoked session ends at the next renewal. The page's clock is Playwright's
fake one, fast-forwarded to the renewal time; the server's is real."""

from __future__ import annotations

import asyncio
import json
import re
from typing import Any

import pytest
from playwright.async_api import expect

from tests.browser.conftest import login

pytestmark = [pytest.mark.browser, pytest.mark.xdist_group("browser")]


async def stored_session(page: Any) -> dict[str, Any]:
    return json.loads(await page.evaluate("sessionStorage.getItem('gp.session')") or "null") or {}


async def until_token_changes(page: Any, old: str, seconds: float = 10) -> dict[str, Any]:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + seconds
    while True:
        current = await stored_session(page)
        if current.get("token") not in (None, old):
            return current
        assert loop.time() < deadline, "the page did not renew its token"
        await asyncio.sleep(0.1)


async def test_an_open_dashboard_renews_its_token_before_it_expires(page, account, http):
    await page.clock.install()
    await login(page, account)
    first = await stored_session(page)
    renewals: list[str] = []
    page.on("request", lambda r: renewals.append(r.method) if r.url.endswith("/api/auth/refresh") else None)

    await page.clock.fast_forward("50:00")  # an hour's token: nothing to do yet
    await asyncio.sleep(1.1)  # real time too: token times have whole seconds, so the new one differs
    assert renewals == [] and (await stored_session(page))["token"] == first["token"]

    await page.clock.fast_forward("06:00")  # 56 min: within the last five minutes
    renewed = await until_token_changes(page, first["token"])
    assert renewals == ["POST"]
    assert renewed["user"] == first["user"] and renewed["expires_at"] > first["expires_at"]
    teams = await http.get("/api/teams", headers={"Authorization": f"Bearer {renewed['token']}"})
    assert teams.status_code == 200
    await page.get_by_role("link", name=re.compile("Teams")).first.click()
    await expect(page).to_have_url(re.compile(r"/teams$"))


async def test_a_revoked_session_ends_at_the_next_renewal(page, account, http):
    await page.clock.install()
    await login(page, account)
    assert (await http.post("/api/auth/logout-all", headers=account.headers)).status_code == 204
    await page.clock.fast_forward("56:00")
    await expect(page).to_have_url(re.compile(r"/login"))
    assert await stored_session(page) == {}
