"""What the agents ask the LLM for (validated outputs) and what they are given (briefs).

Output models carry the rules a JSON Schema cannot say (unique keys, acyclic dependencies, a verdict
consistent with its criteria), so a model answer that breaks them is invalid output and is retried
with the error fed back.
"""

from __future__ import annotations

import functools
import re
from typing import Annotated, Any, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, create_model, model_validator

from shared.domain.errors import Invalid
from shared.domain.planning import check_graph, validate_plan

#: Task keys are short slugs: they become `tasks.plan_key` and dependency references.
KEY_PATTERN = r"^[a-z0-9][a-z0-9-]{0,39}$"
MIN_TASKS, MAX_TASKS = 2, 12
MIN_STEPS, MAX_STEPS = 2, 4

#: Lengths of fields that are short by nature: in the JSON Schema too, so a constrained decoder
#: (llama.cpp, vLLM) stops a small model from rambling in a title.
TITLE_CHARS, NAME_CHARS, SPECIALIZATION_CHARS, CRITERION_CHARS, COMMENT_CHARS = 120, 60, 40, 200, 200
#: Items of a summary's lists, short by nature too.
ITEM_CHARS = 200
MAX_CRITERIA = 10

Criterion = Annotated[str, Field(min_length=1, max_length=CRITERION_CHARS)]
Key = Annotated[str, Field(pattern=KEY_PATTERN, max_length=40)]
M = TypeVar("M", bound=BaseModel)


def narrowed(model: type[M], **fields: Any) -> type[M]:
    """A subclass of `model` for one call, with some fields' bounds tightened (e.g. exactly N members).

    Its JSON Schema says the tighter bounds, so a provider's constrained decoding enforces them; its
    instances are still instances of `model`, with every validator of `model`.
    """
    narrowed_model: type[M] = create_model(model.__name__, __base__=model, **fields)
    setattr(narrowed_model, _NARROWS, model)
    return narrowed_model


_NARROWS = "__narrows__"


def widened(value: M) -> M:
    """A value of a `narrowed` model as an instance of the model it narrows (equal to any other such)."""
    base: type[M] | None = getattr(type(value), _NARROWS, None)
    return base.model_validate(value.model_dump()) if base is not None else value


class _Output(BaseModel):
    model_config = ConfigDict(str_strip_whitespace=True)


class PlannedTask(_Output):
    key: str = Field(pattern=KEY_PATTERN, max_length=40, description="short unique slug, e.g. 'collect-sources'")
    title: str = Field(min_length=1, max_length=TITLE_CHARS)
    description: str = Field(min_length=1, max_length=20_000)
    acceptance_criteria: list[Criterion] = Field(min_length=1, max_length=MAX_CRITERIA)
    dependencies: list[Key] = Field(default_factory=list, max_length=12, description="keys of earlier tasks")
    specialization: str = Field(default="general", min_length=1, max_length=SPECIALIZATION_CHARS)


class PlannedMember(_Output):
    name: str = Field(min_length=1, max_length=NAME_CHARS)
    specialization: str = Field(min_length=1, max_length=SPECIALIZATION_CHARS)


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


class TaskDraft(_Output):
    """A task as the manager writes it (plan.v2): no key; `dependencies` name earlier tasks (`t1`, `t2`, ...)."""

    title: str = Field(min_length=1, max_length=TITLE_CHARS)
    description: str = Field(min_length=1, max_length=20_000)
    acceptance_criteria: list[Criterion] = Field(min_length=1, max_length=MAX_CRITERIA)
    dependencies: list[str] = Field(default_factory=list, max_length=MAX_TASKS - 1)
    specialization: str = Field(default="general", min_length=1, max_length=SPECIALIZATION_CHARS)


class PlanDraft(_Output):
    """The plan as the manager writes it (plan.v2): tasks `t1` … `tN` as properties, then the members.

    Each task's `dependencies` may only name earlier tasks, and the schema says so (an enum per task),
    so keys are unique and the graph acyclic by construction: a constrained decoder cannot write a
    cycle, a duplicate key or an unknown dependency. Tasks past the minimum may be null (unused).
    `plan_draft_schema` builds the class for one team; `to_plan` turns an answer into a `Plan`.
    """

    def drafted_members(self) -> list[PlannedMember]:
        # Declared by `plan_draft_schema` after the tasks, so that a model writes the plan first.
        members = getattr(self, "members", [])
        return [m for m in members if isinstance(m, PlannedMember)]

    def drafted_tasks(self) -> list[tuple[str, TaskDraft]]:
        found = []
        for number in range(1, MAX_TASKS + 1):
            task = getattr(self, f"t{number}", None)
            if isinstance(task, TaskDraft):
                found.append((f"t{number}", task))
        return found

    def to_plan(self) -> Plan:
        """The Plan this draft describes, keyed by slugs of the titles; ValueError if a task depends on
        an empty one."""
        drafted = self.drafted_tasks()
        keys: dict[str, str] = {}
        for name, task in drafted:
            keys[name] = unique_slug(task.title, set(keys.values()))
        tasks = []
        for name, task in drafted:
            empty = [dep for dep in task.dependencies if dep not in keys]
            if empty:
                raise ValueError(f"{name} depends on {', '.join(empty)}, which is empty (null)")
            tasks.append(PlannedTask(key=keys[name], title=task.title, description=task.description,
                                     acceptance_criteria=list(task.acceptance_criteria),
                                     dependencies=[keys[dep] for dep in dict.fromkeys(task.dependencies)],
                                     specialization=task.specialization))
        return Plan(tasks=tasks, members=self.drafted_members())


