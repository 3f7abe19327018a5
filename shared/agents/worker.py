"""The worker agent: executes a task one step at a time (the caller checkpoints after each step).

A step may use tools: the model's answer is then a `ToolTurn` (the calls it asks for), the caller
records and runs them, and calls `execute_step` again with the results in `tool_turns`; the step's
answer then continues that conversation.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

from shared.agents.llm import LLMProvider, Message, ToolCallRequest, ToolSpec
from shared.agents.prompt_templates import load_prompt
from shared.agents.runner import AgentResult, ToolTurn, run_structured
from shared.agents.schemas import MAX_STEPS, MIN_STEPS, StepOutput, TaskBrief

EXECUTE_STEP_PROMPT = "execute_step.v1"


@dataclass(frozen=True)
class ToolResult:
    """One recorded tool call as the model sees it again: the call and its (prompt-sized) result."""

    call: ToolCallRequest
    content: str


@dataclass(frozen=True)
class ToolExchange:
    """One earlier tool round of this step: what the model wrote, and each call with its result."""

    text: str
    results: Sequence[ToolResult]


def tool_messages(exchanges: Sequence[ToolExchange]) -> list[Message]:
    """The conversation after the prompt: each round's assistant message and one `tool` message per call."""
    messages: list[Message] = []
    for exchange in exchanges:
        messages.append(Message("assistant", exchange.text, tool_calls=tuple(r.call for r in exchange.results)))
        messages += [Message("tool", r.content, tool_call_id=r.call.id, name=r.call.name) for r in exchange.results]
    return messages


async def execute_step(
    provider: LLMProvider,
    *,
    task: TaskBrief,
    step_number: int,
    previous_steps: list[str],
    feedback: str | None,
    model: str,
    tools: Sequence[ToolSpec] = (),
    tool_turns: Sequence[ToolExchange] = (),
) -> AgentResult[StepOutput] | ToolTurn:
    """Step `step_number` (1-based) given the earlier steps' contents and any review feedback.

    The step number is the caller's, whatever the model echoed, and step MAX_STEPS is final even
    if the model says otherwise, so a task's execution always ends. With `tools` the answer may be
    a `ToolTurn` instead.
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
    messages = prompt.render(inputs, step_number=step_number) + tool_messages(tool_turns)
    result = await run_structured(
        provider,
        prompt=prompt,
        messages=messages,
        schema=StepOutput,
        model=model,
        max_tokens=4096,
        tools=list(tools),
    )
    if isinstance(result, ToolTurn):
        return result
    value = result.value.model_copy(
        update={"step_number": step_number, "is_final": result.value.is_final or step_number >= MAX_STEPS}
    )
    return replace(result, value=value)
