"""The worker agent: executes a task one step at a time (the caller checkpoints after each step)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from typing import Literal

from shared.agents.context import DEFAULT_CONTEXT_TOKENS, ContextText, fit_context
from shared.agents.llm import LiveOutput, LLMProvider, Message
from shared.agents.manager import dependency_texts
from shared.agents.prompt_templates import load_prompt
from shared.agents.runner import AgentResult, run_structured
from shared.agents.schemas import MAX_STEPS, MIN_STEPS, DependencyOutput, StepOutput, TaskBrief, narrowed

EXECUTE_STEP_PROMPT = "execute_step.v2"
STEP_MAX_TOKENS = 4096


def step_schema(step_number: int, *, revising: bool) -> type[StepOutput]:
    """StepOutput for one step: before MIN_STEPS of a first execution the schema says `is_final` is false
    (a task takes at least MIN_STEPS steps; a revision may take one). The step number and the final
    MAX_STEPS-th step are the caller's anyway."""
    if step_number < MIN_STEPS and not revising:
        return narrowed(StepOutput, is_final=(Literal[False], ...))
    return StepOutput


async def execute_step(
    provider: LLMProvider,
    *,
    goal: str,
    task: TaskBrief,
    step_number: int,
    previous_steps: list[str],
    feedback: str | None,
    model: str,
    dependencies: Sequence[DependencyOutput] = (),
    context_tokens: int = DEFAULT_CONTEXT_TOKENS,
    max_tokens: int = STEP_MAX_TOKENS,
    live: LiveOutput | None = None,
) -> AgentResult[StepOutput]:
    """Step `step_number` (1-based) given the goal, the dependencies' final outputs, the earlier steps'
    contents and any review feedback.

    The step number is the caller's, whatever the model echoed, and step MAX_STEPS is final even
    if the model says otherwise, so a task's execution always ends.
    """
    if step_number < 1:
        raise ValueError("step_number starts at 1")
    prompt = load_prompt(EXECUTE_STEP_PROMPT)
    schema = step_schema(step_number, revising=bool(feedback))
    texts = [*dependency_texts(dependencies),
             *(ContextText(f"step {i}", text) for i, text in enumerate(previous_steps, start=1))]
    count = len(dependencies)

    def render(shown: list[str]) -> list[Message]:
        inputs = {
            "goal": goal,
            "task": task.model_dump(),
            "step_number": step_number,
            "dependencies": [{"title": d.title, "output": text} for d, text in zip(dependencies, shown[:count],
                                                                                  strict=True)],
            "previous_steps": shown[count:],
            "feedback": feedback,
        }
        return prompt.render(inputs, step_number=step_number, min_steps=MIN_STEPS, max_steps=MAX_STEPS)

    messages, cuts = await fit_context(provider, texts=texts, render=render, budget_tokens=context_tokens,
                                       model=model, schema=schema)
    result = await run_structured(
        provider, prompt=prompt, messages=messages, schema=schema, model=model, max_tokens=max_tokens,
        live=live, context_cuts=cuts,
    )
    value = result.value.model_copy(
        update={"step_number": step_number, "is_final": result.value.is_final or step_number >= MAX_STEPS}
    )
    return replace(result, value=value)
