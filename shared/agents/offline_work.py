"""Deterministic step outputs, reviews and summaries for the offline provider.

Everything is derived from the task text, so the same task always takes the same number of steps
(2–4) and about one task in three is sent back once for revision, exercising the review loop. A
deliverable names the goal and cites what it received from its dependencies, so the context that
flows between tasks is visible without a model.
"""

from __future__ import annotations

from shared.agents.offline_plans import digest
from shared.agents.schemas import (
    MAX_STEPS,
    MIN_STEPS,
    CriterionJudgement,
    CriterionVerdict,
    DependencyOutput,
    Review,
    ReviewAnswer,
    StepOutput,
    Summary,
    TaskBrief,
    TaskOutcome,
)

_STEP_TITLES = {
    2: ("Work out the approach", "Produce the deliverable"),
    3: ("Work out the approach", "Build the main content", "Check against the criteria and finish"),
    4: ("Work out the approach", "Build the main content", "Cover the remaining criteria",
        "Check against the criteria and finish"),
}  # fmt: skip

#: One task in this many gets "revise" on its first review.
REVISE_ONE_IN = 3
#: Characters of each dependency's output quoted in a deliverable.
QUOTE_CHARS = 160


def step_count(task: TaskBrief) -> int:
    return MIN_STEPS + digest("steps", task.title) % (MAX_STEPS - MIN_STEPS + 1)


def needs_revision(task: TaskBrief, revision: int) -> bool:
    return revision == 0 and digest("review", task.title) % REVISE_ONE_IN == 0


def _criteria(task: TaskBrief) -> list[str]:
    return task.acceptance_criteria or ["The output addresses the task description"]


def quote(text: str) -> str:
    """The start of a dependency's output, on one line, as a deliverable cites it."""
    flat = " ".join(text.split())
    return flat if len(flat) <= QUOTE_CHARS else flat[:QUOTE_CHARS] + "…"


def _deliverable(task: TaskBrief, *, steps_done: int, feedback: str | None, goal: str = "",
                 dependencies: list[DependencyOutput] | None = None) -> str:
    lines = [f"# {task.title}", "", "[offline deliverable: generated without a language model]", ""]
    if goal:
        lines += [f"Towards the goal: {goal.strip()}", ""]
    lines += [task.description, ""]
    if dependencies:
        lines.append("## Built on")
        for dependency in dependencies:
            lines.append(f"- From “{dependency.title}”: {quote(dependency.output)}")
        lines.append("")
    if feedback:
        lines += ["## Changes after review", f"Addressed the reviewer's feedback: {feedback}", ""]
    lines.append("## Acceptance criteria")
    for criterion in _criteria(task):
        lines.append(f"- {criterion}: addressed in this deliverable ({task.specialization} work).")
    lines += ["", f"Built over {steps_done} step(s)."]
    return "\n".join(lines)


def offline_step(
    task: TaskBrief, *, step_number: int, previous_steps: list[str], feedback: str | None, goal: str = "",
    dependencies: list[DependencyOutput] | None = None,
) -> StepOutput:
    """A revision (feedback given) is one final step; otherwise the task's fixed 2–4 steps."""
    if feedback:
        return StepOutput(
            step_number=step_number,
            title="Address the review feedback",
            content=_deliverable(task, steps_done=len(previous_steps) + 1, feedback=feedback, goal=goal,
                                 dependencies=dependencies),
            is_final=True,
        )
    total = step_count(task)
    titles = _STEP_TITLES[total]
    is_final = step_number >= total
    title = titles[min(step_number, total) - 1]
    if is_final:
        content = _deliverable(task, steps_done=step_number, feedback=None, goal=goal, dependencies=dependencies)
    else:
        criteria = _criteria(task)
        focus = criteria[(step_number - 1) % len(criteria)]
        content = (
            f"[offline step {step_number} of {total}] {title} for '{task.title}'. "
            f"Focus: {focus}. Builds on {len(previous_steps)} earlier step(s)."
        )
    return StepOutput(step_number=step_number, title=title, content=content, is_final=is_final)


def offline_review(task: TaskBrief, *, revision: int) -> Review:
    criteria = _criteria(task)
    if needs_revision(task, revision):
        first, rest = criteria[0], criteria[1:]
        verdicts = [CriterionVerdict(criterion=first, met=False, comment="Not shown explicitly.")]
        verdicts += [CriterionVerdict(criterion=c, met=True, comment="Covered.") for c in rest]
        return Review(
            verdict="revise",
            criteria=verdicts,
            feedback=f"[offline review] Show explicitly how the output meets: {first}",
        )
    return Review(
        verdict="approve",
        criteria=[CriterionVerdict(criterion=c, met=True, comment="Covered.") for c in criteria],
        feedback="[offline review] All criteria met.",
    )


def offline_review_answer(task: TaskBrief, *, revision: int) -> ReviewAnswer:
    """The review as a reviewer writes it (review.v2): judgements in criterion order, and feedback."""
    review = offline_review(task, revision=revision)
    return ReviewAnswer(
        criteria=[CriterionJudgement(met=v.met, comment=v.comment) for v in review.criteria],
        feedback=review.feedback,
    )


def offline_summary(goal: str, tasks: list[TaskOutcome]) -> Summary:
    completed = [task for task in tasks if task.status == "completed"]
    unfinished = [task for task in tasks if task.status != "completed"]
    text = (
        f"[offline summary] The team worked on: {goal.strip() or 'the goal'}. "
        f"{len(completed)} of {len(tasks)} task(s) completed."
    )
    if unfinished:
        text += " Not completed: " + ", ".join(f"{t.title} ({t.status})" for t in unfinished) + "."
    follow_ups = [f"Finish '{t.title}' ({t.status})" for t in unfinished[:10]]
    follow_ups.append("Rerun with a real LLM provider: these outputs were generated offline")
    return Summary(summary=text, highlights=[t.title for t in completed[:5]], follow_ups=follow_ups)
