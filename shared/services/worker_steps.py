"""One worker step, the durable unit of execution: one LLM call and what it leads to, committed together.

The task orchestrator calls `WorkerSteps.run` once per step. The step makes one call (the worker
agent), then writes, in one transaction, the call's cost settlement, its checkpoint and message,
the task's state (a revision round starts with its first step; the final step hands the task to
review with its output) and, when the answer asks for tools, the requested calls (`tool_calls` rows,
`tool.call_requested` events). A crash leaves all of it or none of it. The orchestrator then
runs each call in its own activity, and the next step continues the conversation with the recorded
results. A step re-run after a crash resumes after the latest checkpoint of the round; when that
checkpoint's calls are not all finished, the step makes no LLM call and hands them back to run.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import Any
from uuid import UUID, uuid5

from shared.agents import worker
from shared.agents.llm import LiveOutput, supports_tools
from shared.agents.roles import AgentBudgets
from shared.agents.runner import ToolTurn
from shared.agents.schemas import DependencyOutput, TaskBrief
from shared.agents.worker import STEP_MAX_TOKENS
from shared.db.database import Tx
from shared.domain.errors import IllegalTransition
from shared.domain.models import Actor, CheckpointRecord, TaskRecord
from shared.domain.states import TaskStatus
from shared.domain.tools import FINISHED
from shared.failpoints import crash_point
from shared.services import Services
from shared.services.metering import MeteredProvider
from shared.services.tool_servers import TeamTool

MAX_EXECUTION_STEPS = 6
#: The statuses a worker step runs in: in progress, or handed back for a revision (the step starts it).
STEPPABLE = (TaskStatus.IN_PROGRESS, TaskStatus.REVISION_REQUESTED)
#: `checkpoints.state.kind` of a step whose answer asked for tool calls.
TOOL_REQUEST = "tool_request"
#: Namespace of the ids of messages a step posts: the same step always posts the same message id.
MESSAGES = UUID("5e0c0a8e-7f39-4d3a-9d1e-6a0d8f3b2c11")

#: (team_id, task_id, member_id, actor) -> the metered worker provider of one task.
ProviderFor = Callable[[UUID, UUID, UUID | None, Actor], MeteredProvider]


def message_id(*parts: object) -> UUID:
    return uuid5(MESSAGES, ":".join(str(p) for p in parts))


def brief_of(task: TaskRecord) -> TaskBrief:
    return TaskBrief(title=task.title, description=task.description, acceptance_criteria=task.acceptance_criteria,
                     specialization=task.specialization)


def is_tool_request(checkpoint: CheckpointRecord) -> bool:
    return checkpoint.state.get("kind") == TOOL_REQUEST


def output_of(checkpoints: Sequence[CheckpointRecord]) -> str:
    """The task's output: every step's content (tool requests are shown by GET /tool-calls instead)."""
    parts = []
    for c in checkpoints:
        if is_tool_request(c):
            continue
        out = c.step_output
        parts.append(f"## {out.get('title', 'Step')}\n\n{out.get('content', '')}")
    return "\n\n".join(parts)


class WorkerSteps:
    def __init__(self, services: Services, provider_for: ProviderFor, *, worker_model: str,
                 ensure_team_running: Callable[[UUID], Awaitable[None]],
                 context: Callable[[TaskRecord], Awaitable[tuple[str, list[DependencyOutput]]]] | None = None,
                 budgets: AgentBudgets | None = None,
                 live: Callable[[UUID, UUID | None, UUID | None], LiveOutput | None] | None = None) -> None:
        self.s = services
        self.provider_for = provider_for
        self.worker_model = worker_model
        self.ensure_team_running = ensure_team_running
        self.context = context  #: the team's goal and the dependencies' final outputs of a task
        self.budgets = budgets or AgentBudgets()
        self.live = live  #: the live output (llm.delta) of a task's calls

    async def run(self, task_id: UUID) -> dict[str, Any]:
        """{"status", "done", "output", "tool_calls": [ids to run before the next step]}.

        A task whose revision was requested starts its new round here (in the first step's
        transaction), and the final step hands the task to review in its own transaction: `status` is
        then `review` and there is nothing to submit.
        """
        async with self.s.db.reads():  # one read transaction for everything the step reads first
            task = await self.s.tasks.get(task_id)
            if task.status not in STEPPABLE:
                return {"status": task.status.value, "done": True, "output": task.output or "", "tool_calls": []}
            await self.ensure_team_running(task.team_id)
            round_number = task.revision_count
            all_checkpoints = await self.s.checkpoints.list(task_id)
            checkpoints = [c for c in all_checkpoints if c.state.get("round") == round_number]
            finished = bool(checkpoints and checkpoints[-1].step_output.get("is_final"))
            if not finished:
                calls = await self.s.tool_calls.records(task_id)
                if checkpoints and is_tool_request(checkpoints[-1]):
                    status = {str(c.id): c.status for c in calls}
                    pending = [i for i in checkpoints[-1].step_output.get("tool_calls", [])
                               if status.get(i) not in FINISHED]
                    if pending:
                        return {"status": task.status.value, "done": False, "output": "", "tool_calls": pending}
                steps = [c for c in checkpoints if not is_tool_request(c)]
                last_step = steps[-1].step_number if steps else 0
                turns = [(c.step_number, str(c.state.get("assistant_text", ""))) for c in checkpoints
                         if is_tool_request(c) and c.step_number > last_step]
                member = task.assigned_to
                agent = Actor(type="agent", id=str(member))
                provider = self.provider_for(task.team_id, task_id, member, agent)
                offered = await self._offered_tools(task, provider, len(turns))
                goal, dependencies = await self.context(task) if self.context is not None else ("", [])
                names = {m.id: m.name for m in await self.s.teams.members(task.team_id)}
        if finished:
            return await self._submit(task, checkpoints)  # the round's work is done (a step saved before an upgrade)
        try:
            return await self._step(task, provider, all_checkpoints, checkpoints, steps, calls, turns, offered,
                                    goal, dependencies, sender=names.get(member, "Worker") if member else "Worker",
                                    agent=agent)
        finally:
            await provider.settle_leftovers()  # a step that did not commit still pays for its calls

    async def _step(self, task: TaskRecord, provider: MeteredProvider, all_checkpoints: Sequence[CheckpointRecord],
                    checkpoints: Sequence[CheckpointRecord], steps: Sequence[CheckpointRecord],
                    calls: Sequence[Any], turns: list[tuple[int, str]], offered: list[TeamTool], goal: str,
                    dependencies: list[DependencyOutput], *, sender: str, agent: Actor) -> dict[str, Any]:
        task_id, member, round_number = task.id, task.assigned_to, task.revision_count
        step_in_round = len(steps) + 1
        result = await worker.execute_step(
            provider, goal=goal, task=brief_of(task), step_number=step_in_round,
            previous_steps=[str(c.step_output.get("content", "")) for c in steps], feedback=task.feedback,
            model=self.worker_model, dependencies=dependencies, context_tokens=self.budgets.context_tokens,
            max_tokens=self.budgets.max_tokens(STEP_MAX_TOKENS),
            live=self.live(task.team_id, task_id, member) if self.live is not None else None,
            tools=[t.spec for t in offered], tool_turns=self.s.tool_calls.exchanges(list(calls), turns))
        next_step = (all_checkpoints[-1].step_number + 1) if all_checkpoints else 1
        if isinstance(result, ToolTurn):
            tools = {t.spec.name: t for t in offered}

            async def save_request(tx: Tx) -> CheckpointRecord:
                await self._start_round(tx, task, agent)
                return await self._save_tool_request(
                    tx, task, result, tools, step_number=next_step, step_in_round=step_in_round, agent=agent,
                    round_number=round_number, sender=sender)

            try:
                saved = await provider.commit(self.s.db, save_request)
            except IllegalTransition:
                return await self._stopped(task_id)
            crash_point("step.committed")
            ids = [str(i) for i in saved.step_output.get("tool_calls", [])]
            return {"status": TaskStatus.IN_PROGRESS.value, "done": False, "output": "", "tool_calls": ids}
        step = result.value
        is_final = step.is_final or step_in_round == MAX_EXECUTION_STEPS
        output = {"title": step.title, "content": step.content, "is_final": is_final, "step_in_round": step_in_round}

        async def save(tx: Tx) -> tuple[CheckpointRecord, str]:
            await self._start_round(tx, task, agent)
            created = await self.s.checkpoints.create(
                task_id, next_step, output, agent,
                checkpoint_type="final" if is_final else ("revision" if round_number else "step"),
                state={"round": round_number, "prompt_version": result.prompt_version,
                       "context_cuts": [c.as_dict() for c in result.context_cuts]}, tx=tx)
            await self.s.messages.post(tx=tx, team_id=task.team_id, task_id=task_id, member_id=member, kind="step",
                                       sender=sender, content=f"{task.title} — step {step_in_round}: {step.title}",
                                       message_id=message_id("step", task_id, next_step))
            if not created.step_output.get("is_final"):
                return created, TaskStatus.IN_PROGRESS.value
            moved = await self.s.tasks.move(tx, task_id, TaskStatus.REVIEW, agent, sources=(TaskStatus.IN_PROGRESS,),
                                            sets=("output = %(output)s",),
                                            params={"output": output_of([*checkpoints, created])})
            return created, moved.status.value

        try:
            created, status = await provider.commit(self.s.db, save)
        except IllegalTransition:
            return await self._stopped(task_id)
        crash_point("step.committed")
        if created.step_output.get("is_final"):
            return {"status": status, "done": True, "output": output_of([*checkpoints, created]), "tool_calls": []}
        return {"status": status, "done": False, "output": "", "tool_calls": []}

    async def _start_round(self, tx: Tx, task: TaskRecord, agent: Actor) -> None:
        """A task handed back for revision (or assigned, not started) is in progress from its first step."""
        if task.status != TaskStatus.IN_PROGRESS:
            await self.s.tasks.move(tx, task.id, TaskStatus.IN_PROGRESS, agent, sources=(task.status,),
                                    sets=("started_at = coalesce(t.started_at, now())",))

    async def _submit(self, task: TaskRecord, checkpoints: Sequence[CheckpointRecord]) -> dict[str, Any]:
        """The round's final step is saved and the task not in review yet: hand it to review now."""
        output = output_of(checkpoints)
        if task.status == TaskStatus.IN_PROGRESS:
            agent = Actor(type="agent", id=str(task.assigned_to))
            try:
                moved = await self.s.db.atomic(lambda tx: self.s.tasks.move(
                    tx, task.id, TaskStatus.REVIEW, agent, sources=(TaskStatus.IN_PROGRESS,),
                    sets=("output = %(output)s",), params={"output": output}))
            except IllegalTransition:
                return await self._stopped(task.id)
            return {"status": moved.status.value, "done": True, "output": output, "tool_calls": []}
        return {"status": task.status.value, "done": True, "output": output, "tool_calls": []}

    async def _stopped(self, task_id: UUID) -> dict[str, Any]:
        """The task left the worker meanwhile (a human, a cancel): the step's writes were rolled back."""
        task = await self.s.tasks.get(task_id)
        return {"status": task.status.value, "done": True, "output": task.output or "", "tool_calls": []}

    async def _offered_tools(self, task: TaskRecord, provider: MeteredProvider, turns: int) -> list[TeamTool]:
        """The team's tools, unless the provider cannot use tools, this step had its tool rounds, or the
        task used up its calls or its time in tools (then the model must answer with what it has)."""
        scope = await self.s.teams.get_scope(task.team_id)
        if not scope.tools or not supports_tools(provider):
            return []
        limits = self.s.tool_calls.limits
        calls, seconds = await self.s.tool_calls.usage(task.id)
        if turns >= limits.max_tool_turns_per_step or calls >= limits.max_calls_per_task \
                or seconds >= limits.max_seconds_per_task:
            return []
        return await self.s.tool_servers.team_tools(task.company_id, scope.tools)

    async def _save_tool_request(self, tx: Tx, task: TaskRecord, turn: ToolTurn, tools: dict[str, TeamTool], *,
                                 step_number: int, step_in_round: int, agent: Actor, round_number: int,
                                 sender: str) -> CheckpointRecord:
        ids = await self.s.tool_calls.record_requested(tx, task=task, step_number=step_number,
                                                       member_id=task.assigned_to, requests=turn.tool_calls,
                                                       tools=tools, actor=agent)
        names = ", ".join(c.name for c in turn.tool_calls)
        output = {"title": "Tool calls", "content": f"Calling {names}", "is_final": False,
                  "step_in_round": step_in_round, "tool_calls": [str(i) for i in ids]}
        created = await self.s.checkpoints.create(
            task.id, step_number, output, agent, checkpoint_type="revision" if round_number else "step",
            state={"round": round_number, "prompt_version": turn.prompt_version, "kind": TOOL_REQUEST,
                   "assistant_text": turn.text}, tx=tx)
        await self.s.messages.post(tx=tx, team_id=task.team_id, task_id=task.id, member_id=task.assigned_to,
                                   kind="tool_request", sender=sender,
                                   content=f"{task.title} — step {step_in_round}: calling {names}",
                                   message_id=message_id("step", task.id, step_number))
        return created
