"""The manager agent: plans a goal into tasks, reviews task outputs, and summarizes the team's work.

Pure use of an LLM: no database. Durable activities call these and persist what they return.
"""

from __future__ import annotations

from shared.agents.llm import LLMProvider
from shared.agents.prompt_templates import load_prompt
from shared.agents.runner import AgentResult, run_structured
from shared.agents.schemas import Plan, Review, Summary, TaskBrief, TaskOutcome

PLAN_PROMPT = "plan.v1"
REVIEW_PROMPT = "review.v1"
SUMMARY_PROMPT = "summary.v1"

#: Task outputs beyond this many characters are cut in the summary prompt, so a long deliverable
#: cannot push the summary past the context window.
SUMMARY_OUTPUT_CHARS = 6000


async def plan_goal(provider: LLMProvider, *, goal: str, workers: int, model: str) -> AgentResult[Plan]:
    """Plan `goal` into 2–12 tasks with an acyclic dependency graph and exactly `workers` members."""
    if not 1 <= workers <= 12:
        raise ValueError("workers must be between 1 and 12")
    prompt = load_prompt(PLAN_PROMPT)

    def members_match_workers(plan: Plan) -> None:
        if len(plan.members) != workers:
            raise ValueError(
                f"members must have exactly {workers} entries, one per worker; got {len(plan.members)}"
            )

    return await run_structured(
        provider,
        prompt=prompt,
        messages=prompt.render({"goal": goal, "workers": workers}, workers=workers),
        schema=Plan,
        model=model,
        max_tokens=4096,
        check=members_match_workers,
    )


async def review_output(
    provider: LLMProvider, *, task: TaskBrief, output: str, revision: int, model: str
) -> AgentResult[Review]:
    """Judge `output` against each acceptance criterion; `revision` is 0 for the first review."""
    prompt = load_prompt(REVIEW_PROMPT)
    expected = len(task.acceptance_criteria)

    def every_criterion_judged(review: Review) -> None:
        if expected and len(review.criteria) != expected:
            raise ValueError(
                f"criteria must have exactly {expected} entries, one per acceptance criterion in order; "
                f"got {len(review.criteria)}"
            )

    inputs = {"task": task.model_dump(), "revision": revision, "output": output}
    return await run_structured(
        provider,
        prompt=prompt,
        messages=prompt.render(inputs, revision=revision),
        schema=Review,
        model=model,
        max_tokens=2048,
        temperature=0.0,
        check=every_criterion_judged,
    )


async def summarize(
    provider: LLMProvider, *, goal: str, tasks: list[TaskOutcome], model: str
) -> AgentResult[Summary]:
    """The result the user reads when the team completes."""
    prompt = load_prompt(SUMMARY_PROMPT)
    outcomes = []
    for task in tasks:
        output = task.output or ""
        if len(output) > SUMMARY_OUTPUT_CHARS:
            output = output[:SUMMARY_OUTPUT_CHARS] + " …(truncated)"
        outcomes.append({"title": task.title, "status": task.status, "output": output})
    return await run_structured(
        provider,
        prompt=prompt,
        messages=prompt.render({"goal": goal, "tasks": outcomes}),
        schema=Summary,
        model=model,
        max_tokens=2048,
    )
