"""Tool servers and tool calls through the services, on a real database, against real MCP servers
nobody here wrote (npm `everything`, PyPI `mcp-server-time` behind a stdio bridge) and our recorder."""

from __future__ import annotations

from decimal import Decimal
from uuid import UUID

import psycopg
import pytest

from shared.agents.offline import OfflineProvider
from shared.domain.errors import Conflict, Forbidden, Invalid
from shared.domain.failures import ClassifiedFailure, FailureType
from shared.domain.models import EscalationResolve, Principal, TeamCreate
from shared.domain.tool_models import ToolServerCreate
from shared.domain.tools import AddressPolicy
from shared.services.runs import TeamRun
from shared.tools.mcp_client import McpConnector, ToolTimeouts


@pytest.fixture
def team_run(services) -> TeamRun:
    return TeamRun(services, OfflineProvider(), manager_model="offline-manager", worker_model="offline-worker")


async def register(services, principal, name: str, url: str, **extra):
    return await services.tool_servers.register(principal, ToolServerCreate(name=name, url=url, **extra))


async def first_task(services, team_run, principal, tools: list[str], **extra) -> tuple[UUID, UUID]:
    team = await services.teams.create(principal, TeamCreate(goal="Compare bike prices", tools=tools, workers=1,
                                                             **extra))
    await services.teams.start(team.id, principal.actor)
    task_id = UUID((await team_run.plan(team.id))["tasks"][0]["id"])
    await team_run.activate(team.id)
    await team_run.assign(task_id)
    await team_run.start(task_id)
    return team.id, task_id


async def work(team_run: TeamRun, task_id: UUID, *, decide=None) -> dict:
    """What the task orchestrator does: steps, and each requested call (approval first) before the next."""
    for _ in range(12):
        step = await team_run.execute_step(task_id)
        for call_id in step["tool_calls"]:
            state = await team_run.prepare_tool_call(UUID(call_id), "inst-1")
            if state["status"] == "awaiting_approval":
                assert decide is not None, "a call waits for approval"
                timed_out = await decide(state["escalation_id"])
                await team_run.decide_tool_call(UUID(call_id), timed_out=timed_out, timeout_hours=1)
            await team_run.run_tool_call(UUID(call_id))
        if step["done"]:
            return step
    raise AssertionError("the task never finished")


async def test_registering_lists_the_tools_of_the_reference_servers(services, principal, everything_server,
                                                                    time_server):
    everything = await register(services, principal, "everything", everything_server.url)
    time = await register(services, principal, "time", time_server.url)
    assert {"echo", "get-sum"} <= {t.name for t in everything.tools}
    echo = next(t for t in everything.tools if t.name == "echo")
    assert echo.input_schema["required"] == ["message"] and echo.description
    assert {t.name for t in time.tools} >= {"get_current_time", "convert_time"}
    assert everything.server_info["name"] and everything.status == "ready"
    listed = await services.tool_servers.list_for(principal.company_id)
    assert [s.name for s in listed] == ["everything", "time"]
    with pytest.raises(Conflict):
        await register(services, principal, "everything", everything_server.url)


