"""The dashboard in Chromium: login, logout, teams, team detail, filters, task detail, deep links."""

from __future__ import annotations

import re

import pytest
from playwright.async_api import expect

from tests.browser.conftest import create_team, finished_team, login

pytestmark = [pytest.mark.browser, pytest.mark.xdist_group("browser")]


async def test_login_with_right_credentials_greets_the_user_on_the_dashboard(page, account, http):
    await create_team(http, account, "Chart the Caribbean", budget_usd=2)
    await login(page, account)
    await expect(page.get_by_role("heading", level=1)).to_have_text(f"Welcome, {account.full_name}")
    summary = page.get_by_label("Summary")
    await expect(summary).to_contain_text("Teams1")
    await expect(summary).to_contain_text("Open escalations0")
    await expect(summary).to_contain_text("of $2.00 budgeted")


async def test_login_with_a_wrong_password_says_invalid_credentials_and_stays(page, account):
    await page.goto("/login")
    await page.fill('input[name="email"]', account.email)
    await page.fill('input[name="password"]', "not the password")
    await page.click('button[type="submit"]')
    await expect(page.get_by_role("alert")).to_have_text("Invalid credentials")
    await expect(page).to_have_url(re.compile(r"/login$"))
    assert await page.evaluate("sessionStorage.length") == 0


async def test_logout_from_the_user_menu_returns_to_login_and_forgets_the_session(page, account):
    await login(page, account)
    await page.get_by_test_id("user-menu").click()
    await page.get_by_role("menuitem", name="Logout").click()
    await expect(page).to_have_url(re.compile(r"/login$"))
    await page.goto("/teams")
    await expect(page).to_have_url(re.compile(r"/login\?next=%2Fteams$"))


async def test_register_creates_a_company_and_signs_in(page):
    await page.goto("/register")
    await page.fill('input[name="company_name"]', "Queen Anne's Revenge")
    await page.fill('input[name="full_name"]', "Edward Teach")
    await page.fill('input[name="email"]', "teach@example.com")
    await page.fill('input[name="password"]', "blackbeard-1718")
    await page.click('button[type="submit"]')
    await expect(page.get_by_role("heading", level=1)).to_have_text("Welcome, Edward Teach")


async def test_create_team_shows_success_and_the_new_card(page, account):
    await login(page, account)
    await page.get_by_role("link", name="Teams", exact=True).click()
    await expect(page.locator(".team-card")).to_have_count(0)
    await page.get_by_role("button", name="Create Team").click()
    # While the form is open its submit is the only "Create Team" button in the page.
    await expect(page.locator("button", has_text="Create Team")).to_have_count(1)
    await expect(page.locator("form button[type=submit]")).to_have_text("Create Team")
    await page.fill('textarea[name="goal"]', "Find the buried treasure of Isla de Muerta")
    await page.fill('input[name="budget_usd"]', "3.5")
    await page.get_by_role("button", name="Create Team").click()
    await expect(page.get_by_text("Team created successfully")).to_be_visible()
    card = page.locator(".team-card")
    await expect(card).to_have_count(1)
    await expect(card).to_contain_text("Find the buried treasure of Isla de Muerta")
    await expect(card.get_by_test_id("status-badge")).to_have_text("pending")
    await expect(card).to_contain_text("of $3.50")
    await expect(page.locator("form")).to_have_count(0)
    await expect(page.get_by_role("button", name="Create Team")).to_be_visible()


async def test_a_card_opens_from_anywhere_on_it_and_from_the_keyboard(page, account, http):
    team = await finished_team(http, account, "Sail around the Horn")
    await login(page, account)
    await page.goto("/teams")
    # A corner of the card, inside its padding: not the title link, not any text (the list may redraw
    # meanwhile, which a locator click survives).
    await page.locator(".team-card").first.click(position={"x": 6, "y": 6})
    await expect(page).to_have_url(re.compile(f"/teams/{team['id']}$"))

    await page.locator(".task-card .task-title").first.focus()
    await page.keyboard.press("Enter")
    await expect(page).to_have_url(re.compile(f"/tasks/{team['tasks'][0]['id']}$"))


