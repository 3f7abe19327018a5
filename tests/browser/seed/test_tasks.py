"""The seed's `e2e/tasks.spec.ts`, ported: "Task Management" — "should display tasks of a team",
"should view task details", "should filter tasks by status". Same steps, selectors and texts (a task
opened with `.task-card:first-child`; after `filter-completed` then `filter-in-progress` the
`.task-card` count is 0); run on Chromium, Firefox and WebKit."""

from __future__ import annotations

import pytest

from tests.browser.engines import expect

pytestmark = [pytest.mark.browser, pytest.mark.xdist_group("browser-seed")]


async def test_should_display_tasks_of_a_team(page, seeded_team, logged_in):
    await page.goto(f"/teams/{seeded_team.id}")
    await expect(page.locator('[data-testid="task-list"]')).to_be_visible()
    await expect(page.locator(".task-card")).to_have_count(len(seeded_team.tasks))


async def test_should_view_task_details(page, seeded_team, logged_in):
    await page.goto(f"/teams/{seeded_team.id}")
    await page.click(".task-card:first-child")
    await expect(page).to_have_url(f"/tasks/{seeded_team.tasks[0]['id']}")
    await expect(page.locator('[data-testid="task-title"]')).to_be_visible()
    await expect(page.locator('[data-testid="task-description"]')).to_be_visible()
    await expect(page.locator('[data-testid="acceptance-criteria"]')).to_be_visible()


async def test_should_filter_tasks_by_status(page, seeded_team, logged_in):
    await page.goto(f"/teams/{seeded_team.id}")
    await page.click('[data-testid="filter-completed"]')
    completed = [t for t in seeded_team.tasks if t["status"] == "completed"]
    await expect(page.locator(".task-card")).to_have_count(len(completed))
    await expect(page.locator('.task-card [data-testid="status"]')).to_have_text(["completed"] * len(completed))
    await page.click('[data-testid="filter-in-progress"]')
    await expect(page.locator(".task-card")).to_have_count(0)
