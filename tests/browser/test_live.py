"""The dashboard follows a running team without reloads, survives the network going away, and lets
a human resolve an escalation."""

from __future__ import annotations

import re

import pytest
from playwright.async_api import expect

from tests.browser.conftest import create_team, login, wait_until

pytestmark = [pytest.mark.browser, pytest.mark.xdist_group("browser")]

RUN_SECONDS = 45_000  # ms, for expect(): a whole offline team run with the test's LLM latency


async def mark_document(page) -> None:
    """A flag that a reload would wipe: its survival proves the page never reloaded."""
    await page.evaluate("window.__noReload = true")


async def assert_not_reloaded(page) -> None:
    assert await page.evaluate("window.__noReload === true"), "the page reloaded"


async def test_starting_a_team_moves_its_badges_to_completed_without_reload(page, account, http):
    team_id = await create_team(http, account, "Build a web scraper for product prices")
    await login(page, account)
    await page.goto(f"/teams/{team_id}")
    badge = page.get_by_test_id("status-badge")
    await expect(badge).to_have_text("pending")
    await mark_document(page)

    await page.get_by_role("button", name="Start").click()
    await expect(badge).not_to_have_text("pending")
    await expect(page.locator(".task-card").first).to_be_visible(timeout=RUN_SECONDS)
    await expect(badge).to_have_text("completed", timeout=RUN_SECONDS)
    statuses = page.locator(".task-card [data-testid=status]")
    count = await statuses.count()
    assert count >= 2
    await expect(statuses).to_have_text(["completed"] * count)
    await expect(page.get_by_test_id("progress")).to_have_text(f"{count} of {count} tasks completed")
    await expect(page.get_by_role("heading", name="Result")).to_be_visible()
    await assert_not_reloaded(page)


async def test_team_cards_on_the_list_update_live(page, account, http):
    team_id = await create_team(http, account, "Plot a course to Tortuga")
    await login(page, account)
    await page.goto("/teams")
    badge = page.locator(".team-card").get_by_test_id("status-badge")
    await expect(badge).to_have_text("pending")
    await expect(page.get_by_test_id("connection-status")).to_have_text("Connected")
    await mark_document(page)

    started = await http.post(f"/api/teams/{team_id}/start", headers=account.headers)
    assert started.status_code == 202
    await expect(badge).to_have_text("completed", timeout=RUN_SECONDS)
    await assert_not_reloaded(page)


async def test_connection_status_follows_the_network_and_missed_events_are_backfilled(page, context, account, http):
    team_id = await create_team(http, account, "Recruit a crew")
    await login(page, account)
    await page.goto(f"/teams/{team_id}")
    status = page.get_by_test_id("connection-status")
    await expect(status).to_have_text("Connected")
    await mark_document(page)

    await context.set_offline(True)
    await expect(status).to_have_text("Disconnected")
    # While the browser is offline the team runs to the end: the page sees none of it live.
    started = await http.post(f"/api/teams/{team_id}/start", headers=account.headers)
    assert started.status_code == 202

    async def team():
        return (await http.get(f"/api/teams/{team_id}", headers=account.headers)).json()

    done = await wait_until(team, lambda t: t["status"] == "completed", 45)
    await expect(page.get_by_test_id("status-badge")).to_have_text("pending")

    await context.set_offline(False)
    await expect(status).to_have_text("Connected")
    await expect(page.get_by_test_id("status-badge")).to_have_text("completed")
    await expect(page.locator(".task-card")).to_have_count(len(done["tasks"]))
    await expect(page.locator(".task-card [data-testid=status]")).to_have_text(["completed"] * len(done["tasks"]))
    await assert_not_reloaded(page)


async def test_a_budget_escalation_is_resolved_from_the_page_and_the_team_finishes(page, account, http):
    team_id = await create_team(http, account, "Write a market analysis of electric bikes", budget_usd=0.0001,
                                start=True)

    async def open_escalations():
        return (await http.get(f"/api/escalations?team_id={team_id}", headers=account.headers)).json()

    [escalation] = await wait_until(open_escalations, lambda items: len(items) == 1, 45)
    await login(page, account)
    await page.goto(f"/teams/{team_id}")
    await expect(page.get_by_role("alert")).to_contain_text("Needs your decision")
    await page.get_by_role("link", name="Resolve").click()
    await expect(page).to_have_url(re.compile(r"/escalations#"))

    item = page.locator(f'[data-escalation-id="{escalation["id"]}"]')
    await expect(item).to_contain_text("budget exceeded")
    await item.get_by_label("Retry", exact=True).check()
    await item.get_by_label("Input", exact=True).fill("50")
    await item.get_by_label("Note", exact=True).fill("more budget, captain")
    await item.get_by_role("button", name="Resolve").click()
    await expect(page.get_by_text("Escalation resolved")).to_be_visible()
    await expect(item).to_have_count(0)
    await expect(page.get_by_text("Nothing waits for you.")).to_be_visible()

    await page.goto(f"/teams/{team_id}")
    await expect(page.get_by_test_id("status-badge")).to_have_text("completed", timeout=RUN_SECONDS)
    resolved = (await http.get(f"/api/escalations?team_id={team_id}&status=resolved", headers=account.headers)).json()
    assert [e["id"] for e in resolved] == [escalation["id"]]