async def test_a_url_that_is_no_mcp_server_or_not_reachable_is_refused_with_the_reason(services, principal):
    import asyncio

    async def not_mcp(reader, writer):
        await reader.read(1000)
        writer.write(b"HTTP/1.1 200 OK\r\ncontent-type: text/html\r\ncontent-length: 5\r\n\r\nhello")
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(not_mcp, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        with pytest.raises(Invalid, match="cannot be used"):
            await register(services, principal, "web", f"http://127.0.0.1:{port}/")
    finally:
        server.close()
    from tests.tools.conftest import free_port

    with pytest.raises(Invalid, match="not reachable"):
        await register(services, principal, "gone", f"http://127.0.0.1:{free_port()}/mcp")
    assert await services.tool_servers.list_for(principal.company_id) == []


async def test_only_an_admin_manages_tool_servers(services, principal, everything_server):
    member = Principal(user_id=principal.user_id, company_id=principal.company_id, role="member")
    with pytest.raises(Forbidden):
        await register(services, member, "everything", everything_server.url)


async def test_a_team_allow_list_must_name_registered_tools(services, principal, everything_server):
    await register(services, principal, "everything", everything_server.url)
    with pytest.raises(Invalid) as refused:
        await services.teams.create(principal, TeamCreate(goal="x", tools=["everything.echo", "everything.nope",
                                                                          "other.echo"]))
    assert "everything.nope" in refused.value.detail and "other.echo" in refused.value.detail
    team = await services.teams.create(principal, TeamCreate(goal="x", tools=["everything.echo"]))
    assert team.tools == ["everything.echo"]


async def test_a_worker_calls_echo_and_get_current_time_and_its_output_cites_both(
        services, principal, team_run, everything_server, time_server):
    await register(services, principal, "everything", everything_server.url)
    await register(services, principal, "time", time_server.url)
    team_id, task_id = await first_task(services, team_run, principal,
                                        ["everything.echo", "time.get_current_time"])
    step = await work(team_run, task_id)
    calls = await services.tool_calls.list_for_task(task_id)
    assert [(c.server, c.tool, c.status.value) for c in calls] == [
        ("everything", "echo", "succeeded"), ("time", "get_current_time", "succeeded")]
    echo, clock = calls
    assert echo.arguments == {"message": (await services.tasks.get(task_id)).title}
    assert echo.result == f"Echo: {echo.arguments['message']}"
    assert clock.arguments == {"timezone": "America/New_York"} and '"timezone": "America/New_York"' in clock.result
    assert f"everything.echo answered: {echo.result}" in step["output"]
    assert "time.get_current_time answered:" in step["output"] and "America/New_York" in step["output"]
    assert all(c.step_number == 1 and c.attempts == 1 and c.finished_at for c in calls)
    events = [e.type for e in await services.events.after(team_id, 0)]
    assert events.count("tool.call_requested") == 2 and events.count("tool.call_finished") == 2
    audit = {e.event_type for e in (await services.audit.query(principal.company_id, team_id=team_id, limit=500)).items}
    assert {"tool.call_requested", "tool.call_started", "tool.call_finished"} <= audit


async def test_a_recorded_result_is_never_executed_again(services, principal, team_run, recording_server):
    await register(services, principal, "rec", recording_server.url)
    _, task_id = await first_task(services, team_run, principal, ["rec.note"])
    step = await team_run.execute_step(task_id)
    [call_id] = step["tool_calls"]
    assert await team_run.execute_step(task_id) == step  # pending calls: no LLM call, the same ids
    first = await team_run.run_tool_call(UUID(call_id))
    again = await team_run.run_tool_call(UUID(call_id))  # a retried or replayed activity
    assert first == again == {"status": "succeeded", "call_id": call_id}
    assert [c["call_id"] for c in recording_server.calls()] == [call_id]  # sent once, with its id in _meta
    assert (await work(team_run, task_id))["done"]
    assert len(recording_server.calls()) == 1


async def test_header_secrets_reach_the_server_but_are_stored_encrypted_and_never_returned(
        services, principal, recording_server, database_url):
    created = await register(services, principal, "rec", recording_server.url,
                             headers={"x-api-key": "s3cret-value-0042"})
    assert created.header_names == ["x-api-key"] and "s3cret" not in created.model_dump_json()
    with psycopg.connect(database_url) as conn:
        [(ref,)] = conn.execute("SELECT secret_ref FROM tool_servers").fetchall()
        audit = conn.execute("SELECT payload::text FROM audit_events").fetchall()
    assert ref.startswith("db:") and "s3cret" not in ref and not any("s3cret" in a for (a,) in audit)
    server = next(s for s in await services.tool_servers.list_for(principal.company_id))
    assert "s3cret" not in server.model_dump_json()
    connector = services.tool_servers.connector
    record = (await services.tool_servers.team_tools(principal.company_id, ["rec.note"]))[0].server
    outcome = await connector.call_tool(record.url, await services.tool_servers.headers(record), "note",
                                        {"text": "hi"}, call_id="c-1")
    assert outcome.text == "noted: hi" and recording_server.calls()[-1]["api_key"] == "s3cret-value-0042"
    await services.tool_servers.delete(principal, created.id)
    assert await services.tool_servers.list_for(principal.company_id) == []


async def test_tool_errors_limits_and_cut_results_are_what_the_model_sees(services, principal, team_run,
                                                                          recording_server):
    services.tool_calls.limits = type(services.tool_calls.limits)(max_calls_per_task=1, result_prompt_chars=100)
    await register(services, principal, "rec", recording_server.url)
    _, task_id = await first_task(services, team_run, principal, ["rec.broken", "rec.note"])
    step = await work(team_run, task_id)
    broken, beyond = await services.tool_calls.list_for_task(task_id)
    assert broken.status.value == "failed" and "Error executing tool broken" in (broken.error or "")
    assert beyond.status.value == "failed" and beyond.attempts == 0 and "limit of 1 tool calls" in beyond.error
    assert [c["tool"] for c in recording_server.calls()] == ["broken"]  # the call beyond the limit was not made
    assert "[tool error] Error executing tool broken" in step["output"]
    assert "limit of 1 tool calls" in step["output"]
    # a tool error is no task failure: the final step handed the task to review
    assert (await services.tasks.get(task_id)).status.value == "review"


async def test_a_reported_cost_is_billed_and_a_spent_budget_stops_calls_before_they_start(
        services, principal, team_run, recording_server):
    await register(services, principal, "rec", recording_server.url, max_cost_usd=Decimal("0.5"))
    team_id, task_id = await first_task(services, team_run, principal, ["rec.priced_note"],
                                        budget_usd=Decimal("5"))
    step = await team_run.execute_step(task_id)
    [call_id] = step["tool_calls"]
    before = (await services.costs.budget(team_id)).spent_usd
    await team_run.run_tool_call(UUID(call_id))
    [call] = await services.tool_calls.list_for_task(task_id)
    assert call.cost_usd == Decimal("0.25")
    budget = await services.costs.budget(team_id)
    assert budget.spent_usd == before + Decimal("0.25") and budget.reserved_usd == 0
    totals = await services.costs.totals(team_id)
    assert any(m.key == "rec.priced_note" and m.total_usd == Decimal("0.25") for m in totals.by_model)

    _, second = await first_task(services, team_run, principal, ["rec.priced_note"], budget_usd=Decimal("5"))
    step = await team_run.execute_step(second)
    team2 = (await services.tasks.get(second)).team_id
    spent = (await services.costs.budget(team2)).spent_usd
    assert await services.teams.set_budget(team2, spent + Decimal("0.1"), principal.actor)  # below the max of 0.5
    calls_before = len(recording_server.calls())
    with pytest.raises(ClassifiedFailure) as stopped:
        await team_run.run_tool_call(UUID(step["tool_calls"][0]))
    assert stopped.value.failure_type is FailureType.BUDGET_EXCEEDED
    assert len(recording_server.calls()) == calls_before  # not started
    [waiting] = await services.tool_calls.list_for_task(second)
    assert waiting.status.value == "requested" and waiting.attempts == 0


async def test_an_unreachable_server_is_tool_unavailable_and_the_call_is_retried_with_its_id(
        services, principal, team_run, recording_server):
    from tests.tools.conftest import start_recording_server, stop

    await register(services, principal, "rec", recording_server.url)
    _, task_id = await first_task(services, team_run, principal, ["rec.note"])
    [call_id] = (await team_run.execute_step(task_id))["tool_calls"]
    await stop(recording_server.process)
    with pytest.raises(ClassifiedFailure) as down:
        await team_run.run_tool_call(UUID(call_id))
    assert down.value.failure_type is FailureType.TOOL_UNAVAILABLE
    [call] = await services.tool_calls.list_for_task(task_id)
    assert call.status.value == "running" and call.attempts == 1
    # The server comes back at another address: point the row's server there, as a refresh would.
    again = await start_recording_server(recording_server.calls_path.parent / "again")
    try:
        async with services.db.connection() as conn:
            await conn.execute("UPDATE tool_servers SET url = %s", (again.url,))
        assert (await team_run.run_tool_call(UUID(call_id)))["status"] == "succeeded"
        assert [c["call_id"] for c in again.calls()] == [call_id]
        [call] = await services.tool_calls.list_for_task(task_id)
        assert call.attempts == 2
    finally:
        await stop(again.process)


class Resolver:
    """DNS for the tests: a name's answer can change between registration and call (rebinding)."""

    def __init__(self, answers: dict[str, list[str]]) -> None:
        self.answers = answers
        self.asked: list[str] = []

    async def resolve(self, host: str, port: int) -> list[str]:
        self.asked.append(host)
        return list(self.answers[host])


async def test_the_address_is_checked_again_at_call_time_and_the_connection_pinned_to_it(
        services, principal, team_run, recording_server):
    port = recording_server.url.split(":")[2].split("/")[0]
    resolver = Resolver({"mcp.example.test": ["127.0.0.1"]})
    connector = McpConnector(AddressPolicy(allow_loopback=True, require_https=False), timeouts=ToolTimeouts(5, 20),
                             resolver=resolver)
    services.tool_servers.connector = connector
    await register(services, principal, "rec", f"http://mcp.example.test:{port}/mcp")
    assert connector.last_backend is not None
    assert {address for address, _ in connector.last_backend.connected} == {"127.0.0.1"}
    _, task_id = await first_task(services, team_run, principal, ["rec.note"])
    [call_id] = (await team_run.execute_step(task_id))["tool_calls"]

    resolver.answers["mcp.example.test"] = ["10.20.30.40"]  # the name now points into a private network
    assert (await team_run.run_tool_call(UUID(call_id)))["status"] == "failed"
    [call] = await services.tool_calls.list_for_task(task_id)
    assert "resolves to 10.20.30.40" in (call.error or "") and "private" in call.error
    assert connector.last_backend.connected == []  # refused before any connection was opened
    assert recording_server.calls() == []


async def test_approve_deny_and_timeout_of_a_call_whose_server_asks(services, principal, team_run,
                                                                    recording_server):
    await register(services, principal, "rec", recording_server.url, approval="ask")
    outcomes = {}
    for action in ("approve", "deny", None):
        _, task_id = await first_task(services, team_run, principal, ["rec.note"])

        async def decide(escalation_id: str, action=action, task_id=task_id) -> bool:
            [waiting] = await services.escalations.list(principal.company_id, task_id=task_id)
            assert waiting.failure_type == "tool_approval" and waiting.tool_call["tool"] == "note"
            assert "rec.note" in waiting.reason and '"text"' in waiting.reason
            assert (await services.tasks.get(task_id)).status.value == "in_progress"
            if action is None:
                return True  # the wait timed out
            with pytest.raises(Invalid):
                await services.control.resolve_escalation(principal, UUID(escalation_id),
                                                          EscalationResolve(action="retry"), None)
            await services.control.resolve_escalation(principal, UUID(escalation_id),
                                                      EscalationResolve(action=action, note="not today"), None)
            return False

        step = await work(team_run, task_id, decide=decide)
        [call] = await services.tool_calls.list_for_task(task_id)
        [escalation] = await services.escalations.list(principal.company_id, task_id=task_id, status="resolved")
        outcomes[action] = (call.status.value, call.error, escalation.action, step["output"])
    assert outcomes["approve"][:3] == ("succeeded", None, "approve")
    assert outcomes["deny"][:3] == ("denied", "denied by a person: not today", "deny")
    assert outcomes[None][:3] == ("denied", "denied by a person: no decision within 1 hours", "deny")
    assert "not executed: denied by a person" in outcomes["deny"][3]
    assert [c["tool"] for c in recording_server.calls()] == ["note"]  # only the approved call ran


async def test_cancelling_a_team_denies_its_tool_calls_waiting_for_approval(services, principal, team_run,
                                                                            recording_server):
    await register(services, principal, "rec", recording_server.url, approval="ask")
    team_id, task_id = await first_task(services, team_run, principal, ["rec.note"])
    [call_id] = (await team_run.execute_step(task_id))["tool_calls"]
    waiting = await team_run.prepare_tool_call(UUID(call_id), "inst-1")
    assert waiting["status"] == "awaiting_approval"
    await services.control.cancel(principal, team_id, None)
    [escalation] = await services.escalations.list(principal.company_id, team_id=team_id, status="resolved")
    assert (escalation.action, escalation.note) == ("deny", "the team was cancelled")
    assert (await team_run.decide_tool_call(UUID(call_id), timed_out=False, timeout_hours=1))["status"] == "denied"
    assert (await team_run.run_tool_call(UUID(call_id)))["status"] == "denied"
    assert recording_server.calls() == []
