"""Whole teams run by the Durable backend in devhost with the offline provider."""

from __future__ import annotations

import asyncio
import json
import os
import signal
from decimal import Decimal
from typing import Any

import httpx
import psycopg
import pytest

from shared.agents import manager
from shared.agents.prompt_templates import load_prompt
from shared.agents.schemas import Plan
from shared.domain.costs import input_token_bound, worst_case_cost
from tests.e2e.conftest import register, start_app, stop_app

pytestmark = pytest.mark.slow
TERMINAL = {"completed", "failed", "cancelled"}


async def wait_for(http: httpx.AsyncClient, auth: dict[str, str], team_id: str, predicate,
                   seconds: float = 120) -> dict:
    deadline = asyncio.get_running_loop().time() + seconds
    while True:
        team = (await http.get(f"/api/teams/{team_id}", headers=auth)).json()
        if predicate(team):
            return team
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"team never got there: {team['status']} {[t['status'] for t in team['tasks']]}")
        await asyncio.sleep(0.1)


async def run_team(http, auth, goal: str, **extra: Any) -> str:
    team = (await http.post("/api/teams", headers=auth, json={"goal": goal, **extra})).json()
    started = await http.post(f"/api/teams/{team['id']}/start", headers=auth)
    assert started.status_code == 202, started.text
    assert started.json()["instance_id"]
    return str(team["id"])


def plan_worst_case(goal: str, *, workers: int) -> Decimal:
    """What the plan call reserves: its prompt's input bound and its max tokens at the manager's price."""
    prompt = load_prompt(manager.PLAN_PROMPT)
    messages = prompt.render({"goal": goal, "workers": workers}, workers=workers)
    bound = input_token_bound([m.content for m in messages] + [json.dumps(Plan.model_json_schema())],
                              messages=len(messages))
    return worst_case_cost("offline-manager", bound, 4096)


def assert_clean_history(database_url: str, team_id: str) -> None:
    """Every task's status changes form one unbroken chain (no transition applied twice), and the
    team's event seq is gap-free."""
    with psycopg.connect(database_url) as conn:
        rows = conn.execute(
            "SELECT task_id, payload->>'from', payload->>'to' FROM audit_events WHERE team_id = %s"
            " AND event_type = 'task.status_changed' ORDER BY created_at, id", (team_id,)).fetchall()
        seqs = [r[0] for r in conn.execute("SELECT seq FROM team_events WHERE team_id = %s ORDER BY seq",
                                           (team_id,)).fetchall()]
    chains: dict[Any, str] = {}
    for task_id, source, target in rows:
        previous = chains.get(task_id, "pending")
        assert previous == source, f"task {task_id}: {source}->{target} after {previous}"
        chains[task_id] = target
    assert seqs == list(range(1, len(seqs) + 1))


async def test_a_team_plans_works_reviews_and_completes(http, auth, app_host):
    team_id = await run_team(http, auth, "Build a web scraper for product prices")
    team = await wait_for(http, auth, team_id, lambda t: t["status"] in TERMINAL)

    assert team["status"] == "completed" and team["result"] and team["completed_at"]
    assert 2 <= len(team["tasks"]) <= 12
    assert all(t["status"] == "completed" and t["output"] and t["completion_time"] for t in team["tasks"])
    assert any(t["revision_count"] > 0 for t in team["tasks"]), "the offline reviewer asks for some revisions"
    for task in team["tasks"]:
        checkpoints = (await http.get(f"/api/tasks/{task['id']}/checkpoints", headers=auth)).json()
        assert [c["step_number"] for c in checkpoints] == list(range(1, len(checkpoints) + 1))
        assert len(checkpoints) >= 2
    costs = (await http.get(f"/api/teams/{team_id}/costs", headers=auth)).json()
    assert float(costs["total_usd"]) > 0
    assert {m["key"] for m in costs["by_model"]} == {"offline-manager", "offline-worker"}
    audit = (await http.get(f"/api/audit?team_id={team_id}&limit=500", headers=auth)).json()
    types = {e["event_type"] for e in audit}
    assert {"team.created", "team.status_changed", "task.created", "task.status_changed", "checkpoint.created",
            "llm.call"} <= types
    messages = (await http.get(f"/api/teams/{team_id}/messages", headers=auth)).json()
    assert messages[0]["kind"] == "plan" and messages[-1]["kind"] == "summary"
    events = (await http.get(f"/api/teams/{team_id}/events?after_seq=0", headers=auth)).json()
    assert events[-1]["type"] == "team.status_changed" and events[-1]["data"]["to"] == "completed"
    assert_clean_history(app_host.database_url, team_id)


