"""The manager agent: plans a goal into tasks, reviews task outputs, and summarizes the team's work.

Pure use of an LLM: no database. Durable activities call these and persist what they return.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence

from pydantic import Field

from shared.agents.context import DEFAULT_CONTEXT_TOKENS, ContextText, fit_context
from shared.agents.llm import LiveOutput, LLMProvider, Message
from shared.agents.prompt_templates import load_prompt
from shared.agents.runner import AgentResult, run_structured
from shared.agents.schemas import (
    MAX_CRITERIA,
    MAX_TASKS,
    MIN_TASKS,
    CriterionJudgement,
    DependencyOutput,
    Plan,
    PlanDraft,
    Review,
    ReviewAnswer,
    Summary,
    TaskBrief,
    TaskOutcome,
    narrowed,
    plan_draft_schema,
)

PLAN_PROMPT = "plan.v2"
REVIEW_PROMPT = "review.v2"
SUMMARY_PROMPT = "summary.v2"

#: Output ceilings per call (`max_tokens`); the settings may lower them (LLM_MAX_OUTPUT_TOKENS).
PLAN_MAX_TOKENS, REVIEW_MAX_TOKENS, SUMMARY_MAX_TOKENS = 4096, 2048, 2048


async def plan_goal(
    provider: LLMProvider, *, goal: str, workers: int, model: str, max_tasks: int = MAX_TASKS,
    max_criteria: int = MAX_CRITERIA, max_tokens: int = PLAN_MAX_TOKENS, live: LiveOutput | None = None,
) -> AgentResult[Plan]:
    """Plan `goal` into 2–`max_tasks` tasks of 1–`max_criteria` acceptance criteria each, with an acyclic
    dependency graph and exactly `workers` members."""
    if not 1 <= workers <= 12:
        raise ValueError("workers must be between 1 and 12")
    if not MIN_TASKS <= max_tasks <= MAX_TASKS:
        raise ValueError(f"max_tasks must be between {MIN_TASKS} and {MAX_TASKS}")
    prompt = load_prompt(PLAN_PROMPT)
    if not 1 <= max_criteria <= MAX_CRITERIA:
        raise ValueError(f"max_criteria must be between 1 and {MAX_CRITERIA}")
    schema = plan_draft_schema(workers=workers, max_tasks=max_tasks, max_criteria=max_criteria)

    def a_plan_for_the_team(draft: PlanDraft) -> None:
        members = draft.drafted_members()
        if len(members) != workers:
            raise ValueError(f"members must have exactly {workers} entries, one per worker; got {len(members)}")
        draft.to_plan()  # ValueError (fed back to the model) when a task depends on an empty one

    result = await run_structured(
        provider,
        prompt=prompt,
        messages=prompt.render({"goal": goal, "workers": workers}, workers=workers, max_tasks=max_tasks),
        schema=schema,
        model=model,
        max_tokens=max_tokens,
        check=a_plan_for_the_team,
        live=live,
    )
    return AgentResult(value=result.value.to_plan(), completions=result.completions,
                       prompt_version=result.prompt_version)


def dependency_texts(dependencies: Sequence[DependencyOutput]) -> list[ContextText]:
    return [ContextText(f"dependency: {d.title}", d.output) for d in dependencies]


def _with_outputs(dependencies: Sequence[DependencyOutput], shown: Sequence[str]) -> list[dict[str, str]]:
    return [{"title": d.title, "output": text} for d, text in zip(dependencies, shown, strict=True)]


@functools.lru_cache(maxsize=4 * MAX_CRITERIA)
def review_schema(criteria: int) -> type[ReviewAnswer]:
    """ReviewAnswer with exactly `criteria` judgements (one class per count, made once)."""
    return narrowed(ReviewAnswer, criteria=(list[CriterionJudgement], Field(min_length=criteria,
                                                                            max_length=criteria)))


async def review_output(
    provider: LLMProvider, *, goal: str, task: TaskBrief, output: str, revision: int, model: str,
    dependencies: Sequence[DependencyOutput] = (), context_tokens: int = DEFAULT_CONTEXT_TOKENS,
    max_tokens: int = REVIEW_MAX_TOKENS, live: LiveOutput | None = None,
) -> AgentResult[Review]:
    """Judge `output` against each acceptance criterion; `revision` is 0 for the first review.

    The reviewer judges each criterion; the verdict follows from the judgements (`Review.from_answer`).
    """
    prompt = load_prompt(REVIEW_PROMPT)
    criteria = task.acceptance_criteria or ["The output addresses the task description"]
    schema = review_schema(len(criteria))
    texts = [*dependency_texts(dependencies), ContextText("output under review", output)]

    def render(shown: list[str]) -> list[Message]:
        inputs = {"goal": goal, "task": task.model_dump(), "revision": revision,
                  "dependencies": _with_outputs(dependencies, shown[:-1]), "output": shown[-1]}
        return prompt.render(inputs, revision=revision)

    messages, cuts = await fit_context(provider, texts=texts, render=render, budget_tokens=context_tokens,
                                       model=model, schema=schema)

    def one_judgement_per_criterion(answer: ReviewAnswer) -> None:
        if len(answer.criteria) != len(criteria):
            raise ValueError(
                f"criteria must have exactly {len(criteria)} entries, one per acceptance criterion in order; "
                f"got {len(answer.criteria)}"
            )

    result = await run_structured(
        provider, prompt=prompt, messages=messages, schema=schema, model=model, max_tokens=max_tokens,
        temperature=0.0, check=one_judgement_per_criterion, live=live, context_cuts=cuts,
    )
    review = Review.from_answer(result.value, criteria)
    return AgentResult(value=review, completions=result.completions, prompt_version=result.prompt_version,
                       context_cuts=result.context_cuts)


async def summarize(
    provider: LLMProvider, *, goal: str, tasks: list[TaskOutcome], model: str,
    context_tokens: int = DEFAULT_CONTEXT_TOKENS, max_tokens: int = SUMMARY_MAX_TOKENS,
    live: LiveOutput | None = None,
) -> AgentResult[Summary]:
    """The result the user reads when the team completes; every task's output, within the budget."""
    prompt = load_prompt(SUMMARY_PROMPT)
    texts = [ContextText(f"output: {t.title}", t.output or "") for t in tasks]

    def render(shown: list[str]) -> list[Message]:
        outcomes = [{"title": t.title, "status": t.status, "output": text}
                    for t, text in zip(tasks, shown, strict=True)]
        return prompt.render({"goal": goal, "tasks": outcomes})

    messages, cuts = await fit_context(provider, texts=texts, render=render, budget_tokens=context_tokens,
                                       model=model, schema=Summary)
    return await run_structured(
        provider, prompt=prompt, messages=messages, schema=Summary, model=model, max_tokens=max_tokens,
        live=live, context_cuts=cuts,
    )


__all__ = ["plan_goal", "review_output", "summarize"]
