"""The steps of a team run, as the Durable activities call them. Each one is idempotent.

Activities are delivered at least once (a crash after the side effect re-runs them), so every step
first looks at where the rows already are and only does what is still missing: a re-run changes
nothing twice. LLM calls are billed once per (step, call) through idempotency keys.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from decimal import Decimal, InvalidOperation
from typing import Any, TypeVar
from uuid import UUID

from pydantic import BaseModel

from shared.agents import manager, worker
from shared.agents.llm import AgentFailed, Completion, LiveOutput, LLMProvider
from shared.agents.manager import PLAN_MAX_TOKENS, REVIEW_MAX_TOKENS, SUMMARY_MAX_TOKENS
from shared.agents.roles import AgentBudgets
from shared.agents.runner import AgentResult
from shared.agents.schemas import DependencyOutput, TaskBrief, TaskOutcome
from shared.agents.worker import STEP_MAX_TOKENS
from shared.domain.errors import IllegalTransition
from shared.domain.failures import ClassifiedFailure, FailureType
from shared.domain.models import Actor, PlannedTaskIn, TaskPublic
from shared.domain.states import TaskStatus, TeamStatus
from shared.services import Services

SYSTEM = Actor.system()
T = TypeVar("T", bound=BaseModel)
MAX_EXECUTION_STEPS = 6


class TeamStopped(ClassifiedFailure):
    """The team was cancelled or finished while a task step was about to run."""

    def __init__(self, status: str) -> None:
        super().__init__(FailureType.TEAM_STOPPED, f"team is {status}; task work stopped")
        self.status = status


#: Opens the live output (`llm.delta`) of one agent's calls: (team_id, task_id, member_id) -> LiveOutput.
LiveFactory = Callable[[UUID, UUID | None, UUID | None], LiveOutput | None]


class TeamRun:
    def __init__(self, services: Services, llm: LLMProvider, *, manager_model: str, worker_model: str,
                 worker_llm: LLMProvider | None = None, budgets: AgentBudgets | None = None,
                 live: LiveFactory | None = None) -> None:
        self.s = services
        self.llm = llm  #: the manager's provider (plan, review, summary)
        self.worker_llm = worker_llm or llm  #: the workers' provider (execute)
        self.manager_model = manager_model
        self.worker_model = worker_model
        self.budgets = budgets or AgentBudgets()
        self.live = live

    def _live(self, team_id: UUID, task_id: UUID | None, member_id: UUID | None) -> LiveOutput | None:
        return self.live(team_id, task_id, member_id) if self.live is not None else None

    async def _dependency_outputs(self, task: TaskPublic) -> list[DependencyOutput]:
        """The final outputs of the tasks `task` depends on, in plan order (context for worker and reviewer)."""
        return [DependencyOutput(title=dep.title, output=dep.output or "")
                for dep in [await self.s.tasks.get(dep_id) for dep_id in task.dependencies]]

    async def _bill(self, completions: Sequence[Completion], *, team_id: UUID, key: str,
                    task_id: UUID | None = None, member_id: UUID | None = None, purpose: str) -> bool:
        """Record every call; return True when the budget is now exceeded."""
        exceeded = False
        for i, completion in enumerate(completions):
            status = await self.s.costs.record(
                team_id=team_id, task_id=task_id, member_id=member_id, provider=completion.provider,
                model=completion.model, input_tokens=completion.input_tokens, output_tokens=completion.output_tokens,
                actor=Actor(type="agent", id=str(member_id) if member_id else "manager"), purpose=purpose,
                idempotency_key=f"{key}:{i}",
            )
            exceeded = status.exceeded
        return exceeded

    async def _billed(self, call: Awaitable[AgentResult[T]], *, team_id: UUID, key: str, purpose: str,
                      task_id: UUID | None = None, member_id: UUID | None = None) -> AgentResult[T]:
        """Run an agent call and bill every LLM call it made, the failed attempts included."""
        try:
            result = await call
        except AgentFailed as failure:
            await self._bill(failure.completions, team_id=team_id, task_id=task_id, member_id=member_id,
                             key=f"{key}:failed", purpose=purpose)
            raise
        await self._bill(result.completions, team_id=team_id, task_id=task_id, member_id=member_id, key=key,
                         purpose=purpose)
        return result

    async def _member_name(self, team_id: UUID, member_id: UUID | None) -> str:
        members = {m.id: m.name for m in await self.s.teams.members(team_id)}
        return members.get(member_id, "Worker") if member_id else "Worker"

    async def _manager_id(self, team_id: UUID) -> UUID | None:
        return next((m.id for m in await self.s.teams.members(team_id) if m.role == "manager"), None)

    # --- team level -------------------------------------------------------------------------------

    async def plan(self, team_id: UUID) -> dict[str, Any]:
        scope = await self.s.teams.get_scope(team_id)
        if scope["status"] != TeamStatus.PLANNING.value:
            raise TeamStopped(scope["status"])
        existing = await self.s.tasks.list_for_team(team_id)
        if not existing:
            team = await self.s.teams.get(scope["company_id"], team_id)
            manager_id = await self._manager_id(team_id)
            result = await self._billed(
                manager.plan_goal(self.llm, goal=team.goal, workers=team.workers, model=self.manager_model,
                                  max_tasks=self.budgets.max_tasks, max_criteria=self.budgets.max_criteria,
                                  max_tokens=self.budgets.max_tokens(PLAN_MAX_TOKENS),
                                  live=self._live(team_id, None, manager_id)),
                team_id=team_id, key=f"plan:{team_id}", member_id=manager_id, purpose="plan")
            await self.s.teams.staff(team_id, [(m.name, m.specialization) for m in result.value.members], SYSTEM)
            items = [PlannedTaskIn(key=t.key, title=t.title, description=t.description,
                                   acceptance_criteria=list(t.acceptance_criteria), dependencies=list(t.dependencies),
                                   specialization=t.specialization) for t in result.value.tasks]
            existing = await self.s.tasks.create_plan(team_id, items, SYSTEM)
            titles = "\n".join(f"{i + 1}. {t.title}" for i, t in enumerate(existing))
            await self.s.messages.post(team_id=team_id, sender="Manager", kind="plan", member_id=manager_id,
                                       content=f"Plan ({result.prompt_version}):\n{titles}",
                                       actor=Actor(type="agent", id="manager"))
            if scope["approve_plan"]:
                await self.s.teams.set_awaiting_plan_approval(team_id, True, SYSTEM)
        return {"tasks": _plan_view(existing), "awaiting_approval": bool(scope["approve_plan"])}

    async def load_plan(self, team_id: UUID) -> dict[str, Any]:
        return {"tasks": _plan_view(await self.s.tasks.list_for_team(team_id))}

    async def activate(self, team_id: UUID) -> str:
        try:
            row = await self.s.teams.activate(team_id, SYSTEM)
            return str(row["status"])
        except IllegalTransition as exc:
            return exc.current

    async def status(self, team_id: UUID) -> dict[str, Any]:
        scope = await self.s.teams.get_scope(team_id)
        budget = await self.s.costs.budget(team_id)
        return {"status": scope["status"], "budget_exceeded": budget.exceeded,
                "spent_usd": str(budget.spent_usd),
                "budget_usd": None if budget.budget_usd is None else str(budget.budget_usd)}

    async def pause_for_budget(self, team_id: UUID, instance_id: str) -> dict[str, Any]:
        budget = await self.s.costs.budget(team_id)
        try:
            await self.s.teams.pause(team_id, SYSTEM, reason="budget exceeded")
        except IllegalTransition as exc:
            if exc.current != TeamStatus.PAUSED.value:
                return {"status": exc.current, "escalation_id": None}
        escalation = await self.s.escalations.open(
            team_id=team_id, reason=f"Budget exceeded: spent ${budget.spent_usd:.4f} of ${budget.budget_usd}",
            failure_type=FailureType.BUDGET_EXCEEDED.value, actor=SYSTEM, instance_id=instance_id,
        )
        return {"status": TeamStatus.PAUSED.value, "escalation_id": str(escalation.id)}

    async def apply_budget_decision(self, team_id: UUID, action: str, value: str | None) -> str:
        """retry/provide_input: raise the budget (to `value` when given) and resume; skip: lift the
        budget; fail: fail the team."""
        if action == "fail":
            return await self._finish(team_id, failed_reason="a human stopped the team at its budget")
        async with self.s.db.transaction() as tx:
            if action == "skip":
                await tx.conn.execute("UPDATE teams SET budget_usd = NULL WHERE id = %(id)s", {"id": team_id})
            elif value:
                try:
                    new_budget = Decimal(value.strip().lstrip("$"))
                except InvalidOperation:
                    new_budget = None
                if new_budget is not None and new_budget >= 0:
                    await tx.conn.execute("UPDATE teams SET budget_usd = %(b)s WHERE id = %(id)s",
                                          {"id": team_id, "b": new_budget})
        try:
            row = await self.s.teams.resume(team_id, SYSTEM)
            return str(row["status"])
        except IllegalTransition as exc:
            return exc.current

    async def summarize(self, team_id: UUID) -> str:
        scope = await self.s.teams.get_scope(team_id)
        if scope["status"] != TeamStatus.ACTIVE.value:
            return str(scope["status"])
        team = await self.s.teams.get(scope["company_id"], team_id)
        outcomes = [TaskOutcome(title=t.title, status=t.status.value, output=t.output) for t in team.tasks or []]
        manager_id = await self._manager_id(team_id)
        result = await self._billed(
            manager.summarize(self.llm, goal=team.goal, tasks=outcomes, model=self.manager_model,
                              context_tokens=self.budgets.context_tokens,
                              max_tokens=self.budgets.max_tokens(SUMMARY_MAX_TOKENS),
                              live=self._live(team_id, None, manager_id)),
            team_id=team_id, key=f"summary:{team_id}", member_id=manager_id, purpose="summary")
        summary = result.value
        text = summary.summary
        if summary.highlights:
            text += "\n\nHighlights:\n" + "\n".join(f"- {h}" for h in summary.highlights)
        if summary.follow_ups:
            text += "\n\nFollow-ups:\n" + "\n".join(f"- {f}" for f in summary.follow_ups)
        await self.s.messages.post(team_id=team_id, sender="Manager", kind="summary", member_id=manager_id,
                                   content=text, actor=Actor(type="agent", id="manager"))
        return await self._finish(team_id, result=text)

    async def _finish(self, team_id: UUID, *, result: str | None = None, failed_reason: str | None = None) -> str:
        try:
            if failed_reason is not None:
                row = await self.s.teams.fail(team_id, SYSTEM, reason=failed_reason)
            else:
                row = await self.s.teams.complete(team_id, SYSTEM, result=result or "")
            return str(row["status"])
        except IllegalTransition as exc:
            return exc.current

    async def fail(self, team_id: UUID, reason: str) -> str:
        return await self._finish(team_id, failed_reason=reason)

    # --- task level -------------------------------------------------------------------------------

    async def _task(self, task_id: UUID) -> TaskPublic:
        return await self.s.tasks.get(task_id)

    async def _ensure_team_running(self, team_id: UUID) -> None:
        scope = await self.s.teams.get_scope(team_id)
        if scope["status"] in (TeamStatus.CANCELLED.value, TeamStatus.FAILED.value, TeamStatus.COMPLETED.value):
            raise TeamStopped(scope["status"])

    async def assign(self, task_id: UUID) -> dict[str, Any]:
        task = await self._task(task_id)
        if task.status != TaskStatus.PENDING:
            return {"status": task.status.value, "assigned_to": str(task.assigned_to) if task.assigned_to else None}
        await self._ensure_team_running(task.team_id)
        workers = [m for m in await self.s.teams.members(task.team_id) if m.role == "worker"]
        load = await self._open_load(task.team_id)
        matching = [m for m in workers if m.specialization == task.specialization] or workers
        chosen = min(matching, key=lambda m: (load.get(m.id, 0), m.name))
        moved = await self.s.tasks.assign(task_id, chosen.id, SYSTEM, expected_version=task.version)
        return {"status": moved.status.value, "assigned_to": str(chosen.id)}

    async def _open_load(self, team_id: UUID) -> dict[UUID, int]:
        tasks = await self.s.tasks.list_for_team(team_id)
        load: dict[UUID, int] = {}
        for t in tasks:
            if t.assigned_to and t.status not in (TaskStatus.COMPLETED, TaskStatus.FAILED):
                load[t.assigned_to] = load.get(t.assigned_to, 0) + 1
        return load

    async def start(self, task_id: UUID) -> str:
        task = await self._task(task_id)
        if task.status in (TaskStatus.ASSIGNED, TaskStatus.REVISION_REQUESTED):
            await self._ensure_team_running(task.team_id)
            return (await self.s.tasks.start(task_id, Actor(type="agent", id=str(task.assigned_to)),
                                             expected_version=task.version)).status.value
        return task.status.value

    async def execute(self, task_id: UUID) -> dict[str, Any]:
        """Run the worker's steps, checkpointing each; resume after the latest checkpoint of this round."""
        task = await self._task(task_id)
        if task.status != TaskStatus.IN_PROGRESS:
            return {"status": task.status.value, "output": task.output or ""}
        await self._ensure_team_running(task.team_id)
        round_number = task.revision_count
        checkpoints = [c for c in await self._round_checkpoints(task_id) if c["state"].get("round") == round_number]
        contents = [c["step_output"].get("content", "") for c in checkpoints]
        next_step = await self._next_step_number(task_id)
        if checkpoints and checkpoints[-1]["step_output"].get("is_final"):
            return {"status": task.status.value, "output": _output_of(checkpoints)}
        brief = TaskBrief(title=task.title, description=task.description,
                          acceptance_criteria=task.acceptance_criteria, specialization=task.specialization)
        member = task.assigned_to
        goal = str((await self.s.teams.get_scope(task.team_id))["goal"])
        dependencies = await self._dependency_outputs(task)
        for step_in_round in range(len(checkpoints) + 1, MAX_EXECUTION_STEPS + 1):
            await self._ensure_team_running(task.team_id)
            budget = await self.s.costs.budget(task.team_id)
            if budget.exceeded:
                raise ClassifiedFailure(FailureType.BUDGET_EXCEEDED, "the team's budget is spent")
            key = f"step:{task_id}:{round_number}:{step_in_round}"
            result = await self._billed(
                worker.execute_step(self.worker_llm, goal=goal, task=brief, step_number=step_in_round,
                                    previous_steps=contents, feedback=task.feedback, model=self.worker_model,
                                    dependencies=dependencies, context_tokens=self.budgets.context_tokens,
                                    max_tokens=self.budgets.max_tokens(STEP_MAX_TOKENS),
                                    live=self._live(task.team_id, task_id, member)),
                team_id=task.team_id, task_id=task_id, member_id=member, key=key, purpose="execute")
            step = result.value
            is_final = step.is_final or step_in_round == MAX_EXECUTION_STEPS
            output = {"title": step.title, "content": step.content, "is_final": is_final,
                      "step_in_round": step_in_round}
            created = await self.s.checkpoints.create(
                task_id, next_step, output, Actor(type="agent", id=str(member)),
                checkpoint_type="final" if is_final else ("revision" if round_number else "step"),
                state={"round": round_number, "prompt_version": result.prompt_version,
                       "context_cuts": [c.as_dict() for c in result.context_cuts]},
            )
            checkpoints.append({"step_output": created.step_output})
            await self.s.messages.post(team_id=task.team_id, task_id=task_id, member_id=member, kind="step",
                                       sender=await self._member_name(task.team_id, member),
                                       content=f"{task.title} — step {step_in_round}: {step.title}",
                                       actor=Actor(type="agent", id=str(member)))
            contents.append(step.content)
            next_step += 1
            if is_final:
                break
        return {"status": task.status.value, "output": _output_of(checkpoints)}

    async def _round_checkpoints(self, task_id: UUID) -> list[dict[str, Any]]:
        async with self.s.db.connection() as conn:
            cur = await conn.execute(
                "SELECT step_number, step_output, state FROM checkpoints WHERE task_id = %(id)s ORDER BY step_number",
                {"id": task_id},
            )
            return [dict(r) for r in await cur.fetchall()]

    async def _next_step_number(self, task_id: UUID) -> int:
        latest = await self.s.checkpoints.latest(task_id)
        return 1 if latest is None else int(latest["step_number"]) + 1

    async def submit(self, task_id: UUID, output: str) -> str:
        task = await self._task(task_id)
        if task.status in (TaskStatus.IN_PROGRESS, TaskStatus.REVISION_REQUESTED):
            await self._ensure_team_running(task.team_id)
            moved = await self.s.tasks.submit_for_review(task_id, output, Actor(type="agent", id=str(task.assigned_to)),
                                                         expected_version=task.version)
            return moved.status.value
        return task.status.value

    async def review(self, task_id: UUID) -> dict[str, Any]:
        """Manager review: approve, or request a revision while revisions remain, else ask to escalate."""
        task = await self._task(task_id)
        if task.status == TaskStatus.COMPLETED:
            return {"verdict": "approve", "feedback": ""}
        if task.status in (TaskStatus.REVISION_REQUESTED, TaskStatus.IN_PROGRESS):
            return {"verdict": "revise", "feedback": task.feedback or ""}
        if task.status != TaskStatus.REVIEW:
            return {"verdict": "stopped", "status": task.status.value, "feedback": ""}
        await self._ensure_team_running(task.team_id)
        brief = TaskBrief(title=task.title, description=task.description,
                          acceptance_criteria=task.acceptance_criteria, specialization=task.specialization)
        manager_id = await self._manager_id(task.team_id)
        key = f"review:{task_id}:{task.revision_count}"
        goal = str((await self.s.teams.get_scope(task.team_id))["goal"])
        result = await self._billed(
            manager.review_output(self.llm, goal=goal, task=brief,
                                  output=task.output or "", revision=task.revision_count, model=self.manager_model,
                                  dependencies=await self._dependency_outputs(task),
                                  context_tokens=self.budgets.context_tokens,
                                  max_tokens=self.budgets.max_tokens(REVIEW_MAX_TOKENS),
                                  live=self._live(task.team_id, task_id, manager_id)),
            team_id=task.team_id, task_id=task_id, member_id=manager_id, key=key, purpose="review")
        review = result.value
        manager_actor = Actor(type="agent", id="manager")
        if review.verdict == "approve":
            await self.s.tasks.approve(task_id, manager_actor, expected_version=task.version)
            await self.s.messages.post(team_id=task.team_id, task_id=task_id, sender="Manager", kind="review",
                                       member_id=manager_id, content=f"Approved “{task.title}”.", actor=manager_actor)
            return {"verdict": "approve", "feedback": ""}
        unmet = "; ".join(c.criterion for c in review.criteria if not c.met)
        feedback = review.feedback or f"Unmet: {unmet}"
        if task.revision_count >= task.max_revisions:
            return {"verdict": "escalate", "feedback": feedback,
                    "reason": f"still not accepted after {task.revision_count} revision(s): {unmet}"}
        await self.s.tasks.request_revision(task_id, feedback, manager_actor, expected_version=task.version)
        await self.s.messages.post(team_id=task.team_id, task_id=task_id, sender="Manager", kind="review",
                                   member_id=manager_id, content=f"Revision requested for “{task.title}”: {feedback}",
                                   actor=manager_actor)
        return {"verdict": "revise", "feedback": feedback}

    async def escalate(self, task_id: UUID, reason: str, failure_type: str, instance_id: str) -> str:
        task = await self._task(task_id)
        if task.status in (TaskStatus.COMPLETED, TaskStatus.FAILED):
            return task.status.value
        escalation = await self.s.escalations.open(team_id=task.team_id, task_id=task_id, reason=reason,
                                                   failure_type=failure_type, actor=SYSTEM, instance_id=instance_id)
        return str(escalation.id)

    async def apply_escalation_decision(self, task_id: UUID, action: str, note: str | None,
                                        value: str | None) -> str:
        task = await self._task(task_id)
        if task.status != TaskStatus.ESCALATED:
            return task.status.value
        human = Actor(type="user", id="escalation")
        if action == "retry":
            round_done = any(c["state"].get("round") == task.revision_count and c["step_output"].get("is_final")
                             for c in await self._round_checkpoints(task_id))
            return (await self.s.tasks.resume_escalated(task_id, human, note=note, new_round=round_done)).status.value
        if action in ("skip", "provide_input"):
            return (await self.s.tasks.complete_escalated(task_id, human, output=value)).status.value
        return (await self.s.tasks.fail_escalated(task_id, human, reason=note or "failed by a human")).status.value

    async def fail_task(self, task_id: UUID, reason: str) -> str:
        task = await self._task(task_id)
        if task.status in (TaskStatus.COMPLETED, TaskStatus.FAILED):
            return task.status.value
        return (await self.s.tasks.fail(task_id, reason, SYSTEM)).status.value

    async def reopen(self, task_id: UUID) -> str:
        task = await self._task(task_id)
        if task.status not in (TaskStatus.FAILED, TaskStatus.ESCALATED):
            return task.status.value
        return (await self.s.tasks.reopen_for_retry(task_id, Actor(type="user", id="retry"))).status.value


def _plan_view(tasks: Sequence[TaskPublic]) -> list[dict[str, Any]]:
    return [{"id": str(t.id), "title": t.title, "status": t.status.value,
             "dependencies": [str(d) for d in t.dependencies]} for t in tasks]


def _output_of(checkpoints: Sequence[dict[str, Any]]) -> str:
    parts = []
    for c in checkpoints:
        out = c["step_output"]
        parts.append(f"## {out.get('title', 'Step')}\n\n{out.get('content', '')}")
    return "\n\n".join(parts)
