"""One structured agent call: render the prompt, ask, validate, and retry invalid output with the error.

Every call made is returned (or attached to the failure) so the caller can record all costs.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar, overload

from pydantic import BaseModel

from shared.agents.llm import (
    AgentFailed,
    Completion,
    LLMProvider,
    Message,
    ProviderOutputInvalid,
    ToolCallRequest,
    ToolSpec,
)
from shared.agents.prompt_templates import PromptTemplate
from shared.domain.failures import ClassifiedFailure, FailureType
from shared.telemetry import LlmCall, llm_call_span

T = TypeVar("T", bound=BaseModel)

#: One call plus up to two retries that show the model its validation error.
MAX_ATTEMPTS = 3


@dataclass(frozen=True)
class AgentResult(Generic[T]):
    value: T
    completions: list[Completion]  #: every LLM call made, including invalid-output retries
    prompt_version: str


@dataclass(frozen=True)
class ToolTurn:
    """The model asked for tool calls instead of answering: the caller runs them and asks again."""

    tool_calls: list[ToolCallRequest]
    text: str  #: what the model wrote beside the calls (often empty)
    completions: list[Completion]
    prompt_version: str


def _measure(span: LlmCall, completion: Completion) -> None:
    span.input_tokens = completion.input_tokens
    span.output_tokens = completion.output_tokens
    span.cost_usd = float(completion.cost_usd)


def correction_message(error: str) -> Message:
    return Message(
        "user",
        "Your previous answer could not be used: "
        + error
        + "\nAnswer again with one corrected JSON object that follows every rule and the schema.",
    )


@overload
async def run_structured(
    provider: LLMProvider, *, prompt: PromptTemplate, messages: list[Message], schema: type[T], model: str,
    max_tokens: int = ..., temperature: float = ..., check: Callable[[T], None] | None = ..., tools: None = ...,
) -> AgentResult[T]: ...


@overload
async def run_structured(
    provider: LLMProvider, *, prompt: PromptTemplate, messages: list[Message], schema: type[T], model: str,
    max_tokens: int = ..., temperature: float = ..., check: Callable[[T], None] | None = ...,
    tools: Sequence[ToolSpec],
) -> AgentResult[T] | ToolTurn: ...


async def run_structured(
    provider: LLMProvider,
    *,
    prompt: PromptTemplate,
    messages: list[Message],
    schema: type[T],
    model: str,
    max_tokens: int = 2048,
    temperature: float = 0.2,
    check: Callable[[T], None] | None = None,
    tools: Sequence[ToolSpec] | None = None,
) -> AgentResult[T] | ToolTurn:
    """Call until the answer validates (and passes `check`, which raises ValueError), at most MAX_ATTEMPTS.

    With `tools`, an answer that asks for tool calls ends the turn as a `ToolTurn`.
    Raises AgentFailed: INVALID_OUTPUT after the last attempt, or the provider's own failure type.
    """
    extra: dict[str, Any] = {"tools": list(tools)} if tools else {}
    conversation = list(messages)
    completions: list[Completion] = []
    last_error = ""
    for _ in range(MAX_ATTEMPTS):
        try:
            with llm_call_span(provider.name, model) as span:
                try:
                    completion = await provider.complete(
                        conversation, model=model, schema=schema, max_tokens=max_tokens, temperature=temperature,
                        **extra,
                    )
                except ProviderOutputInvalid as exc:
                    _measure(span, exc.completion)
                    raise
                _measure(span, completion)
        except ProviderOutputInvalid as exc:
            completions.append(exc.completion)
            last_error = exc.message
            conversation += [Message("assistant", exc.completion.text), correction_message(exc.message)]
            continue
        except ClassifiedFailure as exc:
            raise AgentFailed(
                exc.failure_type, exc.message, completions=completions, retry_after=exc.retry_after
            ) from exc
        completions.append(completion)
        if completion.tool_calls and tools:
            return ToolTurn(tool_calls=list(completion.tool_calls), text=completion.text, completions=completions,
                            prompt_version=prompt.version)
        parsed = completion.parsed
        if not isinstance(parsed, schema):
            raise AgentFailed(
                FailureType.UNKNOWN,
                f"provider {provider.name} returned {type(parsed).__name__}, not {schema.__name__}",
                completions=completions,
            )
        try:
            if check is not None:
                check(parsed)
        except ValueError as exc:
            last_error = str(exc)
            conversation += [Message("assistant", completion.text), correction_message(last_error)]
            continue
        return AgentResult(value=parsed, completions=completions, prompt_version=prompt.version)
    raise AgentFailed(
        FailureType.INVALID_OUTPUT,
        f"{prompt.version}: no valid answer after {MAX_ATTEMPTS} attempts; last error: {last_error}",
        completions=completions,
    )

