"""The team and task pages show an agent's text as it is written (`llm.delta`, web/static/stream.js)."""

from __future__ import annotations

import uuid

import pytest
from azure.messaging.webpubsubservice.aio import WebPubSubServiceClient
from playwright.async_api import expect

from tests.browser.conftest import create_team, login, wait_until

pytestmark = [pytest.mark.browser, pytest.mark.xdist_group("browser")]


async def _send(connection_string: str, team_id: str, deltas: list[dict]) -> None:
    client = WebPubSubServiceClient.from_connection_string(connection_string, hub="ghost_pirates")
    try:
        for delta in deltas:
            await client.send_to_group(f"team_{team_id}", {"type": "llm.delta", "team_id": team_id, **delta},
                                       content_type="application/json")
    finally:
        await client.close()


async def test_the_team_page_shows_a_calls_text_in_index_order_as_it_arrives(page, account, http,
                                                                          pubsub_connection_string):
    team_id = await create_team(http, account, "Sing a shanty")
    await login(page, account)
    await page.goto(f"/teams/{team_id}")
    await expect(page.get_by_test_id("connection-status")).to_have_text("Connected")
    live = page.get_by_test_id("live-output")
    await expect(live).to_be_hidden()
    call = str(uuid.uuid4())
    task = str(uuid.uuid4())

    await _send(pubsub_connection_string, team_id, [
        {"task_id": task, "member_id": None, "call_id": call, "index": 0, "text": "Yo ho, "},
        {"task_id": task, "member_id": None, "call_id": call, "index": 2, "text": "bottle of rum"},
        {"task_id": task, "member_id": None, "call_id": call, "index": 1, "text": "yo ho, and a "},
    ])

    await expect(live).to_be_visible()
    await expect(live.get_by_test_id("live-text")).to_have_text("Yo ho, yo ho, and a bottle of rum")

    await _send(pubsub_connection_string, team_id, [
        {"task_id": task, "member_id": None, "call_id": call, "index": 3, "text": "!", "final": True},
        {"task_id": task, "member_id": None, "call_id": "next", "index": 0, "text": "Fifteen men"},
    ])
    await expect(live.get_by_test_id("live-text")).to_have_text(["Fifteen men"]), "a new call replaces an ended one"


async def test_the_task_page_shows_only_its_own_tasks_text(page, account, http, pubsub_connection_string):
    team_id = await create_team(http, account, "Swab the deck", start=True, approve_plan=True)  # planned, waiting

    async def tasks() -> list:
        return list((await http.get(f"/api/teams/{team_id}/tasks", headers=account.headers)).json())

    task_id = (await wait_until(tasks, lambda found: len(found) >= 2, 60))[0]["id"]
    await login(page, account)
    await page.goto(f"/tasks/{task_id}")
    await expect(page.get_by_test_id("connection-status")).to_have_text("Connected")

    await _send(pubsub_connection_string, team_id, [
        {"task_id": str(uuid.uuid4()), "member_id": None, "call_id": "other", "index": 0, "text": "not mine"},
        {"task_id": task_id, "member_id": None, "call_id": "mine", "index": 0, "text": "Scrubbing the planks"},
    ])

    await expect(page.get_by_test_id("live-text")).to_have_text(["Scrubbing the planks"])


async def test_a_running_team_streams_its_agents_text_and_the_stored_results_replace_it(page, account, http):
    team_id = await create_team(http, account, "Build a web scraper for product prices")
    await login(page, account)
    await page.goto(f"/teams/{team_id}")
    await expect(page.get_by_test_id("connection-status")).to_have_text("Connected")
    await page.evaluate("""() => {
        window.__liveTexts = [];
        new MutationObserver(() => {
            for (const pre of document.querySelectorAll("[data-testid=live-text]")) {
                if (pre.textContent) window.__liveTexts.push(pre.textContent);
            }
        }).observe(document.body, { subtree: true, childList: true, characterData: true });
    }""")

    await page.get_by_role("button", name="Start").click()
    await expect(page.get_by_test_id("status-badge")).to_have_text("completed", timeout=60_000)

    seen = await page.evaluate("() => window.__liveTexts")
    assert any('"t1"' in text or '"content"' in text for text in seen), "the JSON being written was shown"
    await expect(page.get_by_test_id("live-output")).to_be_hidden(timeout=5_000)
