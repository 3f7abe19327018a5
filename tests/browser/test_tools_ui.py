"""Tools in the dashboard (Chromium): a tool_approval escalation shows the tool, its arguments and two
buttons; the task view shows each step's tool calls and follows them live."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator

import pytest
from playwright.async_api import expect

from tests.browser.conftest import login, wait_until
from tests.tools.conftest import RecordingServer, start_recording_server, stop

pytestmark = [pytest.mark.browser, pytest.mark.xdist_group("browser")]
#: A title the offline reviewer approves at once (its output then still cites the tool result).
ONE_TASK = [{"key": "only", "title": "Note it down", "acceptance_criteria": ["noted"]}]


@pytest.fixture
async def recorder(tmp_path) -> AsyncIterator[RecordingServer]:
    server = await start_recording_server(tmp_path / "recorder")
    yield server
    await stop(server.process)


async def test_a_tool_call_waits_for_approval_then_the_task_view_shows_it_ran(page, account, http, recorder):
    headers = account.headers
    added = await http.post("/api/tool-servers", headers=headers,
                            json={"name": "rec", "url": recorder.url, "approval": "ask"})
    assert added.status_code == 201, added.text
    team = (await http.post("/api/teams", headers=headers, json={
        "goal": "Keep the log", "tools": ["rec.note"], "workers": 1, "approve_plan": True})).json()
    await http.post(f"/api/teams/{team['id']}/start", headers=headers)

    async def fetch_team():
        return (await http.get(f"/api/teams/{team['id']}", headers=headers)).json()

    await wait_until(fetch_team, lambda t: t["awaiting_plan_approval"])
    await http.post(f"/api/teams/{team['id']}/plan/approve", headers=headers, json={"tasks": ONE_TASK})

    async def fetch_escalations():
        return (await http.get(f"/api/escalations?team_id={team['id']}", headers=headers)).json()

    [escalation] = await wait_until(fetch_escalations, lambda found: len(found) == 1)
    task_id = escalation["task_id"]

    await login(page, account)
    await page.goto(f"/tasks/{task_id}")
    calls = page.get_by_test_id("tool-calls")
    await expect(calls.get_by_test_id("tool-call-status")).to_have_text("awaiting_approval")
    await expect(calls.get_by_test_id("tool-arguments")).to_contain_text('"text": "Note it down"')

    await page.goto("/escalations")
    card = page.locator(f'[data-escalation-id="{escalation["id"]}"]')
    await expect(card.get_by_test_id("approval-tool")).to_have_text("rec.note")
    await expect(card.get_by_test_id("approval-arguments")).to_contain_text('"text": "Note it down"')
    await expect(card.get_by_role("button", name="Deny")).to_be_visible()
    await card.get_by_role("button", name="Approve").click()
    await expect(page.get_by_text("Escalation resolved")).to_be_visible()

    await page.goto(f"/tasks/{task_id}")
    call = page.get_by_test_id("tool-calls").get_by_test_id("tool-call")
    await expect(call.get_by_test_id("tool-call-status")).to_have_text("succeeded", timeout=30_000)
    await expect(call.get_by_test_id("tool-result")).to_have_text("noted: Note it down")
    await expect(page.get_by_test_id("tool-calls")).to_contain_text("Step 1")
    await expect(page.get_by_test_id("task-output")).to_contain_text("rec.note answered: noted: Note it down",
                                                                     timeout=30_000)
    await page.get_by_role("tab", name="History").click()
    await expect(page.get_by_test_id("audit-timeline")).to_contain_text(re.compile(r"rec\.note succeeded in \d+ ms"))
    assert [c["tool"] for c in recorder.calls()] == ["note"]
