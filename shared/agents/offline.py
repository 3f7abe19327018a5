"""The offline provider: deterministic, labelled answers so the whole flow runs without keys.

It reads the `<input>` block the prompts carry, builds the answer for the requested schema, and
returns it as JSON text through the same parsing path as a real provider. Token counts come from
text length (about four characters a token) and are priced as `offline-*` models.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence
from dataclasses import replace

from pydantic import BaseModel, ValidationError

from shared.agents.llm import Completion, Message, ToolSpec, elapsed_ms
from shared.agents.offline_plans import offline_plan
from shared.agents.offline_tools import asked_for_tools, citations, offline_tool_calls
from shared.agents.offline_work import offline_review, offline_step, offline_summary
from shared.agents.prompt_templates import extract_inputs
from shared.agents.schemas import Plan, Review, StepOutput, Summary, TaskBrief, TaskOutcome
from shared.agents.structured import estimate_tokens, finish_completion, with_schema_instruction
from shared.domain.failures import ClassifiedFailure, FailureType

OFFLINE_PREFIX = "offline"


def _int(value: object, default: int) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else default


def _text(value: object, default: str = "") -> str:
    return value if isinstance(value, str) else default


def _plan(inputs: dict[str, object]) -> BaseModel:
    return offline_plan(_text(inputs.get("goal")), min(12, max(1, _int(inputs.get("workers"), 1))))


def _step(inputs: dict[str, object]) -> BaseModel:
    previous = inputs.get("previous_steps")
    return offline_step(
        TaskBrief.model_validate(inputs.get("task")),
        step_number=max(1, _int(inputs.get("step_number"), 1)),
        previous_steps=[p for p in previous if isinstance(p, str)] if isinstance(previous, list) else [],
        feedback=_text(inputs.get("feedback")) or None,
    )


def _review(inputs: dict[str, object]) -> BaseModel:
    task = TaskBrief.model_validate(inputs.get("task"))
    return offline_review(task, revision=_int(inputs.get("revision"), 0))


def _summary(inputs: dict[str, object]) -> BaseModel:
    tasks = inputs.get("tasks")
    outcomes = [TaskOutcome.model_validate(t) for t in tasks] if isinstance(tasks, list) else []
    return offline_summary(_text(inputs.get("goal")), outcomes)


_ANSWERS: dict[type[BaseModel], Callable[[dict[str, object]], BaseModel]] = {
    Plan: _plan,
    StepOutput: _step,
    Review: _review,
    Summary: _summary,
}


def labelled_model(model: str) -> str:
    return model if model.startswith(OFFLINE_PREFIX) else f"{OFFLINE_PREFIX}-{model}"


class OfflineProvider:
    """Deterministic answers. With tools, a worker's first step calls each allowed tool once and the
    step that follows cites their results."""

    name = "offline"
    supports_tools = True

    def __init__(self, *, latency_ms: int = 0) -> None:
        self.latency_ms = latency_ms

    async def complete(
        self,
        messages: list[Message],
        *,
        model: str,
        schema: type[BaseModel] | None = None,
        max_tokens: int = 2048,
        temperature: float = 0.2,
        tools: Sequence[ToolSpec] = (),
    ) -> Completion:
        started = time.perf_counter()
        if self.latency_ms:
            await asyncio.sleep(self.latency_ms / 1000)
        prompt = with_schema_instruction(messages, schema)
        input_tokens = sum(estimate_tokens(m.content) for m in prompt)
        if tools and schema is StepOutput and not asked_for_tools(messages):
            inputs = extract_inputs(messages) or {}
            if _int(inputs.get("step_number"), 1) == 1 and not inputs.get("feedback"):  # not again in revisions
                calls = offline_tool_calls(tools, TaskBrief.model_validate(inputs.get("task")))
                request = finish_completion(text="", schema=None, input_tokens=input_tokens,
                                            output_tokens=sum(estimate_tokens(str(c.arguments)) for c in calls),
                                            model=labelled_model(model), provider=self.name,
                                            latency_ms=elapsed_ms(started))
                return replace(request, tool_calls=calls)
        text = self._answer(messages, schema)
        return finish_completion(
            text=text,
            schema=schema,
            input_tokens=input_tokens,
            output_tokens=estimate_tokens(text),
            model=labelled_model(model),
            provider=self.name,
            latency_ms=elapsed_ms(started),
        )

    def _answer(self, messages: list[Message], schema: type[BaseModel] | None) -> str:
        if schema is None:
            last = next((m.content for m in reversed(messages) if m.role == "user"), "")
            return f"[offline] No language model was called. Received: {' '.join(last.split())[:200]}"
        answer = _ANSWERS.get(schema)
        if answer is None:
            raise ClassifiedFailure(
                FailureType.UNKNOWN, f"the offline provider has no answer for schema {schema.__name__}"
            )
        inputs = extract_inputs(messages)
        if inputs is None:
            raise ClassifiedFailure(
                FailureType.UNKNOWN, "the offline provider needs a prompt with an <input> block"
            )
        try:
            value = answer(inputs)
            if isinstance(value, StepOutput):
                value = value.model_copy(update={"content": value.content + citations(messages)})
            return value.model_dump_json()
        except ValidationError as exc:
            raise ClassifiedFailure(
                FailureType.UNKNOWN, f"offline: the <input> block is not usable: {exc}"
            ) from None