async def test_a_budget_too_small_to_plan_escalates_at_once_and_a_raise_lets_the_team_finish(http, auth):
    team_id = await run_team(http, auth, "Write a market analysis of electric bikes", budget_usd=0.0001)

    async def escalations() -> list[dict]:
        return (await http.get(f"/api/escalations?team_id={team_id}", headers=auth)).json()

    deadline = asyncio.get_running_loop().time() + 60
    while not (waiting := await escalations()):
        assert asyncio.get_running_loop().time() < deadline, "no budget escalation"
        await asyncio.sleep(0.1)
    assert [e["failure_type"] for e in waiting] == ["budget_exceeded"]
    team = (await http.get(f"/api/teams/{team_id}", headers=auth)).json()
    assert team["status"] == "planning" and team["spent_usd"] == "0.00000000" and team["tasks"] == []

    decision = {"action": "retry", "input": "50", "note": "more budget"}
    resolved = await http.post(f"/api/escalations/{waiting[0]['id']}/resolve", headers=auth, json=decision)
    assert resolved.status_code == 200 and resolved.json()["status"] == "resolved"
    team = await wait_for(http, auth, team_id, lambda t: t["status"] in TERMINAL)
    assert team["status"] == "completed" and team["budget_usd"] == "50.0000"
    same = await http.post(f"/api/escalations/{waiting[0]['id']}/resolve", headers=auth, json=decision)
    assert same.status_code == 200 and same.json()["action"] == "retry"  # idempotent, not a 409
    other = await http.post(f"/api/escalations/{waiting[0]['id']}/resolve", headers=auth, json={"action": "skip"})
    assert other.status_code == 409


async def test_a_budget_reached_mid_run_pauses_the_team_without_overshooting_then_it_finishes(http, auth, app_host):
    """The cap is hard: the team stops before a call that might not fit, never after one that did not.

    The budget fits the plan call's worst case with a little to spare, which the run then uses up: the
    manager's later calls (reviews, the summary) reserve about as much as the plan did."""
    goal = "Build a web scraper for product prices"
    budget = float(plan_worst_case(goal, workers=2)) + 0.005
    team_id = await run_team(http, auth, goal, budget_usd=round(budget, 4), workers=2)
    samples: list[tuple[float, float]] = []

    def paused_with_escalation(team: dict) -> bool:
        samples.append((float(team["spent_usd"]), float(team["budget_usd"])))
        return team["status"] == "paused"

    await wait_for(http, auth, team_id, paused_with_escalation)
    [escalation] = (await http.get(f"/api/escalations?team_id={team_id}", headers=auth)).json()
    assert escalation["failure_type"] == "budget_exceeded" and escalation["task_id"] is None
    costs = (await http.get(f"/api/teams/{team_id}/costs", headers=auth)).json()
    assert 0 < float(costs["total_usd"]) <= round(budget, 4) and costs["reserved_usd"] == "0.00000000"
    assert all(spent <= budget for spent, budget in samples)

    resolved = await http.post(f"/api/escalations/{escalation['id']}/resolve", headers=auth,
                               json={"action": "retry", "input": "25"})
    assert resolved.status_code == 200
    team = await wait_for(http, auth, team_id, lambda t: t["status"] in TERMINAL)
    assert team["status"] == "completed"
    with psycopg.connect(app_host.database_url) as conn:
        [(spent, billed_sum, open_reservations)] = conn.execute(
            "SELECT t.spent_usd, (SELECT sum(cost_usd) FROM cost_tracking c WHERE c.team_id = t.id),"
            " (SELECT count(*) FROM cost_tracking c WHERE c.team_id = t.id AND c.status = 'reserved')"
            " FROM teams t WHERE t.id = %s", (team_id,)).fetchall()
    assert spent == billed_sum and open_reservations == 0
    assert_clean_history(app_host.database_url, team_id)


