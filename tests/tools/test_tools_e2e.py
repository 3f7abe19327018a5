"""Tools end to end: devhost runs the app and the Durable orchestrations, the offline worker calls real
MCP servers through the HTTP API; crashes (SIGKILL) at the worst moments; approvals through the API;
SSRF refusals outside ENVIRONMENT=local."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import psycopg
import pytest

from tests.e2e.conftest import AppHost, register, start_app, stop_app
from tests.tools.conftest import McpServerProcess, RecordingServer

pytestmark = pytest.mark.slow
TERMINAL = {"completed", "failed", "cancelled"}
ONE_TASK = [{"key": "only", "title": "Look it up with the tools", "acceptance_criteria": ["the tools were used"]}]


async def eventually(probe, what: str, seconds: float = 90, every: float = 0.05) -> Any:
    deadline = asyncio.get_running_loop().time() + seconds
    while True:
        value = await probe()
        if value:
            return value
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(every)


async def team(http: httpx.AsyncClient, auth: dict[str, str], team_id: str) -> dict:
    return (await http.get(f"/api/teams/{team_id}", headers=auth)).json()


async def finished(http, auth, team_id: str, seconds: float = 120) -> dict:
    async def probe() -> dict | None:
        found = await team(http, auth, team_id)
        return found if found["status"] in TERMINAL else None

    return await eventually(probe, f"team {team_id} to finish", seconds, every=0.2)


async def add_server(http, auth, name: str, url: str, **extra) -> dict:
    response = await http.post("/api/tool-servers", headers=auth, json={"name": name, "url": url, **extra})
    assert response.status_code == 201, response.text
    return response.json()


async def one_task_team(http, auth, tools: list[str], goal: str = "Look something up") -> str:
    """A team whose plan is edited to one task before it runs (so each tool is called once)."""
    created = await http.post("/api/teams", headers=auth, json={"goal": goal, "tools": tools, "workers": 1,
                                                                 "approve_plan": True})
    assert created.status_code == 201, created.text
    team_id = created.json()["id"]
    assert (await http.post(f"/api/teams/{team_id}/start", headers=auth)).status_code == 202

    async def awaiting() -> bool:
        return bool((await team(http, auth, team_id))["awaiting_plan_approval"])

    await eventually(awaiting, "the plan")
    approved = await http.post(f"/api/teams/{team_id}/plan/approve", headers=auth, json={"tasks": ONE_TASK})
    assert approved.status_code == 202, approved.text
    return str(team_id)


def rows(database_url: str, statement: str, *params: Any) -> list[tuple[Any, ...]]:
    with psycopg.connect(database_url) as conn:
        return conn.execute(statement, params).fetchall()  # type: ignore[arg-type]


@pytest.fixture
async def host(tmp_path, migrated_database_url) -> AsyncIterator[AppHost]:
    app = await start_app(tmp_path / "app", migrated_database_url, TEAM_MAX_PARALLEL="1",
                          TOOL_APPROVAL_TIMEOUT_HOURS="0.003")
    yield app
    await stop_app(app)


@pytest.fixture
async def http(host: AppHost) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=host.base_url, timeout=20) as client:
        yield client


async def test_a_team_calls_echo_and_get_current_time_and_cites_them_live(
        http, host, everything_server: McpServerProcess, time_server: McpServerProcess):
    auth = await register(http)
    everything = await add_server(http, auth, "everything", everything_server.url)
    assert "echo" in {t["name"] for t in everything["tools"]} and "headers" not in everything
    await add_server(http, auth, "time", time_server.url)
    listed = (await http.get("/api/tool-servers", headers=auth)).json()
    assert [s["name"] for s in listed] == ["everything", "time"]
    bad = await http.post("/api/teams", headers=auth, json={"goal": "x", "tools": ["everything.nope"]})
    assert bad.status_code == 422 and "everything.nope" in bad.text

    team_id = await one_task_team(http, auth, ["everything.echo", "time.get_current_time"])
    done = await finished(http, auth, team_id)
    assert done["status"] == "completed" and done["tools"] == ["everything.echo", "time.get_current_time"]
    [task] = done["tasks"]
    calls = (await http.get(f"/api/tasks/{task['id']}/tool-calls", headers=auth)).json()
    assert [(c["server"], c["tool"], c["status"]) for c in calls] == [
        ("everything", "echo", "succeeded"), ("time", "get_current_time", "succeeded")]
    assert calls[0]["result"] == "Echo: Look it up with the tools"
    assert calls[0]["started_at"] and calls[0]["finished_at"]
    assert "everything.echo answered: Echo: Look it up with the tools" in task["output"]
    assert "time.get_current_time answered:" in task["output"]
    events = (await http.get(f"/api/teams/{team_id}/events?after_seq=0", headers=auth)).json()
    requested = [e for e in events if e["type"] == "tool.call_requested"]
    finished_events = [e for e in events if e["type"] == "tool.call_finished"]
    assert [e["data"]["call_id"] for e in requested] == [c["id"] for c in calls]
    assert [e["data"]["status"] for e in finished_events] == ["succeeded", "succeeded"]
    assert all(e["task_id"] == task["id"] for e in requested + finished_events)
    checkpoints = (await http.get(f"/api/tasks/{task['id']}/checkpoints", headers=auth)).json()
    assert checkpoints[0]["step_output"]["tool_calls"] == [c["id"] for c in calls]
    assert (await http.delete(f"/api/tool-servers/{everything['id']}", headers=auth)).status_code == 204
    assert [s["name"] for s in (await http.get("/api/tool-servers", headers=auth)).json()] == ["time"]


async def test_sigkill_after_a_result_is_recorded_and_before_its_step_ends_never_calls_it_again(
        tmp_path, migrated_database_url, recording_server: RecordingServer):
    env = {"TEAM_MAX_PARALLEL": "1", "OFFLINE_LLM_LATENCY_MS": "1500"}
    first = await start_app(tmp_path / "first", migrated_database_url, **env)
    async with httpx.AsyncClient(base_url=first.base_url, timeout=20) as http:
        auth = await register(http)
        await add_server(http, auth, "rec", recording_server.url)
        team_id = await one_task_team(http, auth, ["rec.note"])

        async def recorded() -> list[tuple[Any, ...]]:
            return rows(migrated_database_url, "SELECT id, step_number FROM tool_calls WHERE team_id = %s"
                        " AND status = 'succeeded'", uuid.UUID(team_id))

        [(call_id, step_number)] = await eventually(recorded, "the tool call's result")
    os.kill(first.process.process.pid, signal.SIGKILL)  # the next step's LLM call takes 1.5 s: it is in flight
    await first.process.process.wait()
    later = rows(migrated_database_url, "SELECT count(*) FROM checkpoints c JOIN tasks k ON k.id = c.task_id"
                 " WHERE k.team_id = %s AND c.step_number > %s", uuid.UUID(team_id), step_number)
    assert later == [(0,)], "killed before the step that continues with the result was checkpointed"

    second = await start_app(tmp_path / "second", migrated_database_url, **env)
    try:
        async with httpx.AsyncClient(base_url=second.base_url, timeout=20) as http:
            done = await finished(http, auth, team_id, seconds=150)
            assert done["status"] == "completed"
            assert f"rec.note answered: noted: {ONE_TASK[0]['title']}" in done["tasks"][0]["output"]
    finally:
        await stop_app(second)
    assert [c["call_id"] for c in recording_server.calls()] == [str(call_id)], "the call was made exactly once"
    assert rows(migrated_database_url, "SELECT attempts, status FROM tool_calls WHERE id = %s", call_id) == [
        (1, "succeeded")]


async def test_sigkill_during_a_tool_call_retries_it_with_the_same_call_id(
        tmp_path, migrated_database_url, recording_server: RecordingServer):
    env = {"TEAM_MAX_PARALLEL": "1"}
    first = await start_app(tmp_path / "first", migrated_database_url, **env)
    async with httpx.AsyncClient(base_url=first.base_url, timeout=20) as http:
        auth = await register(http)
        await add_server(http, auth, "rec", recording_server.url)
        team_id = await one_task_team(http, auth, ["rec.slow_note"])

        async def in_flight() -> list[dict]:
            return recording_server.calls()

        [sent] = await eventually(in_flight, "the call to reach the server")  # it answers after 1 s
    os.kill(first.process.process.pid, signal.SIGKILL)
    await first.process.process.wait()
    assert rows(migrated_database_url, "SELECT status FROM tool_calls WHERE id = %s",
                uuid.UUID(sent["call_id"])) == [("running",)]

    second = await start_app(tmp_path / "second", migrated_database_url, **env)
    try:
        async with httpx.AsyncClient(base_url=second.base_url, timeout=20) as http:
            assert (await finished(http, auth, team_id, seconds=150))["status"] == "completed"
    finally:
        await stop_app(second)
    ids = [c["call_id"] for c in recording_server.calls()]
    assert ids == [sent["call_id"], sent["call_id"]], "retried once, with the same id for the server to de-duplicate"
    assert rows(migrated_database_url, "SELECT attempts, status FROM tool_calls WHERE id = %s",
                uuid.UUID(sent["call_id"])) == [(2, "succeeded")]


async def test_approval_approve_deny_and_timeout_through_the_api(http, recording_server: RecordingServer):
    auth = await register(http)
    await add_server(http, auth, "rec", recording_server.url, approval="ask")

    async def waiting(team_id: str) -> dict:
        async def probe() -> dict | None:
            found = (await http.get(f"/api/escalations?team_id={team_id}", headers=auth)).json()
            return found[0] if found else None

        return await eventually(probe, "the approval escalation")

    results = {}
    for action in ("approve", "deny", None):
        team_id = await one_task_team(http, auth, ["rec.note"])
        escalation = await waiting(team_id)
        assert escalation["failure_type"] == "tool_approval" and escalation["tool_call"]["tool"] == "note"
        assert escalation["tool_call"]["arguments"] == {"text": ONE_TASK[0]["title"]}
        assert "rec.note" in escalation["reason"]
        [task] = (await team(http, auth, team_id))["tasks"]
        assert task["status"] == "in_progress"
        if action is not None:
            wrong = await http.post(f"/api/escalations/{escalation['id']}/resolve", headers=auth,
                                    json={"action": "retry"})
            assert wrong.status_code == 422
            resolved = await http.post(f"/api/escalations/{escalation['id']}/resolve", headers=auth,
                                       json={"action": action, "note": "by the test"})
            assert resolved.status_code == 200, resolved.text
        done = await finished(http, auth, team_id)
        [call] = (await http.get(f"/api/tasks/{task['id']}/tool-calls", headers=auth)).json()
        [closed] = (await http.get(f"/api/escalations?team_id={team_id}&status=resolved", headers=auth)).json()
        results[action] = (done["status"], call["status"], closed["action"], call["error"])
    assert results["approve"] == ("completed", "succeeded", "approve", None)
    assert results["deny"] == ("completed", "denied", "deny", "denied by a person: by the test")
    assert results[None][:3] == ("completed", "denied", "deny") and "no decision within" in results[None][3]
    assert len(recording_server.calls()) == 1  # only the approved call reached the server


STAGING_KEYS = json.dumps({"stg-1": "a-staging-signing-secret-that-nobody-published-4567"})


async def test_outside_local_tool_servers_on_private_loopback_or_metadata_addresses_are_refused(
        tmp_path, migrated_database_url):
    host = await start_app(tmp_path / "staging", migrated_database_url, ENVIRONMENT="staging",
                           JWT_SIGNING_KEYS=STAGING_KEYS, TRUSTED_PROXY_HOPS="1")
    try:
        async with httpx.AsyncClient(base_url=host.base_url, timeout=20) as http:
            auth = await register(http)
            refused = {
                "https://169.254.169.254/metadata/mcp": "metadata",
                "https://[fd00:ec2::254]/mcp": "metadata",
                "https://10.0.0.8/mcp": "private",
                "https://172.16.0.1:8443/mcp": "private",
                "https://192.168.1.20/mcp": "private",
                "https://localhost:1/mcp": "'localhost' resolves to",
                "https://127.0.0.1/mcp": "loopback",
                "https://[::ffff:127.0.0.1]/mcp": "loopback",
                "http://example.com/mcp": "only https",
                "file:///etc/passwd": "scheme",
            }
            for url, reason in refused.items():
                response = await http.post("/api/tool-servers", headers=auth, json={"name": "x", "url": url})
                assert response.status_code == 422, (url, response.text)
                assert reason in response.json()["detail"], (url, response.json())
            assert (await http.get("/api/tool-servers", headers=auth)).json() == []
    finally:
        await stop_app(host)
