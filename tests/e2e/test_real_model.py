"""A whole team on a real (tiny) model: llama.cpp's server (xllamacpp) with SmolLM2-135M, through the
OpenAI provider, json_schema structured output and streaming, recorded on the wire by a proxy.

The model plans (through plan approval, so the test sees the plan before work starts). SmolLM2-135M
never writes a dependency (tried with several goals and prompt wordings), so when its plan has none
the test approves it with its second task depending on its first, as a person editing the plan
would: what is under test is that a dependency's output reaches the dependent task's prompts.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from typing import Any

import httpx
import psycopg
import pytest

from devhost.local_model import MODEL_NAME, LocalModel
from tests.e2e.conftest import AppHost, register, start_app, stop_app
from tests.e2e.model_proxy import RecordingProxy

pytestmark = pytest.mark.slow
GOAL = "Write a haiku about ships"
TERMINAL = {"completed", "failed", "cancelled"}


@pytest.fixture(scope="module")
async def model_proxy(tmp_path_factory) -> AsyncIterator[RecordingProxy]:
    model = LocalModel(log=tmp_path_factory.mktemp("local-model") / "server.log")
    await asyncio.to_thread(model.start)
    proxy = await RecordingProxy(model.url).start()
    yield proxy
    await proxy.stop()
    await asyncio.to_thread(model.stop)


@pytest.fixture(scope="module")
async def model_app(module_database_url: str, model_proxy: RecordingProxy, tmp_path_factory) -> AsyncIterator[AppHost]:
    env = LocalModel(url=model_proxy.url).settings()
    host = await start_app(tmp_path_factory.mktemp("devhost"), module_database_url, **env)
    yield host
    await stop_app(host)


async def test_a_team_on_a_real_model_plans_works_reviews_and_finishes(model_app: AppHost,
                                                                       model_proxy: RecordingProxy):
    started = time.monotonic()
    async with httpx.AsyncClient(base_url=model_app.base_url, timeout=30) as http:
        auth = await register(http)
        team = (await http.post("/api/teams", headers=auth, json={"goal": GOAL, "workers": 1,
                                                                  "approve_plan": True})).json()
        assert (await http.post(f"/api/teams/{team['id']}/start", headers=auth)).status_code == 202
        await _approve_with_a_dependency(http, auth, team["id"])
        final = await _until_terminal(http, auth, team["id"], seconds=900)
        escalations = (await http.get("/api/escalations", headers=auth)).json()
    elapsed = time.monotonic() - started
    print(f"\nreal-model team: {final['status']} in {elapsed:.0f}s, {len(model_proxy.exchanges)} calls")

    assert final["status"] == "completed", (final["status"], [t["status"] for t in final["tasks"]], escalations)
    rows = _cost_rows(model_app.database_url, team["id"])
    assert not [key for key, *_ in rows if ":failed" in key], "no agent call failed (no invalid_output)"
    assert not [e for e in escalations if e["failure_type"] == "invalid_output"]

    exchanges = [e for e in model_proxy.exchanges if GOAL in e.prompt() or e.usage]
    assert len(exchanges) == len(rows), "one cost row per call the server answered"
    assert all(GOAL in e.prompt() for e in exchanges), "the goal is in every prompt"
    assert all(e.request["response_format"]["type"] == "json_schema" and e.request["stream"] for e in exchanges)
    assert all(e.request["max_tokens"] <= 256 for e in exchanges)
    served = sorted((e.usage["prompt_tokens"], e.usage["completion_tokens"]) for e in exchanges if e.usage)
    billed = sorted((i, o) for _, _, i, o, _ in rows)
    assert served == billed, "costs are the server's own usage counts"
    assert all(model == MODEL_NAME for *_, model in rows)

    tasks = {t["id"]: t for t in final["tasks"]}
    pairs = _dependency_outputs(model_app.database_url, team["id"])
    assert pairs, "the plan has a task that depends on another"
    for task_id, dependency_output in pairs:
        step_requests = [e for e in exchanges if f'"title": {_json(tasks[task_id]["title"])}' in e.prompt()
                         and "Execute step" in e.prompt()]
        assert step_requests, f"no step request of {tasks[task_id]['title']!r}"
        assert all(_json(dependency_output) in e.prompt() for e in step_requests), (
            "the dependent task's requests carry its dependency's output")


async def _approve_with_a_dependency(http: httpx.AsyncClient, auth: dict[str, str], team_id: str) -> None:
    deadline = time.monotonic() + 600
    while True:
        team = (await http.get(f"/api/teams/{team_id}", headers=auth)).json()
        if team["awaiting_plan_approval"]:
            break
        assert team["status"] == "planning" and time.monotonic() < deadline, team["status"]
        await asyncio.sleep(1)
    tasks = sorted(team["tasks"], key=lambda t: t["created_at"])
    keys = {t["id"]: f"t{number}" for number, t in enumerate(tasks, start=1)}
    edited = [{"key": keys[t["id"]], "title": t["title"], "description": t["description"],
               "acceptance_criteria": t["acceptance_criteria"], "specialization": t["specialization"],
               "dependencies": [keys[d] for d in t["dependencies"]]} for t in tasks]
    if not any(t["dependencies"] for t in edited):
        edited[1]["dependencies"] = ["t1"]
    approved = await http.post(f"/api/teams/{team_id}/plan/approve", headers=auth, json={"tasks": edited})
    assert approved.status_code == 202, approved.text


async def _until_terminal(http: httpx.AsyncClient, auth: dict[str, str], team_id: str, *, seconds: float) -> Any:
    deadline = time.monotonic() + seconds
    while True:
        team = (await http.get(f"/api/teams/{team_id}", headers=auth)).json()
        if team["status"] in TERMINAL:
            return team
        escalations = (await http.get("/api/escalations", headers=auth)).json()
        assert not escalations, f"the run escalated: {escalations}"
        assert time.monotonic() < deadline, f"no terminal state in {seconds:.0f}s: {team['status']}"
        await asyncio.sleep(1)


def _cost_rows(database_url: str, team_id: str) -> list[tuple[str, str, int, int, str]]:
    with psycopg.connect(database_url) as conn:
        return conn.execute(
            "SELECT idempotency_key, purpose, input_tokens, output_tokens, model FROM cost_tracking"
            " WHERE team_id = %s", (team_id,)).fetchall()


def _dependency_outputs(database_url: str, team_id: str) -> list[tuple[str, str]]:
    """(task id, final output of a task it depends on) for every dependency in the team's plan."""
    with psycopg.connect(database_url) as conn:
        rows = conn.execute(
            "SELECT t.id, dep.output FROM tasks t CROSS JOIN LATERAL unnest(t.dependencies) AS d(id)"
            " JOIN tasks dep ON dep.id = d.id WHERE t.team_id = %s", (team_id,)).fetchall()
    return [(str(task_id), output or "") for task_id, output in rows]


def _json(text: str) -> str:
    """A string as it appears inside the prompt's JSON input block (`<` escaped as the template does)."""
    return json.dumps(text, ensure_ascii=False).replace("<", "\\u003c")
