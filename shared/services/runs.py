"""The steps of a team run, as the Durable activities call them. Each one is idempotent.

Activities are delivered at least once (a crash after the side effect re-runs them), so every step
first looks at where the rows already are and only does what is still missing: a re-run changes
nothing twice. What a step writes after its LLM call (tasks, checkpoint, transition, message) commits
in one transaction, so a crash leaves either all of it or none of it. Every LLM call goes through
`MeteredProvider`: reserved against the budget before it is made, billed once per attempt after.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from decimal import Decimal, InvalidOperation
from typing import Any
from uuid import UUID

from shared.agents import manager
from shared.agents.llm import LiveOutput, LLMProvider
from shared.agents.manager import PLAN_MAX_TOKENS, REVIEW_MAX_TOKENS, SUMMARY_MAX_TOKENS
from shared.agents.roles import AgentBudgets
from shared.agents.schemas import DependencyOutput, TaskOutcome
from shared.db.database import Tx
from shared.db.repositories import teams as team_repo
from shared.domain.errors import IllegalTransition, NotFound
from shared.domain.failures import ClassifiedFailure, FailureType
from shared.domain.models import Actor, MemberPublic, PlannedTaskIn, TaskRecord, TeamScope
from shared.domain.states import TaskStatus, TeamStatus
from shared.failpoints import crash_point
from shared.orchestration_names import Verdict
from shared.services import Services
from shared.services.metering import CallScope, MeteredProvider
from shared.services.worker_steps import WorkerSteps, brief_of, message_id

SYSTEM = Actor.system()
MANAGER = Actor(type="agent", id="manager")


class TeamStopped(ClassifiedFailure):
    """The team was cancelled or finished while a task step was about to run."""

    def __init__(self, status: str) -> None:
        super().__init__(FailureType.TEAM_STOPPED, f"team is {status}; task work stopped")
        self.status = status


#: Opens the live output (`llm.delta`) of one agent's calls: (team_id, task_id, member_id) -> LiveOutput.
LiveFactory = Callable[[UUID, UUID | None, UUID | None], LiveOutput | None]


class TeamRun:
    def __init__(self, services: Services, llm: LLMProvider, *, manager_model: str, worker_model: str,
                 call_timeout_seconds: float = 600.0, worker_llm: LLMProvider | None = None,
                 budgets: AgentBudgets | None = None, live: LiveFactory | None = None) -> None:
        self.s = services
        self.llm = llm  #: the manager's provider (plan, review, summary)
        self.worker_llm = worker_llm or llm  #: the workers' provider (execute): providers per agent role
        self.manager_model = manager_model
        self.worker_model = worker_model
        self.call_timeout_seconds = call_timeout_seconds
        self.budgets = budgets or AgentBudgets()  #: context and output token limits, plan size
        self.live = live  #: where the models' text goes as it is written (llm.delta), if anywhere
        self.steps = WorkerSteps(
            services, lambda team_id, task_id, member_id, actor: self._metered(
                team_id, "execute", task_id=task_id, member_id=member_id, actor=actor),
            worker_model=worker_model, ensure_team_running=self._ensure_team_running,
            context=self._context, budgets=self.budgets, live=self._live)

    def _metered(self, team_id: UUID, purpose: str, *, task_id: UUID | None = None,
                 member_id: UUID | None = None, actor: Actor = MANAGER) -> MeteredProvider:
        scope = CallScope(team_id=team_id, purpose=purpose, actor=actor, task_id=task_id, member_id=member_id)
        llm = self.worker_llm if purpose == "execute" else self.llm
        return MeteredProvider(llm, self.s.costs, scope, call_timeout_seconds=self.call_timeout_seconds,
                               defer_settlement=True)

    def _live(self, team_id: UUID, task_id: UUID | None, member_id: UUID | None) -> LiveOutput | None:
        return self.live(team_id, task_id, member_id) if self.live is not None else None

    async def _context(self, task: TaskRecord) -> tuple[str, list[DependencyOutput]]:
        """The team's goal and the final outputs of the tasks `task` depends on (one round trip)."""
        team = await self.s.teams.get(task.company_id, task.team_id)
        outputs = {t.id: t for t in team.tasks or []}
        return team.goal, [DependencyOutput(title=outputs[d].title, output=outputs[d].output or "")
                           for d in task.dependencies if d in outputs]

    @staticmethod
    def _manager(members: Sequence[MemberPublic]) -> UUID | None:
        return next((m.id for m in members if m.role == "manager"), None)

    # --- team level -------------------------------------------------------------------------------

    async def plan(self, team_id: UUID) -> dict[str, Any]:
        """Plan the team (once) and, unless the plan awaits approval, activate it in the same
        transaction: {"tasks", "awaiting_approval", "team_status"}."""
        scope = await self.s.teams.get_scope(team_id)
        if scope.status in (TeamStatus.ACTIVE, TeamStatus.PAUSED):
            # Planned and activated by an earlier run of this step whose result was lost.
            existing = await self.s.tasks.list_for_team(team_id)
            return {"tasks": _plan_view(existing), "awaiting_approval": False, "team_status": scope.status.value}
        if scope.status != TeamStatus.PLANNING:
            raise TeamStopped(scope.status.value)
        existing = await self.s.tasks.list_for_team(team_id)
        if existing:
            status = TeamStatus.PLANNING.value
            if not scope.approve_plan:
                status = await self.s.db.atomic(lambda tx: self._activate(tx, team_id))
            return {"tasks": _plan_view(existing), "awaiting_approval": scope.approve_plan, "team_status": status}
        team = await self.s.teams.get(scope.company_id, team_id)
        manager_id = self._manager(team.members or [])
        metered = self._metered(team_id, "plan", member_id=manager_id)
        try:
            result = await manager.plan_goal(metered, goal=team.goal, workers=team.workers, model=self.manager_model,
                                             max_tasks=self.budgets.max_tasks, max_criteria=self.budgets.max_criteria,
                                             max_tokens=self.budgets.max_tokens(PLAN_MAX_TOKENS),
                                             live=self._live(team_id, None, manager_id))
            items = [PlannedTaskIn(key=t.key, title=t.title, description=t.description,
                                   acceptance_criteria=list(t.acceptance_criteria), dependencies=list(t.dependencies),
                                   specialization=t.specialization) for t in result.value.tasks]
            staffing = [(m.name, m.specialization) for m in result.value.members]

            async def persist(tx: Tx) -> tuple[list[TaskRecord], str]:
                await self.s.teams.staff(team_id, staffing, SYSTEM, tx=tx)
                tasks = await self.s.tasks.create_plan(team_id, items, SYSTEM, tx=tx)
                titles = "\n".join(f"{i + 1}. {t.title}" for i, t in enumerate(tasks))
                await self.s.messages.post(tx=tx, team_id=team_id, sender="Manager", kind="plan", member_id=manager_id,
                                           content=f"Plan ({result.prompt_version}):\n{titles}",
                                           message_id=message_id("plan", team_id))
                if scope.approve_plan:
                    await self.s.teams.set_awaiting_plan_approval(team_id, True, SYSTEM, tx=tx)
                    return tasks, TeamStatus.PLANNING.value
                return tasks, await self._activate(tx, team_id)

            existing, status = await metered.commit(self.s.db, persist)
            crash_point("plan.committed")
        finally:
            await metered.settle_leftovers()
        return {"tasks": _plan_view(existing), "awaiting_approval": scope.approve_plan, "team_status": status}

    async def _activate(self, tx: Tx, team_id: UUID) -> str:
        try:
            return (await self.s.teams.move(tx, team_id, TeamStatus.ACTIVE, SYSTEM, sources=(TeamStatus.PLANNING,),
                                            sets=("awaiting_plan_approval = false",))).status.value
        except IllegalTransition as exc:
            return exc.current

    async def load_plan(self, team_id: UUID) -> dict[str, Any]:
        """The approved plan, the team activated with it: {"tasks", "team_status"}."""
        status = await self.s.db.atomic(lambda tx: self._activate(tx, team_id))
        return {"tasks": _plan_view(await self.s.tasks.list_for_team(team_id)), "team_status": status}

    async def activate(self, team_id: UUID) -> str:
        """Kept for orchestration histories recorded before `plan` and `load_plan` activated the team."""
        try:
            return (await self.s.teams.activate(team_id, SYSTEM)).status.value
        except IllegalTransition as exc:
            return exc.current

    async def status(self, team_id: UUID) -> dict[str, Any]:
        return _state_of(await self.s.teams.get_scope(team_id))

    async def pause_for_budget(self, team_id: UUID, instance_id: str) -> dict[str, Any]:
        """Pause the team at its budget (a team still planning stays `planning`) and open, once, the
        escalation that asks for a decision."""
        budget = await self.s.costs.budget(team_id)
        status = TeamStatus.PAUSED.value
        try:
            await self.s.teams.pause(team_id, SYSTEM, reason="budget exceeded")
        except IllegalTransition as exc:
            if exc.current not in (TeamStatus.PAUSED.value, TeamStatus.PLANNING.value):
                return {"status": exc.current, "escalation_id": None}
            status = exc.current
        escalation = await self.s.escalations.open(
            team_id=team_id, reason=f"Budget reached: spent ${budget.spent_usd:.4f} of ${budget.budget_usd}; "
                                    "the next LLM call would not fit",
            failure_type=FailureType.BUDGET_EXCEEDED.value, actor=SYSTEM, instance_id=instance_id,
        )
        return {"status": status, "escalation_id": str(escalation.id)}

    async def apply_budget_decision(self, team_id: UUID, action: str, value: str | None) -> str:
        """retry/provide_input: raise the budget (to `value` when given) and resume; skip: lift the
        budget; fail: fail the team. A new budget below what is spent leaves the team paused (a team
        stopped while planning stays `planning` and plans again)."""
        if action == "fail":
            return await self._finish(team_id, failed_reason="a human stopped the team at its budget")
        new_budget: Decimal | None = None
        if action != "skip":
            try:
                new_budget = Decimal((value or "").strip().lstrip("$"))
            except InvalidOperation:
                new_budget = None
            if new_budget is None or not new_budget.is_finite() or new_budget < 0:
                scope = await self.s.teams.get_scope(team_id)
                new_budget = scope.budget_usd  # "retry" without a usable amount: keep the budget

        async def work(tx: Tx) -> str:
            target = None if action == "skip" else new_budget
            changes_budget = action == "skip" or new_budget is not None
            if changes_budget and not await self.s.teams.set_budget(team_id, target, SYSTEM, tx=tx):
                return TeamStatus.PAUSED.value
            try:
                return (await self.s.teams.move(tx, team_id, TeamStatus.ACTIVE, SYSTEM,
                                                sources=(TeamStatus.PAUSED,))).status.value
            except IllegalTransition as exc:
                return exc.current

        return await self.s.db.atomic(work)

    async def summarize(self, team_id: UUID) -> str:
        scope = await self.s.teams.get_scope(team_id)
        if scope.status != TeamStatus.ACTIVE:
            return scope.status.value
        team = await self.s.teams.get(scope.company_id, team_id)
        outcomes = [TaskOutcome(title=t.title, status=t.status.value, output=t.output) for t in team.tasks or []]
        manager_id = self._manager(team.members or [])
        metered = self._metered(team_id, "summary", member_id=manager_id)
        try:
            result = await manager.summarize(metered, goal=team.goal, tasks=outcomes, model=self.manager_model,
                                             context_tokens=self.budgets.context_tokens,
                                             max_tokens=self.budgets.max_tokens(SUMMARY_MAX_TOKENS),
                                             live=self._live(team_id, None, manager_id))
            summary = result.value
            text = summary.summary
            if summary.highlights:
                text += "\n\nHighlights:\n" + "\n".join(f"- {h}" for h in summary.highlights)
            if summary.follow_ups:
                text += "\n\nFollow-ups:\n" + "\n".join(f"- {f}" for f in summary.follow_ups)

            async def finish(tx: Tx) -> str:
                await self.s.messages.post(tx=tx, team_id=team_id, sender="Manager", kind="summary",
                                           member_id=manager_id, content=text,
                                           message_id=message_id("summary", team_id))
                try:
                    return (await self.s.teams.move(tx, team_id, TeamStatus.COMPLETED, SYSTEM,
                                                    sets=("completed_at = now()", "result = %(result)s"),
                                                    params={"result": text})).status.value
                except IllegalTransition as exc:
                    return exc.current

            finished = await metered.commit(self.s.db, finish)
            crash_point("summary.committed")
        finally:
            await metered.settle_leftovers()
        return finished

    async def _finish(self, team_id: UUID, *, failed_reason: str) -> str:
        try:
            return (await self.s.teams.fail(team_id, SYSTEM, reason=failed_reason)).status.value
        except IllegalTransition as exc:
            return exc.current

    async def fail(self, team_id: UUID, reason: str) -> str:
        return await self._finish(team_id, failed_reason=reason)

    # --- task level -------------------------------------------------------------------------------

    async def _ensure_team_running(self, team_id: UUID) -> None:
        scope = await self.s.teams.get_scope(team_id)
        if scope.status in (TeamStatus.CANCELLED, TeamStatus.FAILED, TeamStatus.COMPLETED):
            raise TeamStopped(scope.status.value)

    async def assign(self, task_id: UUID) -> dict[str, Any]:
        task = await self.s.tasks.get(task_id)
        if task.status != TaskStatus.PENDING:
            return {"status": task.status.value, "assigned_to": str(task.assigned_to) if task.assigned_to else None}
        await self._ensure_team_running(task.team_id)
        workers = [m for m in await self.s.teams.members(task.team_id) if m.role == "worker"]
        load = await self._open_load(task.team_id)
        matching = [m for m in workers if m.specialization == task.specialization] or workers
        chosen = min(matching, key=lambda m: (load.get(m.id, 0), m.name))
        moved = await self.s.tasks.assign(task_id, chosen.id, SYSTEM, expected_version=task.version)
        return {"status": moved.status.value, "assigned_to": str(chosen.id)}

    async def begin(self, task_id: UUID) -> str:
        """Assign the task to the least loaded matching worker and start it, in one transaction (two
        transitions, each audited); its status. A re-run after either leaves it where it is."""
        async with self.s.db.reads():
            task = await self.s.tasks.get(task_id)
            if task.status not in (TaskStatus.PENDING, TaskStatus.ASSIGNED):
                return task.status.value
            await self._ensure_team_running(task.team_id)
            chosen = task.assigned_to
            if task.status == TaskStatus.PENDING:
                workers = [m for m in await self.s.teams.members(task.team_id) if m.role == "worker"]
                load = await self._open_load(task.team_id)
                matching = [m for m in workers if m.specialization == task.specialization] or workers
                chosen = min(matching, key=lambda m: (load.get(m.id, 0), m.name)).id

        async def work(tx: Tx) -> str:
            version = task.version
            if task.status == TaskStatus.PENDING:
                version = (await self.s.tasks.move(tx, task_id, TaskStatus.ASSIGNED, SYSTEM, expected_version=version,
                                                   sets=("assigned_to = %(member_id)s",), params={"member_id": chosen},
                                                   payload={"assigned_to": str(chosen)})).version
            return (await self.s.tasks.move(tx, task_id, TaskStatus.IN_PROGRESS, Actor(type="agent", id=str(chosen)),
                                            expected_version=version, sources=(TaskStatus.ASSIGNED,),
                                            sets=("started_at = coalesce(t.started_at, now())",))).status.value

        return await self.s.db.atomic(work)

    async def _open_load(self, team_id: UUID) -> dict[UUID, int]:
        load: dict[UUID, int] = {}
        for t in await self.s.tasks.list_for_team(team_id):
            if t.assigned_to and t.status not in (TaskStatus.COMPLETED, TaskStatus.FAILED):
                load[t.assigned_to] = load.get(t.assigned_to, 0) + 1
        return load

    async def start(self, task_id: UUID) -> str:
        task = await self.s.tasks.get(task_id)
        if task.status in (TaskStatus.ASSIGNED, TaskStatus.REVISION_REQUESTED):
            await self._ensure_team_running(task.team_id)
            return (await self.s.tasks.start(task_id, Actor(type="agent", id=str(task.assigned_to)),
                                             expected_version=task.version)).status.value
        return task.status.value

    async def execute_step(self, task_id: UUID) -> dict[str, Any]:
        """One worker step (shared/services/worker_steps.py): {"status", "done", "output", "tool_calls"}."""
        return await self.steps.run(task_id)

    async def prepare_tool_call(self, call_id: UUID, instance_id: str) -> dict[str, Any]:
        return await self.s.tool_calls.prepare(call_id, instance_id)

    async def decide_tool_call(self, call_id: UUID, *, timed_out: bool, timeout_hours: float) -> dict[str, Any]:
        return await self.s.tool_calls.decide(call_id, timed_out=timed_out, timeout_hours=timeout_hours)

    async def run_tool_call(self, call_id: UUID) -> dict[str, Any]:
        return await self.s.tool_calls.run(call_id)

    async def submit(self, task_id: UUID, output: str) -> str:
        task = await self.s.tasks.get(task_id)
        if task.status in (TaskStatus.IN_PROGRESS, TaskStatus.REVISION_REQUESTED):
            await self._ensure_team_running(task.team_id)
            moved = await self.s.tasks.submit_for_review(task_id, output, Actor(type="agent", id=str(task.assigned_to)),
                                                         expected_version=task.version)
            return moved.status.value
        return task.status.value

    async def review(self, task_id: UUID) -> dict[str, Any]:
        """Manager review: approve, or request a revision while revisions remain, else ask to escalate."""
        async with self.s.db.reads():  # one read transaction for what the review reads first
            task = await self.s.tasks.get(task_id)
            if task.status == TaskStatus.COMPLETED:
                return {"verdict": Verdict.APPROVE.value, "feedback": ""}
            if task.status in (TaskStatus.REVISION_REQUESTED, TaskStatus.IN_PROGRESS):
                return {"verdict": Verdict.REVISE.value, "feedback": task.feedback or ""}
            if task.status != TaskStatus.REVIEW:
                return {"verdict": Verdict.STOPPED.value, "status": task.status.value, "feedback": ""}
            await self._ensure_team_running(task.team_id)
            manager_id = self._manager(await self.s.teams.members(task.team_id))
            goal, dependencies = await self._context(task)
        metered = self._metered(task.team_id, "review", task_id=task_id, member_id=manager_id)
        try:
            return await self._review(task, metered, manager_id, goal, dependencies)
        finally:
            await metered.settle_leftovers()

    async def _review(self, task: TaskRecord, metered: MeteredProvider, manager_id: UUID | None, goal: str,
                      dependencies: list[DependencyOutput]) -> dict[str, Any]:
        task_id = task.id
        result = await manager.review_output(metered, goal=goal, task=brief_of(task), output=task.output or "",
                                             revision=task.revision_count, model=self.manager_model,
                                             dependencies=dependencies, context_tokens=self.budgets.context_tokens,
                                             max_tokens=self.budgets.max_tokens(REVIEW_MAX_TOKENS),
                                             live=self._live(task.team_id, task_id, manager_id))
        review = result.value
        if review.verdict == "approve":

            async def approve(tx: Tx) -> dict[str, Any]:
                await self.s.tasks.approve(task_id, MANAGER, expected_version=task.version, tx=tx)
                await self.s.messages.post(tx=tx, team_id=task.team_id, task_id=task_id, sender="Manager",
                                           kind="review", member_id=manager_id,
                                           content=f"Approved “{task.title}”.",
                                           message_id=message_id("review", task_id, task.revision_count))
                return await self._team_state(tx, task.team_id)

            team = await metered.commit(self.s.db, approve)
            crash_point("review.committed")
            return {"verdict": Verdict.APPROVE.value, "feedback": "", "team": team}
        unmet = "; ".join(c.criterion for c in review.criteria if not c.met)
        feedback = review.feedback or f"Unmet: {unmet}"
        if task.revision_count >= task.max_revisions:
            return {"verdict": Verdict.ESCALATE.value, "feedback": feedback,
                    "reason": f"still not accepted after {task.revision_count} revision(s): {unmet}"}

        async def revise(tx: Tx) -> None:
            await self.s.tasks.request_revision(task_id, feedback, MANAGER, expected_version=task.version, tx=tx)
            await self.s.messages.post(tx=tx, team_id=task.team_id, task_id=task_id, sender="Manager", kind="review",
                                       member_id=manager_id,
                                       content=f"Revision requested for “{task.title}”: {feedback}",
                                       message_id=message_id("review", task_id, task.revision_count))

        await metered.commit(self.s.db, revise)
        crash_point("review.committed")
        return {"verdict": Verdict.REVISE.value, "feedback": feedback}

    async def _team_state(self, tx: Tx, team_id: UUID) -> dict[str, Any]:
        """The team's status and budget as `status` reports them, read in `tx` (after the step's writes)."""
        scope = await team_repo.scope(tx.conn, team_id)
        if scope is None:
            raise NotFound("team not found")
        return _state_of(scope)

    async def escalate(self, task_id: UUID, reason: str, failure_type: str, instance_id: str) -> str:
        """Open the task's escalation (once); its id, which the resolution's signal names."""
        task = await self.s.tasks.get(task_id)
        if task.status in (TaskStatus.COMPLETED, TaskStatus.FAILED):
            return task.status.value
        escalation = await self.s.escalations.open(team_id=task.team_id, task_id=task_id, reason=reason,
                                                   failure_type=failure_type, actor=SYSTEM, instance_id=instance_id)
        return str(escalation.id)

    async def apply_escalation_decision(self, task_id: UUID, action: str, note: str | None,
                                        value: str | None) -> str:
        task = await self.s.tasks.get(task_id)
        if task.status != TaskStatus.ESCALATED:
            return task.status.value
        human = Actor(type="user", id="escalation")
        if action == "retry":
            round_done = any(c.state.get("round") == task.revision_count and c.step_output.get("is_final")
                             for c in await self.s.checkpoints.list(task_id))
            return (await self.s.tasks.resume_escalated(task_id, human, note=note, new_round=round_done)).status.value
        if action in ("skip", "provide_input"):
            return (await self.s.tasks.complete_escalated(task_id, human, output=value)).status.value
        return (await self.s.tasks.fail_escalated(task_id, human, reason=note or "failed by a human")).status.value

    async def fail_task(self, task_id: UUID, reason: str) -> str:
        task = await self.s.tasks.get(task_id)
        if task.status in (TaskStatus.COMPLETED, TaskStatus.FAILED):
            return task.status.value
        return (await self.s.tasks.fail(task_id, reason, SYSTEM)).status.value

    async def reopen(self, task_id: UUID) -> str:
        task = await self.s.tasks.get(task_id)
        if task.status not in (TaskStatus.FAILED, TaskStatus.ESCALATED):
            return task.status.value
        return (await self.s.tasks.reopen_for_retry(task_id, Actor(type="user", id="retry"))).status.value


def _state_of(scope: TeamScope) -> dict[str, Any]:
    exceeded = scope.budget_usd is not None and scope.spent_usd >= scope.budget_usd
    return {"status": scope.status.value, "budget_exceeded": exceeded, "spent_usd": str(scope.spent_usd),
            "budget_usd": None if scope.budget_usd is None else str(scope.budget_usd)}


def _plan_view(tasks: Sequence[TaskRecord]) -> list[dict[str, Any]]:
    return [{"id": str(t.id), "title": t.title, "status": t.status.value,
             "dependencies": [str(d) for d in t.dependencies]} for t in tasks]
