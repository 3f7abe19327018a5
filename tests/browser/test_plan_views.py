"""The team page's plan graph and run timeline, on Chromium, Firefox and WebKit: they draw a live run
without a reload, highlight the critical path by task time, and mark revision rounds, escalations and
tool calls (name and status) as their events arrive."""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime

import pytest
from azure.messaging.webpubsubservice.aio import WebPubSubServiceClient

from tests.browser.conftest import create_team, wait_until
from tests.browser.engines import Page, expect
from tests.browser.seed.conftest import login
from tests.browser.seed_data import SEED_TASKS

pytestmark = [pytest.mark.browser, pytest.mark.xdist_group("browser-seed")]
RUN_MS = 60_000


@pytest.fixture
def page(driver) -> Page:
    return Page(driver)


async def test_graph_and_timeline_draw_a_live_run_without_reload(page, account, http):
    team_id = await create_team(http, account, "Build a web scraper for product prices")
    await login(page, account)
    await page.goto(f"/teams/{team_id}")
    await expect(page.locator('[data-testid="plan-graph"]')).to_contain_text("once the manager has planned")
    await expect(page.locator('[data-testid="connection-status"]')).to_have_text("Connected")
    await page.evaluate("window.__noReload = true")

    started = await http.post(f"/api/teams/{team_id}/start", headers=account.headers)
    assert started.status_code == 202
    await expect(page.locator('[data-testid="status-badge"]')).to_have_text("completed", timeout=RUN_MS)
    team = (await http.get(f"/api/teams/{team_id}", headers=account.headers)).json()
    n = len(team["tasks"])
    edges = sum(len(t["dependencies"]) for t in team["tasks"])
    assert n >= 2

    await expect(page.locator(".plan-graph .node")).to_have_count(n)
    await expect(page.locator('.plan-graph .node[data-status="completed"]')).to_have_count(n)
    await expect(page.locator(".plan-graph .edge")).to_have_count(edges)
    critical = [e for e in await page.driver.query(".plan-graph .node") if e.attrs["data-critical"] == "true"]
    assert critical, "a finished plan has a critical path"
    await expect(page.locator(".run-timeline .bar")).to_have_count(n)
    await expect(page.locator('.run-timeline .bar.s-completed')).to_have_count(n)
    await expect(page.locator('[data-testid="wall-time"]')).to_have_text(_seconds_pattern())
    await expect(page.locator('[data-testid="task-time"]')).to_have_text(_seconds_pattern())
    assert await page.evaluate("window.__noReload === true"), "the page reloaded"


def _seconds_pattern() -> re.Pattern[str]:
    return re.compile(r"^\d+(\.\d)? s$|^\d+ min \d+ s$")


async def test_the_critical_path_is_the_longest_chain_by_task_time(page, seeded_team, account):
    await login(page, account)
    await page.goto(f"/teams/{seeded_team.id}")
    await expect(page.locator(".plan-graph .node")).to_have_count(len(SEED_TASKS))
    # Research (4 min) → Design (7) → Write the parser (9, in review) beats → Store prices (8); then the
    # pending Schedule daily runs, which depends on both.
    titles = {t["id"]: t["title"] for t in seeded_team.tasks}
    nodes = await page.driver.query('.plan-graph .node[data-critical="true"]')
    assert [titles[e.attrs["data-task-id"]] for e in nodes] == [
        "Research price sources", "Design the scraper", "Write the parser", "Schedule daily runs"]
    await expect(page.locator(".plan-graph .edge")).to_have_count(6)
    await expect(page.locator(".plan-graph .edge.critical")).to_have_count(3)
    await expect(page.locator('[data-testid="critical-path"]')).to_contain_text("Critical path: 4 tasks")
    # Five tasks started (one bar each); the pending one has none yet.
    await expect(page.locator(".run-timeline .bar")).to_have_count(5)
    await expect(page.locator('[data-testid="run-summary"]')).to_contain_text("1 not started")


async def test_revision_rounds_escalations_and_tool_calls_are_marked_as_their_events_arrive(
    page, seeded_team, account, http, pubsub_connection_string
):
    await login(page, account)
    await page.goto(f"/teams/{seeded_team.id}")
    await expect(page.locator('[data-testid="connection-status"]')).to_have_text("Connected")
    await expect(page.locator(".run-timeline .bar")).to_have_count(5)
    await expect(page.locator(".run-timeline .mark")).to_have_count(0)

    events = (await http.get(f"/api/teams/{seeded_team.id}/events?after_seq=0", headers=account.headers)).json()
    seq = max((e["seq"] for e in events), default=0)
    parser = next(t for t in seeded_team.tasks if t["title"] == "Write the parser")
    store = next(t for t in seeded_team.tasks if t["title"] == "Store prices in a table")
    now = datetime.now(UTC).isoformat()
    call_id = str(uuid.uuid4())
    pushed = [
        {"type": "task.status_changed", "seq": seq + 1, "team_id": seeded_team.id, "task_id": parser["id"], "at": now,
         "data": {"from": "review", "to": "revision_requested", "version": 50, "revision_count": 1}},
        {"type": "escalation.created", "seq": seq + 2, "team_id": seeded_team.id, "task_id": store["id"], "at": now,
         "data": {"id": str(uuid.uuid4()), "reason": "the reviewer gave up", "failure_type": "invalid_output"}},
        {"type": "tool.call_requested", "seq": seq + 3, "team_id": seeded_team.id, "task_id": parser["id"], "at": now,
         "data": {"call_id": call_id, "step_number": 2, "server": "rec", "tool": "note", "arguments": {},
                  "approval": "auto", "status": "requested"}},
        {"type": "tool.call_finished", "seq": seq + 4, "team_id": seeded_team.id, "task_id": parser["id"], "at": now,
         "data": {"call_id": call_id, "step_number": 2, "server": "rec", "tool": "note", "status": "succeeded"}},
    ]
    service = WebPubSubServiceClient.from_connection_string(pubsub_connection_string, hub="ghost_pirates")
    async with service:
        for event in pushed:
            await service.send_to_group(f"team_{seeded_team.id}", event, content_type="application/json")
    await expect(page.locator(".run-timeline .mark.revision")).to_have_count(1)
    await expect(page.locator(".run-timeline .mark.escalation")).to_have_count(1)
    await expect(page.locator(f'.plan-graph .node[data-task-id="{parser["id"]}"]')).to_have_attribute(
        "data-status", "revision_requested")
    await expect(page.locator('[data-testid="run-summary"]')).to_contain_text("1 revision round")
    tool = page.locator(f'.run-timeline .bar[data-task-id="{parser["id"]}"] .mark.tool')
    await expect(tool).to_have_count(1)
    await expect(tool).to_have_attribute("data-tool", "rec.note")
    await expect(tool).to_have_attribute("data-status", "succeeded")
    await expect(page.locator('[data-testid="run-summary"]')).to_contain_text("1 tool call")
    await wait_until(lambda: page.driver.query(".task-card"), lambda cards: len(cards) == len(SEED_TASKS), 5)
