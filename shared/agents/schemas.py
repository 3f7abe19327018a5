"""What the agents ask the LLM for (validated outputs) and what they are given (briefs).

Output models carry the rules a JSON Schema cannot say (unique keys, acyclic dependencies, a verdict
consistent with its criteria), so a model answer that breaks them is invalid output and is retried
with the error fed back.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from shared.domain.errors import Invalid
from shared.domain.planning import check_graph, validate_plan

#: Task keys are short slugs: they become `tasks.plan_key` and dependency references.
KEY_PATTERN = r"^[a-z0-9][a-z0-9-]{0,39}$"
MIN_TASKS, MAX_TASKS = 2, 12
MIN_STEPS, MAX_STEPS = 2, 4

Criterion = Annotated[str, Field(min_length=1, max_length=1000)]


class _Output(BaseModel):
    model_config = ConfigDict(str_strip_whitespace=True)


class PlannedTask(_Output):
    key: str = Field(pattern=KEY_PATTERN, description="short unique slug, e.g. 'collect-sources'")
    title: str = Field(min_length=1, max_length=300)
    description: str = Field(min_length=1, max_length=20_000)
    acceptance_criteria: list[Criterion] = Field(min_length=1, max_length=20)
    dependencies: list[str] = Field(default_factory=list, max_length=12, description="keys of earlier tasks")
    specialization: str = Field(default="general", min_length=1, max_length=80)


class PlannedMember(_Output):
    name: str = Field(min_length=1, max_length=200)
    specialization: str = Field(min_length=1, max_length=80)


class Plan(_Output):
    tasks: list[PlannedTask] = Field(min_length=MIN_TASKS, max_length=MAX_TASKS)
    members: list[PlannedMember] = Field(min_length=1, max_length=12)

    @model_validator(mode="after")
    def _dependencies_form_a_dag(self) -> Plan:
        try:
            validate_plan(self.tasks, min_tasks=MIN_TASKS, max_tasks=MAX_TASKS)
        except Invalid as exc:  # the planner's answer breaks a plan rule: invalid output, retried
            raise ValueError(exc.detail) from None
        return self

    def execution_order(self) -> list[str]:
        """Task keys in an order where every task follows its dependencies (plan order among equals)."""
        return check_graph({task.key: list(task.dependencies) for task in self.tasks})


class StepOutput(_Output):
    step_number: int = Field(ge=1)
    title: str = Field(min_length=1, max_length=300)
    content: str = Field(min_length=1)
    is_final: bool


class CriterionVerdict(_Output):
    criterion: str = Field(min_length=1)
    met: bool
    comment: str = ""


class Review(_Output):
    verdict: Literal["approve", "revise"]
    criteria: list[CriterionVerdict] = Field(min_length=1)
    feedback: str = ""

    @model_validator(mode="after")
    def _verdict_follows_the_criteria(self) -> Review:
        all_met = all(item.met for item in self.criteria)
        if self.verdict == "approve" and not all_met:
            unmet = [item.criterion for item in self.criteria if not item.met]
            raise ValueError(f"verdict 'approve' but criteria not met: {'; '.join(unmet)}")
        if self.verdict == "revise" and all_met:
            raise ValueError("verdict 'revise' but every criterion is marked met")
        if self.verdict == "revise" and not self.feedback:
            raise ValueError("verdict 'revise' needs feedback saying what to change")
        return self


class Summary(_Output):
    summary: str = Field(min_length=1)
    highlights: list[str] = Field(default_factory=list, max_length=20)
    follow_ups: list[str] = Field(default_factory=list, max_length=20)


class TaskBrief(BaseModel):
    """What a worker or reviewer is told about a task (from the `tasks` row)."""

    title: str
    description: str
    acceptance_criteria: list[str]
    specialization: str = "general"


class TaskOutcome(BaseModel):
    """A finished task as the summary sees it."""

    title: str
    status: str
    output: str | None = None