async def test_team_detail_shows_goal_members_tasks_progress_and_cost(page, account, http):
    team = await finished_team(http, account, "Build a web scraper for product prices")
    await login(page, account)
    await page.goto("/teams")
    await page.locator(".team-card a").first.click()
    await expect(page).to_have_url(re.compile(f"/teams/{team['id']}$"))
    await expect(page.get_by_test_id("team-goal")).to_have_text("Build a web scraper for product prices")
    members = page.get_by_test_id("team-members").locator("li")
    await expect(members).to_have_count(len(team["members"]))
    await expect(page.get_by_test_id("team-members")).to_contain_text("Manager")
    cards = page.get_by_test_id("task-list").locator(".task-card")
    await expect(cards).to_have_count(len(team["tasks"]))
    for task in team["tasks"]:
        await expect(page.locator(f'.task-card[data-task-id="{task["id"]}"]').get_by_test_id("status")).to_have_text(
            task["status"])
    total = len(team["tasks"])
    await expect(page.get_by_test_id("progress")).to_have_text(f"{total} of {total} tasks completed")
    await expect(page.get_by_role("img", name=re.compile("Spend by member"))).to_be_visible()
    await expect(page.get_by_test_id("messages").locator("li").first).to_contain_text("Plan")


async def test_filters_show_only_tasks_in_that_status_and_survive_a_reload(page, account, http):
    team = await finished_team(http, account, "Write a pirate code of conduct")
    await login(page, account)
    await page.goto(f"/teams/{team['id']}")
    cards = page.locator(".task-card")
    await expect(cards).to_have_count(len(team["tasks"]))
    visible = page.locator(".task-card:visible")

    await page.get_by_test_id("filter-in-progress").click()
    await expect(cards).to_have_count(0)  # filtered-out cards are not in the DOM at all
    await expect(page.get_by_test_id("task-list")).to_contain_text("No task matches this filter")
    await expect(page.get_by_test_id("filter-in-progress")).to_have_attribute("aria-pressed", "true")
    await page.get_by_test_id("filter-completed").click()
    await expect(visible).to_have_count(len(team["tasks"]))
    await page.reload()
    await expect(page).to_have_url(re.compile(r"\?status=completed$"))
    await expect(page.get_by_test_id("filter-completed")).to_have_attribute("aria-pressed", "true")
    await expect(visible).to_have_count(len(team["tasks"]))
    await page.get_by_test_id("filter-all").click()
    await expect(visible).to_have_count(len(team["tasks"]))


async def test_task_detail_shows_criteria_output_checkpoints_and_history(page, account, http):
    team = await finished_team(http, account, "Map the trade winds")
    task = team["tasks"][0]
    await login(page, account)
    await page.goto(f"/teams/{team['id']}")
    await page.locator(f'.task-card[data-task-id="{task["id"]}"] a').click()
    await expect(page).to_have_url(re.compile(f"/tasks/{task['id']}$"))
    await expect(page.get_by_test_id("task-title")).to_have_text(task["title"])
    await expect(page.get_by_test_id("task-description")).to_have_text(task["description"])
    criteria = page.get_by_test_id("acceptance-criteria").locator("li")
    await expect(criteria).to_have_text(task["acceptance_criteria"])
    await expect(page.get_by_test_id("task-output")).to_contain_text(task["title"])
    await expect(page.get_by_test_id("checkpoints").locator("li").first).to_contain_text("Step 1")

    await page.get_by_role("tab", name="History").click()
    timeline = page.get_by_test_id("audit-timeline")
    await expect(timeline).to_be_visible()
    await expect(timeline.locator("li").first).to_contain_text("task.created")
    await expect(timeline).to_contain_text("review → completed")


async def test_reload_on_a_deep_link_keeps_the_user_there(page, account, http):
    team = await finished_team(http, account, "Repair the mainsail")
    await login(page, account)
    await page.goto(f"/tasks/{team['tasks'][0]['id']}")
    await expect(page.get_by_test_id("task-title")).to_have_text(team["tasks"][0]["title"])
    await page.reload()
    await expect(page).to_have_url(re.compile(f"/tasks/{team['tasks'][0]['id']}$"))
    await expect(page.get_by_test_id("task-title")).to_have_text(team["tasks"][0]["title"])


async def test_a_deep_link_before_login_comes_back_after_it(page, account, http):
    team_id = await create_team(http, account, "Count the doubloons")
    await page.goto(f"/teams/{team_id}")
    await expect(page).to_have_url(re.compile(r"/login\?next="))
    await page.fill('input[name="email"]', account.email)
    await page.fill('input[name="password"]', account.password)
    await page.click('button[type="submit"]')
    await expect(page.get_by_test_id("team-goal")).to_have_text("Count the doubloons")
