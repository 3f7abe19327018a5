"""The worker agent: executes a task one step at a time (the caller checkpoints after each step)."""

from __future__ import annotations

from dataclasses import replace

from shared.agents.llm import LLMProvider
from shared.agents.prompt_templates import load_prompt
from shared.agents.runner import AgentResult, run_structured
from shared.agents.schemas import MAX_STEPS, MIN_STEPS, StepOutput, TaskBrief

EXECUTE_STEP_PROMPT = "execute_step.v1"


async def execute_step(
    provider: LLMProvider,
    *,
    task: TaskBrief,
    step_number: int,
    previous_steps: list[str],
    feedback: str | None,
    model: str,
) -> AgentResult[StepOutput]:
    """Step `step_number` (1-based) given the earlier steps' contents and any review feedback.

    The step number is the caller's, whatever the model echoed, and step MAX_STEPS is final even
    if the model says otherwise, so a task's execution always ends.
    """
    if step_number < 1:
        raise ValueError("step_number starts at 1")
    prompt = load_prompt(EXECUTE_STEP_PROMPT)
    inputs = {
        "task": task.model_dump(),
        "step_number": step_number,
        "min_steps": MIN_STEPS,
        "max_steps": MAX_STEPS,
        "previous_steps": previous_steps,
        "feedback": feedback,
    }
    result = await run_structured(
        provider,
        prompt=prompt,
        messages=prompt.render(inputs, step_number=step_number),
        schema=StepOutput,
        model=model,
        max_tokens=4096,
    )
    value = result.value.model_copy(
        update={"step_number": step_number, "is_final": result.value.is_final or step_number >= MAX_STEPS}
    )
    return replace(result, value=value)
