"""The seed's `e2e/teams.spec.ts`, ported: "Team Management" — "should create a new team",
"should display team details", "should start a team". Same steps, selectors and texts (the form is
opened and submitted with `button:has-text("Create Team")`, the team opened with
`.team-card:first-child`); run on Chromium, Firefox and WebKit."""

from __future__ import annotations

import pytest

from tests.browser.engines import expect

pytestmark = [pytest.mark.browser, pytest.mark.xdist_group("browser-seed")]


async def test_should_create_a_new_team(page, logged_in):
    await page.goto("/teams")
    await page.click('button:has-text("Create Team")')
    await page.fill('textarea[name="goal"]', "Build a web scraper for product prices")
    await page.fill('input[name="budget_usd"]', "10")
    await page.click('button:has-text("Create Team")')
    await expect(page.locator("text=Team created successfully")).to_be_visible()


async def test_should_display_team_details(page, seeded_team, logged_in):
    await page.goto("/teams")
    await page.click(".team-card:first-child")
    await expect(page).to_have_url(f"/teams/{seeded_team.id}")
    await expect(page.locator('[data-testid="team-goal"]')).to_be_visible()
    await expect(page.locator('[data-testid="team-members"]')).to_be_visible()
    await expect(page.locator('[data-testid="task-list"]')).to_be_visible()


async def test_should_start_a_team(page, account, http, logged_in):
    created = await http.post("/api/teams", headers=account.headers, json={"goal": "Map the trade winds"})
    await page.goto(f"/teams/{created.json()['id']}")
    await expect(page.locator('[data-testid="status-badge"]')).to_have_text("pending")
    await page.click('button:has-text("Start")')
    await expect(page.locator('[data-testid="status-badge"]')).not_.to_have_text("pending")
