"""Durable activities: each one small call into `shared/services/runs.py` (idempotent use cases)."""

from __future__ import annotations

import functools
import logging
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar
from uuid import UUID

import azure.durable_functions as df

from shared.agents.roles import AgentBudgets, build_agent_providers
from shared.db.database import TransientConflict
from shared.domain.errors import DependencyDown
from shared.domain.failures import ClassifiedFailure, FailureType
from shared.realtime import realtime_of
from shared.runtime import get_context
from shared.services.runs import TeamRun
from shared.telemetry import bind_log_context

T = TypeVar("T")

log = logging.getLogger(__name__)
bp = df.Blueprint()

_run: TeamRun | None = None


async def team_run() -> TeamRun:
    """Built once per worker process, after the app context."""
    global _run
    if _run is None:
        ctx = await get_context()
        agents = build_agent_providers(ctx.settings)  # manager and worker may use different providers
        realtime = realtime_of(ctx.db)
        _run = TeamRun(ctx.services, agents.manager, manager_model=agents.manager_model,
                       worker_model=agents.worker_model, worker_llm=agents.worker,
                       call_timeout_seconds=ctx.settings.LLM_CALL_TIMEOUT_SECONDS,
                       budgets=AgentBudgets.from_settings(ctx.settings),
                       live=realtime.deltas.live if realtime is not None else None)
        log.info("LLM providers for team runs: manager %s %s, worker %s %s", agents.manager.name,
                 agents.manager_model, agents.worker.name, agents.worker_model)
    return _run


def logged(activity: Callable[[dict[str, Any]], Awaitable[T]]) -> Callable[[dict[str, Any]], Awaitable[T]]:
    """Bind the payload's team and task ids to every log line the activity writes, and classify our
    own database's transient errors so the orchestrator's failure policy retries them."""

    @functools.wraps(activity)
    async def run(payload: dict[str, Any]) -> T:
        with bind_log_context(team_id=payload.get("team_id"), task_id=payload.get("task_id"),
                              instance_id=payload.get("instance_id")):
            try:
                return await activity(payload)
            except (DependencyDown, TransientConflict) as exc:
                raise ClassifiedFailure(FailureType.DATABASE_UNAVAILABLE, exc.detail or str(exc)) from exc
            except ClassifiedFailure:
                raise
            except Exception:  # unclassified: the failure policy sees `unknown`; say what it was
                log.exception("activity %s failed", activity.__name__)
                raise

    return run


def _id(payload: dict[str, Any], key: str) -> UUID:
    return UUID(str(payload[key]))


@bp.activity_trigger(input_name="payload")
@logged
async def plan_team(payload: dict[str, Any]) -> dict[str, Any]:
    return await (await team_run()).plan(_id(payload, "team_id"))


@bp.activity_trigger(input_name="payload")
@logged
async def load_plan(payload: dict[str, Any]) -> dict[str, Any]:
    return await (await team_run()).load_plan(_id(payload, "team_id"))


@bp.activity_trigger(input_name="payload")
@logged
async def activate_team(payload: dict[str, Any]) -> str:
    return await (await team_run()).activate(_id(payload, "team_id"))


@bp.activity_trigger(input_name="payload")
@logged
async def team_status(payload: dict[str, Any]) -> dict[str, Any]:
    return await (await team_run()).status(_id(payload, "team_id"))


@bp.activity_trigger(input_name="payload")
@logged
async def pause_for_budget(payload: dict[str, Any]) -> dict[str, Any]:
    return await (await team_run()).pause_for_budget(_id(payload, "team_id"), str(payload["instance_id"]))


@bp.activity_trigger(input_name="payload")
@logged
async def apply_budget_decision(payload: dict[str, Any]) -> str:
    return await (await team_run()).apply_budget_decision(
        _id(payload, "team_id"), str(payload["action"]), payload.get("input")
    )


@bp.activity_trigger(input_name="payload")
@logged
async def summarize_team(payload: dict[str, Any]) -> str:
    return await (await team_run()).summarize(_id(payload, "team_id"))


@bp.activity_trigger(input_name="payload")
@logged
async def fail_team(payload: dict[str, Any]) -> str:
    return await (await team_run()).fail(_id(payload, "team_id"), str(payload["reason"]))


@bp.activity_trigger(input_name="payload")
@logged
async def begin_task(payload: dict[str, Any]) -> str:
    return await (await team_run()).begin(_id(payload, "task_id"))


@bp.activity_trigger(input_name="payload")
@logged
async def assign_task(payload: dict[str, Any]) -> dict[str, Any]:
    return await (await team_run()).assign(_id(payload, "task_id"))


@bp.activity_trigger(input_name="payload")
@logged
async def start_task(payload: dict[str, Any]) -> str:
    return await (await team_run()).start(_id(payload, "task_id"))


@bp.activity_trigger(input_name="payload")
@logged
async def execute_step(payload: dict[str, Any]) -> dict[str, Any]:
    return await (await team_run()).execute_step(_id(payload, "task_id"))


@bp.activity_trigger(input_name="payload")
@logged
async def prepare_tool_call(payload: dict[str, Any]) -> dict[str, Any]:
    return await (await team_run()).prepare_tool_call(_id(payload, "call_id"), str(payload["instance_id"]))


@bp.activity_trigger(input_name="payload")
@logged
async def decide_tool_call(payload: dict[str, Any]) -> dict[str, Any]:
    return await (await team_run()).decide_tool_call(
        _id(payload, "call_id"), timed_out=bool(payload.get("timed_out")),
        timeout_hours=float(payload.get("timeout_hours", 24)))


@bp.activity_trigger(input_name="payload")
@logged
async def run_tool_call(payload: dict[str, Any]) -> dict[str, Any]:
    return await (await team_run()).run_tool_call(_id(payload, "call_id"))


@bp.activity_trigger(input_name="payload")
@logged
async def submit_task(payload: dict[str, Any]) -> str:
    return await (await team_run()).submit(_id(payload, "task_id"), str(payload["output"]))


@bp.activity_trigger(input_name="payload")
@logged
async def review_task(payload: dict[str, Any]) -> dict[str, Any]:
    return await (await team_run()).review(_id(payload, "task_id"))


@bp.activity_trigger(input_name="payload")
@logged
async def escalate_task(payload: dict[str, Any]) -> str:
    return await (await team_run()).escalate(
        _id(payload, "task_id"), str(payload["reason"]), str(payload["failure_type"]), str(payload["instance_id"])
    )


@bp.activity_trigger(input_name="payload")
@logged
async def apply_escalation_decision(payload: dict[str, Any]) -> str:
    return await (await team_run()).apply_escalation_decision(
        _id(payload, "task_id"), str(payload["action"]), payload.get("note"), payload.get("input")
    )


@bp.activity_trigger(input_name="payload")
@logged
async def fail_task(payload: dict[str, Any]) -> str:
    return await (await team_run()).fail_task(_id(payload, "task_id"), str(payload["reason"]))


@bp.activity_trigger(input_name="payload")
@logged
async def reopen_task(payload: dict[str, Any]) -> str:
    return await (await team_run()).reopen(_id(payload, "task_id"))