async def test_plan_approval_waits_and_runs_the_edited_plan(http, auth):
    team_id = await run_team(http, auth, "Plan a team offsite", approve_plan=True)
    team = await wait_for(http, auth, team_id, lambda t: t["awaiting_plan_approval"])
    assert team["status"] == "planning" and team["tasks"]
    edited = [{"key": "venue", "title": "Pick a venue", "acceptance_criteria": ["venue booked"]},
              {"key": "agenda", "title": "Write the agenda", "acceptance_criteria": ["agenda shared"],
               "dependencies": ["venue"]}]
    approved = await http.post(f"/api/teams/{team_id}/plan/approve", headers=auth, json={"tasks": edited})
    assert approved.status_code == 202, approved.text
    team = await wait_for(http, auth, team_id, lambda t: t["status"] in TERMINAL)
    assert team["status"] == "completed"
    assert [t["title"] for t in team["tasks"]] == ["Pick a venue", "Write the agenda"]


async def test_plan_approval_of_a_team_that_is_not_waiting_conflicts(http, auth):
    team = (await http.post("/api/teams", headers=auth, json={"goal": "x"})).json()
    response = await http.post(f"/api/teams/{team['id']}/plan/approve", headers=auth, json={})
    assert response.status_code == 409


async def test_pause_resume_and_cancel_while_running(tmp_path, migrated_database_url):
    host = await start_app(tmp_path, migrated_database_url, OFFLINE_LLM_LATENCY_MS="60")
    try:
        async with httpx.AsyncClient(base_url=host.base_url, timeout=20) as http:
            auth = await register(http)
            team_id = await run_team(http, auth, "Design a logo for a coffee shop")
            await wait_for(http, auth, team_id, lambda t: t["status"] == "active")
            assert (await http.post(f"/api/teams/{team_id}/pause", headers=auth)).status_code == 202
            assert (await http.post(f"/api/teams/{team_id}/resume", headers=auth)).status_code == 202
            team = await wait_for(http, auth, team_id, lambda t: t["status"] in TERMINAL, seconds=90)
            assert team["status"] == "completed"

            other = await run_team(http, auth, "Write a novel about ghosts")
            await wait_for(http, auth, other, lambda t: t["status"] == "active")
            assert (await http.post(f"/api/teams/{other}/cancel", headers=auth)).status_code == 202
            # Work in flight stops at its next step: no task is approved after the cancellation.
            team = await wait_for(http, auth, other, lambda t: not any(
                task["status"] in ("assigned", "in_progress", "review", "revision_requested") for task in t["tasks"]))
            assert team["status"] == "cancelled"
            assert not any(t["status"] == "completed" and t["completion_time"] > team["completed_at"]
                           for t in team["tasks"])
    finally:
        await stop_app(host)


async def test_sigkill_mid_run_then_restart_completes_without_duplicated_transitions(tmp_path, migrated_database_url):
    env = {"OFFLINE_LLM_LATENCY_MS": "40"}
    host = await start_app(tmp_path / "first", migrated_database_url, **env)
    async with httpx.AsyncClient(base_url=host.base_url, timeout=20) as http:
        auth = await register(http)
        team_ids = [await run_team(http, auth, goal) for goal in
                    ("Build a web scraper for product prices", "Write a guide to sourdough baking")]
        await wait_for(http, auth, team_ids[0],
                       lambda t: sum(task["status"] == "completed" for task in t["tasks"]) >= 1, seconds=60)
    os.kill(host.process.process.pid, signal.SIGKILL)
    await host.process.process.wait()

    restarted = await start_app(tmp_path / "second", migrated_database_url, **env)
    try:
        async with httpx.AsyncClient(base_url=restarted.base_url, timeout=20) as http:
            for team_id in team_ids:
                team = await wait_for(http, auth, team_id, lambda t: t["status"] in TERMINAL, seconds=120)
                assert team["status"] == "completed"
                assert all(t["status"] == "completed" for t in team["tasks"])
                assert_clean_history(migrated_database_url, team_id)
    finally:
        await stop_app(restarted)


async def test_retry_of_a_task_that_did_not_fail_conflicts(http, auth):
    team_id = await run_team(http, auth, "Write a short poem")
    team = await wait_for(http, auth, team_id, lambda t: t["status"] in TERMINAL)
    task = team["tasks"][0]
    response = await http.post(f"/api/tasks/{task['id']}/retry", headers=auth)
    assert response.status_code == 409 and "completed" in response.json()["detail"]
    history = (await http.get(f"/api/tasks/{task['id']}/history", headers=auth)).json()
    assert history[0]["event_type"] == "task.created"
    assert history[-1]["payload"] == {"from": "review", "to": "completed"}
