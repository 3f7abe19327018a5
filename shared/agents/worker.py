"""The worker agent: executes a task one step at a time (the caller checkpoints after each step).

A step may use tools: the model's answer is then a `ToolTurn` (the calls it asks for), the caller
records and runs them, and calls `execute_step` again with the results in `tool_turns`; the step's
answer then continues that conversation.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Literal

from shared.agents.context import DEFAULT_CONTEXT_TOKENS, ContextText, fit_context
from shared.agents.llm import LiveOutput, LLMProvider, Message, ToolCallRequest, ToolSpec
from shared.agents.manager import dependency_texts
from shared.agents.prompt_templates import load_prompt
from shared.agents.runner import AgentResult, ToolTurn, run_structured
from shared.agents.schemas import MAX_STEPS, MIN_STEPS, DependencyOutput, StepOutput, TaskBrief, narrowed

EXECUTE_STEP_PROMPT = "execute_step.v2"
STEP_MAX_TOKENS = 4096


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


def step_schema(step_number: int, *, revising: bool) -> type[StepOutput]:
    """StepOutput for one step: before MIN_STEPS of a first execution the schema says `is_final` is false
    (a task takes at least MIN_STEPS steps; a revision may take one). The step number and the final
    MAX_STEPS-th step are the caller's anyway."""
    if step_number < MIN_STEPS and not revising:
        return _EARLY_STEP
    return StepOutput


#: A step before MIN_STEPS of a first execution: `is_final` is false (one class, made once).
_EARLY_STEP = narrowed(StepOutput, is_final=(Literal[False], ...))


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
    tools: Sequence[ToolSpec] = (),
    tool_turns: Sequence[ToolExchange] = (),
) -> AgentResult[StepOutput] | ToolTurn:
    """Step `step_number` (1-based) given the goal, the dependencies' final outputs, the earlier steps'
    contents and any review feedback.

    The step number is the caller's, whatever the model echoed, and step MAX_STEPS is final even
    if the model says otherwise, so a task's execution always ends. With `tools` the answer may be
    a `ToolTurn` instead.
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
        rendered = prompt.render(inputs, step_number=step_number, min_steps=MIN_STEPS, max_steps=MAX_STEPS)
        return rendered + tool_messages(tool_turns)

    messages, cuts = await fit_context(provider, texts=texts, render=render, budget_tokens=context_tokens,
                                       model=model, schema=schema)
    result = await run_structured(
        provider, prompt=prompt, messages=messages, schema=schema, model=model, max_tokens=max_tokens,
        live=live, context_cuts=cuts, tools=list(tools),
    )
    if isinstance(result, ToolTurn):
        return result
    value = result.value.model_copy(
        update={"step_number": step_number, "is_final": result.value.is_final or step_number >= MAX_STEPS}
    )
    return replace(result, value=value)
