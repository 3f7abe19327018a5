"""The offline provider: deterministic, labelled answers so the whole flow runs without keys.

It reads the `<input>` block the prompts carry, builds the answer for the requested schema, and
returns it as JSON text through the same parsing path as a real provider. Token counts come from
text length (about four characters a token) and are priced as `offline-*` models. Like a real model it
streams: the answer goes to `on_delta` in a few pieces spread over the configured latency.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence
from dataclasses import replace

from pydantic import BaseModel, ValidationError

from shared.agents.llm import Completion, Message, OnDelta, ToolSpec, elapsed_ms
from shared.agents.offline_plans import offline_plan
from shared.agents.offline_tools import asked_for_tools, citations, offline_tool_calls
from shared.agents.offline_work import offline_review, offline_review_answer, offline_step, offline_summary
from shared.agents.prompt_templates import extract_inputs
from shared.agents.schemas import (
    MIN_TASKS,
    DependencyOutput,
    Plan,
    PlanDraft,
    Review,
    ReviewAnswer,
    StepOutput,
    Summary,
    TaskBrief,
    TaskOutcome,
)
from shared.agents.structured import (
    estimate_prompt_tokens,
    estimate_tokens,
    finish_completion,
    with_schema_instruction,
)
from shared.domain.failures import ClassifiedFailure, FailureType

OFFLINE_PREFIX = "offline"
#: How many pieces an answer is streamed in (the latency is spread between them).
DELTA_PIECES = 8


def _int(value: object, default: int) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else default


def _text(value: object, default: str = "") -> str:
    return value if isinstance(value, str) else default


def _plan(inputs: dict[str, object]) -> BaseModel:
    return offline_plan(_text(inputs.get("goal")), min(12, max(1, _int(inputs.get("workers"), 1))))


def _plan_draft(inputs: dict[str, object], schema: type[BaseModel]) -> BaseModel:
    """The offline plan written as the draft `schema` asks for: its first tasks (as many as the schema
    has properties for), in dependency order, each depending on earlier ones only."""
    plan = offline_plan(_text(inputs.get("goal")), min(12, max(1, _int(inputs.get("workers"), 1))))
    slots = sum(1 for name in schema.model_fields if name.startswith("t") and name[1:].isdigit())
    by_key = {task.key: task for task in plan.tasks}
    kept = plan.execution_order()[: max(MIN_TASKS, slots)]
    names = {key: f"t{number}" for number, key in enumerate(kept, start=1)}
    draft: dict[str, object] = {"members": [m.model_dump() for m in plan.members]}
    for key in kept:
        task = by_key[key]
        draft[names[key]] = {**task.model_dump(exclude={"key"}),
                             "dependencies": [names[d] for d in task.dependencies if d in names]}
    return schema.model_validate(draft)


def _dependencies(inputs: dict[str, object]) -> list[DependencyOutput]:
    items = inputs.get("dependencies")
    return [DependencyOutput.model_validate(d) for d in items] if isinstance(items, list) else []


def _step(inputs: dict[str, object]) -> BaseModel:
    previous = inputs.get("previous_steps")
    return offline_step(
        TaskBrief.model_validate(inputs.get("task")),
        step_number=max(1, _int(inputs.get("step_number"), 1)),
        previous_steps=[p for p in previous if isinstance(p, str)] if isinstance(previous, list) else [],
        feedback=_text(inputs.get("feedback")) or None,
        goal=_text(inputs.get("goal")),
        dependencies=_dependencies(inputs),
    )


def _review(inputs: dict[str, object]) -> BaseModel:
    task = TaskBrief.model_validate(inputs.get("task"))
    return offline_review(task, revision=_int(inputs.get("revision"), 0))


def _review_answer(inputs: dict[str, object]) -> BaseModel:
    task = TaskBrief.model_validate(inputs.get("task"))
    return offline_review_answer(task, revision=_int(inputs.get("revision"), 0))


def _summary(inputs: dict[str, object]) -> BaseModel:
    tasks = inputs.get("tasks")
    outcomes = [TaskOutcome.model_validate(t) for t in tasks] if isinstance(tasks, list) else []
    return offline_summary(_text(inputs.get("goal")), outcomes)


_ANSWERS: dict[type[BaseModel], Callable[[dict[str, object]], BaseModel]] = {
    Plan: _plan,
    PlanDraft: _plan,  # answered by `_plan_draft`, which needs the schema
    StepOutput: _step,
    Review: _review,
    ReviewAnswer: _review_answer,
    Summary: _summary,
}


def _answer_for(schema: type[BaseModel]) -> Callable[[dict[str, object]], BaseModel] | None:
    """The answer of `schema` or of the model it narrows (agents send per-call subclasses)."""
    return next((_ANSWERS[base] for base in schema.__mro__ if base in _ANSWERS), None)


def labelled_model(model: str) -> str:
    return model if model.startswith(OFFLINE_PREFIX) else f"{OFFLINE_PREFIX}-{model}"


class OfflineProvider:
    """Deterministic answers. With tools, a worker's first step calls each allowed tool once and the
    step that follows cites their results."""

    name = "offline"
    supports_tools = True

    def __init__(self, *, latency_ms: int = 0) -> None:
        self.latency_ms = latency_ms

    async def count_tokens(self, messages: list[Message], *, model: str, schema: type[BaseModel] | None = None) -> int:
        return estimate_prompt_tokens(messages, schema)

    async def complete(
        self,
        messages: list[Message],
        *,
        model: str,
        schema: type[BaseModel] | None = None,
        max_tokens: int,
        temperature: float = 0.2,
        on_delta: OnDelta | None = None,
        tools: Sequence[ToolSpec] = (),
    ) -> Completion:
        started = time.perf_counter()
        due = asyncio.get_running_loop().time() + self.latency_ms / 1000  # when the answer is complete
        prompt = with_schema_instruction(messages, schema)
        input_tokens = sum(estimate_tokens(m.content) for m in prompt)
        # A subclass too: the first step's schema is narrowed (shared/agents/worker.py).
        if tools and schema is not None and issubclass(schema, StepOutput) and not asked_for_tools(messages):
            inputs = extract_inputs(messages) or {}
            if _int(inputs.get("step_number"), 1) == 1 and not inputs.get("feedback"):  # not again in revisions
                if self.latency_ms:
                    await asyncio.sleep(self.latency_ms / 1000)
                calls = offline_tool_calls(tools, TaskBrief.model_validate(inputs.get("task")))
                request = finish_completion(text="", schema=None, input_tokens=input_tokens,
                                            output_tokens=sum(estimate_tokens(str(c.arguments)) for c in calls),
                                            model=labelled_model(model), provider=self.name,
                                            latency_ms=elapsed_ms(started))
                return replace(request, tool_calls=calls)
        text = self._answer(messages, schema)
        await self._stream(text, on_delta, due)
        return finish_completion(
            text=text,
            schema=schema,
            input_tokens=input_tokens,
            output_tokens=estimate_tokens(text),
            model=labelled_model(model),
            provider=self.name,
            latency_ms=elapsed_ms(started),
        )

    async def _stream(self, text: str, on_delta: OnDelta | None, due: float) -> None:
        """Send `text` in DELTA_PIECES pieces spread evenly until `due` (loop time), the call's end.

        Each piece waits for its own moment on one schedule, not for a fixed pause after the last
        one: a pause that overshoots (a busy event loop) does not push the rest later, so the call
        takes its latency, as a real provider's answer arrives when it arrives."""
        loop = asyncio.get_running_loop()
        if on_delta is None or not text:
            if self.latency_ms:
                await asyncio.sleep(max(0.0, due - loop.time()))
            return
        size = -(-len(text) // DELTA_PIECES)
        pieces = [text[i : i + size] for i in range(0, len(text), size)]
        step = self.latency_ms / 1000 / len(pieces)
        first = due - step * len(pieces)
        for number, piece in enumerate(pieces, start=1):
            if self.latency_ms:
                await asyncio.sleep(max(0.0, first + step * number - loop.time()))
            await on_delta(piece)

    def _answer(self, messages: list[Message], schema: type[BaseModel] | None) -> str:
        if schema is None:
            last = next((m.content for m in reversed(messages) if m.role == "user"), "")
            return f"[offline] No language model was called. Received: {' '.join(last.split())[:200]}"
        answer = _answer_for(schema)
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
            if issubclass(schema, PlanDraft):
                return _plan_draft(inputs, schema).model_dump_json()
            value = answer(inputs)
            if isinstance(value, StepOutput):
                value = value.model_copy(update={"content": value.content + citations(messages)})
            return value.model_dump_json()
        except ValidationError as exc:
            raise ClassifiedFailure(
                FailureType.UNKNOWN, f"offline: the <input> block is not usable: {exc}"
            ) from None