def unique_slug(title: str, taken: set[str]) -> str:
    """A task key from its title (KEY_PATTERN), made unique among `taken` with a -2, -3, ... suffix."""
    base = re.sub(r"[^a-z0-9]+", "-", title.lower()).strip("-")[:34].strip("-") or "task"
    slug, number = base, 2
    while slug in taken:
        slug = f"{base}-{number}"
        number += 1
    return slug


@functools.lru_cache(maxsize=128)
def plan_draft_schema(*, workers: int, max_tasks: int, max_criteria: int) -> type[PlanDraft]:
    """PlanDraft for one team: `max_tasks` task properties (the first MIN_TASKS required), each allowed
    to depend only on the ones before it, with at most `max_criteria` criteria, and exactly `workers`
    members. One class per shape (cached): building it, and then its JSON Schema, costs milliseconds."""
    fields: dict[str, Any] = {}
    for number in range(1, max_tasks + 1):
        earlier = tuple(f"t{j}" for j in range(1, number))
        dependency: Any = Literal.__getitem__(earlier) if earlier else str  # type: ignore[attr-defined]
        task = create_model(
            f"Task{number}", __base__=TaskDraft,
            acceptance_criteria=(list[Criterion], Field(min_length=1, max_length=max_criteria)),
            dependencies=(list[dependency], Field(default_factory=list, max_length=number - 1)),
        )
        fields[f"t{number}"] = (task, ...) if number <= MIN_TASKS else (task | None, None)
    fields["members"] = (list[PlannedMember], Field(min_length=workers, max_length=workers))
    draft: type[PlanDraft] = create_model("Plan", __base__=PlanDraft, **fields)
    return draft


class StepOutput(_Output):
    step_number: int = Field(ge=1)
    title: str = Field(min_length=1, max_length=TITLE_CHARS)
    content: str = Field(min_length=1)
    is_final: bool


class CriterionVerdict(_Output):
    criterion: str = Field(min_length=1)
    met: bool
    comment: str = ""


class CriterionJudgement(_Output):
    """One acceptance criterion judged, in the order given (the reviewer does not repeat its text)."""

    met: bool
    comment: str = Field(min_length=1, max_length=COMMENT_CHARS, description="one sentence: why")


class ReviewAnswer(_Output):
    """What the reviewer writes (review.v2): one judgement per criterion, and feedback for the worker.

    The verdict is not asked for: it follows from the judgements (`Review.from_answer`), so an answer
    can never approve with an unmet criterion.
    """

    criteria: list[CriterionJudgement] = Field(min_length=1, max_length=MAX_CRITERIA)
    feedback: str = Field(default="", description="what to change; may be empty when all are met")


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

    @classmethod
    def from_answer(cls, answer: ReviewAnswer, criteria: list[str]) -> Review:
        """The verdict of a reviewer's judgements: approve exactly when every criterion is met."""
        verdicts = [
            CriterionVerdict(criterion=text, met=j.met, comment=j.comment)
            for text, j in zip(criteria, answer.criteria, strict=True)
        ]
        unmet = [v for v in verdicts if not v.met]
        feedback = answer.feedback
        if unmet and not feedback:
            feedback = "Not yet met: " + "; ".join(f"{v.criterion} ({v.comment})" for v in unmet)
        return cls(verdict="revise" if unmet else "approve", criteria=verdicts, feedback=feedback)


Item = Annotated[str, Field(max_length=ITEM_CHARS)]


class Summary(_Output):
    summary: str = Field(min_length=1)
    highlights: list[Item] = Field(default_factory=list, max_length=5)
    follow_ups: list[Item] = Field(default_factory=list, max_length=5)


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


class DependencyOutput(BaseModel):
    """The final output of a task the current one depends on, as its worker and reviewer see it."""

    title: str
    output: str
