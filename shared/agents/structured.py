"""Structured output shared by every provider: how JSON is asked for, and how an answer is checked.

The schema travels in the prompt (not a provider's JSON mode) so the same request works on Anthropic,
OpenAI and any OpenAI-compatible server; the answer is then validated here, in one place.
"""

from __future__ import annotations

import json
import math
from dataclasses import replace

from pydantic import BaseModel, ValidationError

from shared.agents.llm import Completion, Message, ProviderOutputInvalid


def schema_instruction(schema: type[BaseModel]) -> str:
    """The system-prompt paragraph that asks for one JSON object matching `schema`."""
    return (
        "Respond with exactly one JSON object and nothing else: no prose, no Markdown code fence. "
        "It must validate against this JSON Schema:\n"
        + json.dumps(schema.model_json_schema(), separators=(",", ":"), sort_keys=True)
    )


def with_schema_instruction(messages: list[Message], schema: type[BaseModel] | None) -> list[Message]:
    """Messages with the schema instruction appended to the leading system message.

    Kept in the first message because some open-model chat templates (vLLM, Ollama) reject a system
    message anywhere else.
    """
    if schema is None:
        return list(messages)
    instruction = schema_instruction(schema)
    if messages and messages[0].role == "system":
        return [Message("system", f"{messages[0].content}\n\n{instruction}"), *messages[1:]]
    return [Message("system", instruction), *messages]


def describe_validation_error(exc: ValidationError) -> str:
    """A compact `field: problem` list, without pydantic's documentation URLs, to feed back to the model."""
    parts = []
    for error in exc.errors(include_url=False):
        location = ".".join(str(part) for part in error["loc"]) or "(root)"
        parts.append(f"{location}: {error['msg']}")
    return "; ".join(parts)


def extract_json(text: str) -> object:
    """Decode the JSON object in `text`, tolerating a Markdown fence or prose around it."""
    stripped = text.strip()
    try:
        return json.loads(stripped)
    except json.JSONDecodeError as first_error:
        start, end = stripped.find("{"), stripped.rfind("}")
        if start == -1 or end <= start:
            raise ValueError(f"the answer is not JSON ({first_error.msg})") from None
        try:
            return json.loads(stripped[start : end + 1])
        except json.JSONDecodeError as exc:
            raise ValueError(f"the answer is not valid JSON ({exc.msg} at position {exc.pos})") from None


def parse_structured(text: str, schema: type[BaseModel]) -> BaseModel:
    """Validate `text` against `schema`; raise ValueError with a message fit to show the model."""
    data = extract_json(text)
    try:
        return schema.model_validate(data)
    except ValidationError as exc:
        raise ValueError(f"the JSON does not match the schema: {describe_validation_error(exc)}") from None


def finish_completion(
    *,
    text: str,
    schema: type[BaseModel] | None,
    input_tokens: int,
    output_tokens: int,
    model: str,
    provider: str,
    latency_ms: float,
) -> Completion:
    """Build the Completion; with a schema, parse it or raise ProviderOutputInvalid carrying the bill."""
    completion = Completion(
        text=text,
        parsed=None,
        input_tokens=input_tokens,
        output_tokens=output_tokens,
        model=model,
        provider=provider,
        latency_ms=latency_ms,
    )
    if schema is None:
        return completion
    try:
        parsed = parse_structured(text, schema)
    except ValueError as exc:
        raise ProviderOutputInvalid(str(exc), completion=completion) from None
    return replace(completion, parsed=parsed)


def estimate_tokens(text: str) -> int:
    """About four characters a token: used by the offline provider and when a server omits usage."""
    return max(1, math.ceil(len(text) / 4)) if text else 0
