"""Tool calls as durable units: recorded with the step that asked for them, approved when the server
asks for it, executed by their own activity, their result recorded once.

The guarantee (docs/agents.md "Tools"): a call whose result (or denial) is recorded is never executed
again: `run` reads the row first and the finishing statement is guarded on `running`. A call that was
started and not recorded (a crash, a timeout, a retry) is sent again with the same call id in
`_meta`, so a server that de-duplicates on it executes it once; one that does not may execute it
more than once (at least once, never lost).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping, Sequence
from decimal import Decimal, InvalidOperation
from typing import Any
from uuid import UUID, uuid5

from shared.agents.llm import ToolCallRequest
from shared.agents.worker import ToolExchange, ToolResult
from shared.db import journal
from shared.db.database import Database, Tx
from shared.db.repositories import escalations as escalation_repo
from shared.db.repositories import teams as team_repo
from shared.db.repositories import tools as repo
from shared.domain.errors import NotFound
from shared.domain.failures import ClassifiedFailure, FailureType
from shared.domain.ids import uuid7
from shared.domain.models import Actor, TaskRecord
from shared.domain.states import TeamStatus
from shared.domain.tool_models import ToolCallPublic, ToolCallRecord
from shared.domain.tools import FINISHED, ToolCallStatus, ToolLimits, cut
from shared.services.costs import BudgetExhausted, CostTracker
from shared.services.escalations import TOOL_APPROVAL
from shared.services.tool_servers import TeamTool, ToolServerService
from shared.tools.mcp_client import ToolServerInvalid, ToolServerRefused, ToolServerUnreachable
from shared.tools.secrets import SecretUnavailable

log = logging.getLogger(__name__)
SYSTEM = Actor.system()
#: Namespace of tool call ids: the same step position always gets the same id.
_CALLS = UUID("2b7c6d0e-3a51-4f0e-9a7e-1f4b8c2d9e60")
#: How much of arguments and results an event or an escalation reason carries (the row has it whole).
EVENT_CHARS = 2_000
RESERVATION_MARGIN_SECONDS = 60.0


def call_id_for(task_id: UUID, step_number: int, position: int) -> UUID:
    return uuid5(_CALLS, f"{task_id}:{step_number}:{position}")


def _public(call: ToolCallRecord) -> ToolCallPublic:
    return ToolCallPublic.model_validate(call.model_dump())


def _arguments_text(arguments: Mapping[str, Any], limit: int = 500) -> str:
    return cut(json.dumps(arguments, ensure_ascii=False, sort_keys=True), limit)


def _finished_data(call: ToolCallRecord) -> dict[str, Any]:
    return {"call_id": str(call.id), "step_number": call.step_number, "server": call.server, "tool": call.tool,
            "status": call.status.value, "result": cut(call.result or "", EVENT_CHARS) if call.result else None,
            "error": call.error, "duration_ms": call.duration_ms, "cost_usd": str(call.cost_usd),
            "attempts": call.attempts}


class ToolCallService:
    def __init__(self, db: Database, servers: ToolServerService, costs: CostTracker,
                 limits: ToolLimits | None = None) -> None:
        self.db = db
        self.servers = servers
        self.costs = costs
        self.limits = limits or servers.settings.limits

    # --- reads ------------------------------------------------------------------------------------

    async def list_for_task(self, task_id: UUID) -> list[ToolCallPublic]:
        async with self.db.connection() as conn:
            return [_public(c) for c in await repo.calls_for_task(conn, task_id)]

    async def records(self, task_id: UUID) -> list[ToolCallRecord]:
        async with self.db.connection() as conn:
            return await repo.calls_for_task(conn, task_id)

    async def get(self, call_id: UUID) -> ToolCallRecord:
        async with self.db.connection() as conn:
            call = await repo.call(conn, call_id)
        if call is None:
            raise NotFound("tool call not found")
        return call

    async def usage(self, task_id: UUID) -> tuple[int, float]:
        """(calls counted against the task's limit, seconds spent in tools)."""
        async with self.db.connection() as conn:
            calls, milliseconds = await repo.usage(conn, task_id)
        return calls, milliseconds / 1000

    def exchanges(self, calls: Sequence[ToolCallRecord], turns: Sequence[tuple[int, str]]) -> list[ToolExchange]:
        """The tool rounds `turns` ([(step number, what the model wrote)]) with each call's recorded result,
        cut for the prompt."""
        exchanges = []
        for step_number, text in turns:
            results = [ToolResult(ToolCallRequest(c.llm_call_id, f"{c.server}.{c.tool}", dict(c.arguments)),
                                  self._prompt_text(c))
                       for c in calls if c.step_number == step_number]
            exchanges.append(ToolExchange(text=text, results=results))
        return exchanges

    def _prompt_text(self, call: ToolCallRecord) -> str:
        limit = self.limits.result_prompt_chars
        if call.status is ToolCallStatus.SUCCEEDED:
            return cut(call.result or "", limit)
        if call.status is ToolCallStatus.DENIED:
            return f"[not executed: {call.error or 'denied'}]"
        return "[tool error] " + cut(call.error or call.result or "the call failed", limit)

    # --- a step asks for calls --------------------------------------------------------------------

    async def record_requested(self, tx: Tx, *, task: TaskRecord, step_number: int, member_id: UUID | None,
                               requests: Sequence[ToolCallRequest], tools: Mapping[str, TeamTool],
                               actor: Actor) -> list[UUID]:
        """Record the calls a step's answer asked for, in the step's transaction; their ids in order.

        A call of a tool the team may not use, or beyond the task's limit of calls, is recorded as
        failed at once with the reason (the model sees it); the others wait to run.
        """
        used, _ = await repo.usage(tx.conn, task.id)
        ids: list[UUID] = []
        for position, request in enumerate(requests):
            tool = tools.get(request.name)
            status, error = ToolCallStatus.REQUESTED, None
            if tool is None:
                status, error = ToolCallStatus.FAILED, f"{request.name} is not a tool this team may use"
            elif used >= self.limits.max_calls_per_task:
                status = ToolCallStatus.FAILED
                error = f"the task's limit of {self.limits.max_calls_per_task} tool calls is reached"
            else:
                used += 1
            server_name, _, tool_name = request.name.partition(".")
            created = await repo.insert_call(
                tx.conn, id=call_id_for(task.id, step_number, position), company_id=task.company_id,
                team_id=task.team_id, task_id=task.id, member_id=member_id, step_number=step_number,
                position=position, server_id=tool.server.id if tool else None,
                server_name=tool.server.name if tool else server_name, tool_name=tool.tool if tool else tool_name,
                llm_call_id=request.id[:200] or f"call-{position}", arguments=request.arguments,
                approval=tool.server.approval if tool else "auto", status=status.value, error=error)
            if created is None:  # an earlier run of this step recorded it
                ids.append(call_id_for(task.id, step_number, position))
                continue
            ids.append(created.id)
            small = len(json.dumps(created.arguments)) <= EVENT_CHARS  # large ones: GET .../tool-calls
            data = {"call_id": str(created.id), "step_number": step_number, "server": created.server,
                    "tool": created.tool, "arguments": created.arguments if small else {"_cut": True},
                    "approval": created.approval, "status": created.status.value,
                    "member_id": str(member_id) if member_id else None}
            await journal.record(tx, company_id=task.company_id, team_id=task.team_id, task_id=task.id, actor=actor,
                                 event_type="tool.call_requested", data=data)
            if created.status in FINISHED:
                await journal.record(tx, company_id=task.company_id, team_id=task.team_id, task_id=task.id,
                                     actor=SYSTEM, event_type="tool.call_finished", data=_finished_data(created))
        return ids

    # --- approval ---------------------------------------------------------------------------------

    async def prepare(self, call_id: UUID, instance_id: str) -> dict[str, Any]:
        """A call whose server asks for approval opens (once) its `tool_approval` escalation; the task
        stays `in_progress` while it waits. {"status", "escalation_id"}."""
        call = await self.get(call_id)
        if call.status is ToolCallStatus.REQUESTED and call.approval == "ask":

            async def work(tx: Tx) -> ToolCallRecord:
                locked = await repo.lock_call(tx.conn, call_id)
                assert locked is not None
                if locked.status is not ToolCallStatus.REQUESTED:
                    return locked
                reason = (f"Approve the tool call {locked.server}.{locked.tool} "
                          f"with arguments {_arguments_text(locked.arguments)}?")
                escalation = await escalation_repo.insert(
                    tx.conn, id=uuid7(), company_id=locked.company_id, team_id=locked.team_id, task_id=locked.task_id,
                    reason=reason, failure_type=TOOL_APPROVAL, instance_id=instance_id, tool_call_id=locked.id)
                if escalation is None:
                    raise ClassifiedFailure(FailureType.UNKNOWN, "another escalation of the task is open")
                moved = await repo.move_call(tx.conn, call_id, to=ToolCallStatus.AWAITING_APPROVAL.value,
                                             sources=[ToolCallStatus.REQUESTED.value], escalation_id=escalation.id)
                assert moved is not None
                await journal.record(tx, company_id=locked.company_id, team_id=locked.team_id, task_id=locked.task_id,
                                     actor=SYSTEM, event_type="escalation.created",
                                     data={"escalation_id": str(escalation.id), "reason": reason,
                                           "failure_type": TOOL_APPROVAL, "tool_call_id": str(call_id)})
                return moved

            call = await self.db.atomic(work)
        return {"status": call.status.value, "escalation_id": str(call.escalation_id) if call.escalation_id else None}

    async def decide(self, call_id: UUID, *, timed_out: bool, timeout_hours: float) -> dict[str, Any]:
        """Apply the approval escalation's decision to its call: approved, or denied (finished). When the
        wait timed out the escalation is resolved `deny` here, unless a person decided first."""

        async def work(tx: Tx) -> ToolCallRecord:
            call = await repo.lock_call(tx.conn, call_id)
            if call is None:
                raise NotFound("tool call not found")
            if call.status is not ToolCallStatus.AWAITING_APPROVAL or call.escalation_id is None:
                return call
            escalation = await escalation_repo.lock_any(tx.conn, call.escalation_id)
            assert escalation is not None
            if escalation.status == "open":
                if not timed_out:
                    return call
                note = f"no decision within {timeout_hours:g} hours"
                escalation = await escalation_repo.resolve(tx.conn, escalation.id, action="deny", note=note,
                                                           input=None, user_id=None)
                assert escalation is not None
                await journal.record(tx, company_id=call.company_id, team_id=call.team_id, task_id=call.task_id,
                                     actor=SYSTEM, event_type="escalation.resolved",
                                     data={"escalation_id": str(escalation.id), "action": "deny", "note": note})
            if escalation.action == "approve":
                moved = await repo.move_call(tx.conn, call_id, to=ToolCallStatus.APPROVED.value,
                                             sources=[ToolCallStatus.AWAITING_APPROVAL.value])
                assert moved is not None
                await journal.audit(tx, company_id=call.company_id, team_id=call.team_id, task_id=call.task_id,
                                    actor=SYSTEM, event_type="tool.call_approved",
                                    payload={"call_id": str(call_id), "escalation_id": str(escalation.id)})
                return moved
            reason = escalation.note or ("no decision in time" if timed_out else "denied")
            return await self._finish(tx, call, status=ToolCallStatus.DENIED, error=f"denied by a person: {reason}",
                                      sources=[ToolCallStatus.AWAITING_APPROVAL])

        call = await self.db.atomic(work)
        return {"status": call.status.value}

    # --- execution --------------------------------------------------------------------------------

    async def run(self, call_id: UUID) -> dict[str, Any]:
        """Execute the call unless its result is recorded; record the result (or the tool's error).

        Raises ClassifiedFailure: `tool_unavailable` when the server cannot be reached (the call stays
        `running` and is retried with the same id), `budget_exceeded` when the budget has nothing left,
        `team_stopped` when the team ended meanwhile.
        """
        call = await self.get(call_id)
        if call.status in FINISHED or call.status is ToolCallStatus.AWAITING_APPROVAL or (
                call.status is ToolCallStatus.REQUESTED and call.approval == "ask"):
            return self._view(call)
        async with self.db.connection() as conn:
            scope = await team_repo.scope(conn, call.team_id)
            server = await repo.server(conn, call.server_id, call.company_id) if call.server_id else None
        if scope is None:
            raise NotFound("team not found")
        if scope.status in (TeamStatus.CANCELLED, TeamStatus.FAILED, TeamStatus.COMPLETED):
            raise ClassifiedFailure(FailureType.TEAM_STOPPED, f"team is {scope.status.value}; tool call not made")
        if server is None:
            return self._view(await self.finish(call, status=ToolCallStatus.FAILED,
                                                error="the tool server was removed"))
        _, spent = await self.usage(call.task_id)
        remaining = self.limits.max_seconds_per_task - spent
        if remaining <= 0:
            return self._view(await self.finish(call, status=ToolCallStatus.FAILED, error=(
                f"the task's limit of {self.limits.max_seconds_per_task:g} seconds in tools is reached")))
        budget = await self.costs.budget(call.team_id)
        if budget.remaining_usd is not None and budget.remaining_usd <= 0:
            raise BudgetExhausted(server.max_cost_usd, budget)  # nothing left: the call is not started
        reservation: UUID | None = None
        name = f"{call.server}.{call.tool}"
        if server.max_cost_usd > 0:  # BudgetExhausted when its declared maximum does not fit
            reservation = await self.costs.reserve_tool(
                team_id=call.team_id, task_id=call.task_id, member_id=call.member_id, tool=name,
                reserve=server.max_cost_usd,
                ttl_seconds=self.servers.settings.timeouts.read_seconds + RESERVATION_MARGIN_SECONDS)
        started = await self._start(call, reservation)
        if started is None:  # recorded meanwhile by another delivery of this activity
            await self._release(reservation)
            return self._view(await self.get(call_id))
        try:
            headers = await self.servers.headers(server)
            outcome = await self.servers.connector.call_tool(server.url, headers, call.tool, dict(call.arguments),
                                                             call_id=str(call.id), read_seconds=remaining)
        except SecretUnavailable as exc:
            await self._release(reservation)
            return self._view(await self.finish(started, status=ToolCallStatus.FAILED, error=str(exc)))
        except (ToolServerRefused, ToolServerInvalid) as exc:
            await self._release(reservation)
            return self._view(await self.finish(started, status=ToolCallStatus.FAILED, error=str(exc)))
        except ToolServerUnreachable as exc:
            await self._release(reservation)
            raise ClassifiedFailure(FailureType.TOOL_UNAVAILABLE, f"{name}: {exc}") from None
        cost = Decimal(0)
        if outcome.cost_usd is not None:
            try:
                cost = max(Decimal(0), Decimal(outcome.cost_usd)).quantize(Decimal("0.00000001"))
            except InvalidOperation:
                log.warning("a tool server reported a cost that is not a number", extra={"tool": name})
        store = self.limits.result_store_chars
        finished = await self.finish(
            started, status=ToolCallStatus.FAILED if outcome.is_error else ToolCallStatus.SUCCEEDED,
            result=cut(outcome.text, store), result_chars=len(outcome.text),
            error=cut(outcome.text, EVENT_CHARS) if outcome.is_error else None, duration_ms=outcome.elapsed_ms,
            cost=cost, reservation=reservation)
        return self._view(finished)

    @staticmethod
    def _view(call: ToolCallRecord) -> dict[str, Any]:
        return {"status": call.status.value, "call_id": str(call.id)}

    async def _release(self, reservation: UUID | None) -> None:
        if reservation is not None:
            await self.costs.release(reservation)

    async def _start(self, call: ToolCallRecord, reservation: UUID | None) -> ToolCallRecord | None:
        async def work(tx: Tx) -> ToolCallRecord | None:
            locked = await repo.lock_call(tx.conn, call.id)
            if locked is None or locked.status in FINISHED:
                return None
            started = await repo.start_call(tx.conn, call.id, reservation)
            if started is None:
                return None
            await journal.record(tx, company_id=call.company_id, team_id=call.team_id, task_id=call.task_id,
                                 actor=SYSTEM, event_type="tool.call_started",
                                 data={"call_id": str(call.id), "server": call.server, "tool": call.tool,
                                       "attempt": started.attempts})
            return started

        return await self.db.atomic(work)

    async def finish(self, call: ToolCallRecord, *, status: ToolCallStatus, error: str | None = None,
                     result: str | None = None, result_chars: int | None = None, duration_ms: int | None = None,
                     cost: Decimal = Decimal(0), reservation: UUID | None = None) -> ToolCallRecord:
        """Record the outcome once (and bill what the server reported); the row as it is after."""

        async def work(tx: Tx) -> ToolCallRecord:
            locked = await repo.lock_call(tx.conn, call.id)
            if locked is None:
                raise NotFound("tool call not found")
            if locked.status in FINISHED:
                return locked
            finished = await self._finish(tx, locked, status=status, error=error, result=result,
                                          result_chars=result_chars, duration_ms=duration_ms, cost=cost,
                                          sources=[ToolCallStatus(locked.status)])
            await self.costs.bill_tool_in(tx, team_id=call.team_id, tool=f"{call.server}.{call.tool}", cost=cost,
                                          actor=SYSTEM, reservation=reservation, task_id=call.task_id,
                                          member_id=call.member_id)
            return finished

        return await self.db.atomic(work)

    async def _finish(self, tx: Tx, call: ToolCallRecord, *, status: ToolCallStatus, error: str | None,
                      sources: Sequence[ToolCallStatus], result: str | None = None, result_chars: int | None = None,
                      duration_ms: int | None = None, cost: Decimal = Decimal(0)) -> ToolCallRecord:
        finished = await repo.finish_call(tx.conn, call.id, status=status.value, result=result,
                                          result_chars=result_chars, error=error, cost_usd=cost,
                                          duration_ms=duration_ms, sources=[s.value for s in sources])
        assert finished is not None  # locked in this transaction, in one of `sources`
        await journal.record(tx, company_id=call.company_id, team_id=call.team_id, task_id=call.task_id,
                             actor=SYSTEM, event_type="tool.call_finished", data=_finished_data(finished))
        return finished
