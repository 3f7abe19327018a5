"""Structured output shared by every provider: how JSON is asked for, and how an answer is checked.

Providers ask natively (OpenAI `response_format` json_schema strict, Anthropic `output_config`
json_schema); `schema_instruction` is the prompt-only fallback for compatible servers without
`json_schema`. Either way the answer is validated here, in one place, by the pydantic model, whose
validators carry the rules a JSON Schema cannot say.
"""

from __future__ import annotations

import copy
import functools
import json
import math
from dataclasses import replace
from typing import Any

from pydantic import BaseModel, ValidationError

from shared.agents.llm import Completion, Message, ProviderOutputInvalid
from shared.domain.costs import ModelPrice

#: Keywords OpenAI's own API rejects in a strict schema (its strict subset has no length bounds nor
#: defaults); compatible servers (llama.cpp, vLLM) enforce them, so they are kept there.
_OPENAI_STRICT_UNSUPPORTED = ("minLength", "maxLength", "default")


@functools.lru_cache(maxsize=512)
def schema_json(schema: type[BaseModel], *, compact: bool = True) -> str:
    """`schema`'s JSON Schema as JSON text (compact with sorted keys, or `json.dumps`' default
    spacing), built once per model class: pydantic generates it anew on every `model_json_schema()`
    call, a few milliseconds for a plan schema. Per-call schemas are cached classes too
    (`plan_draft_schema`, the narrowed review and step schemas), so the cache stays small."""
    if compact:
        return json.dumps(schema.model_json_schema(), separators=(",", ":"), sort_keys=True)
    return json.dumps(schema.model_json_schema())


def schema_instruction(schema: type[BaseModel]) -> str:
    """The system-prompt paragraph that asks for one JSON object matching `schema`."""
    return (
        "Respond with exactly one JSON object and nothing else: no prose, no Markdown code fence. "
        "It must validate against this JSON Schema:\n"
        + schema_json(schema)
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
    price: ModelPrice | None = None,
    truncated_at: int | None = None,
) -> Completion:
    """Build the Completion; with a schema, parse it or raise ProviderOutputInvalid carrying the bill.

    `truncated_at` is the `max_tokens` that cut the answer short (finish reason `length`): when the
    text then does not parse, the error says so, so that the model is asked for a shorter answer.
    """
    completion = Completion(
        text=text,
        parsed=None,
        input_tokens=input_tokens,
        output_tokens=output_tokens,
        model=model,
        provider=provider,
        latency_ms=latency_ms,
        price=price,
    )
    if schema is None:
        return completion
    try:
        parsed = parse_structured(text, schema)
    except ValueError as exc:
        message = str(exc)
        if truncated_at is not None:
            message = (f"the answer was cut off at the {truncated_at}-token limit before the JSON object was "
                       "complete; answer again, shorter")
        raise ProviderOutputInvalid(message, completion=completion) from None
    return replace(completion, parsed=parsed)


def estimate_tokens(text: str) -> int:
    """About four characters a token: used by the offline provider and when a server omits usage."""
    return max(1, math.ceil(len(text) / 4)) if text else 0


#: Characters a token for budgeting a prompt without a tokenizer. English prose runs near 4, JSON and
#: code nearer 3; the lower figure overestimates, so a prompt sized by it fits the real window.
BUDGET_CHARS_PER_TOKEN = 3.0
#: Tokens a chat template adds around each message (role markers, separators).
MESSAGE_OVERHEAD_TOKENS = 4


def estimate_prompt_tokens(messages: list[Message], schema: type[BaseModel] | None = None) -> int:
    """An upper estimate of a request's input tokens (the documented fallback of `count_tokens`); an
    assistant turn's tool calls count too (their names and arguments go back on the wire)."""
    chars = sum(len(m.content) for m in messages)
    chars += sum(len(c.name) + len(json.dumps(c.arguments, ensure_ascii=False)) for m in messages for c in m.tool_calls)
    if schema is not None:
        chars += len(schema_json(schema))
    return math.ceil(chars / BUDGET_CHARS_PER_TOKEN) + MESSAGE_OVERHEAD_TOKENS * len(messages)


def strict_json_schema(schema: type[BaseModel], *, compatible_server: bool, max_tokens: int | None = None
                       ) -> dict[str, Any]:
    """The JSON Schema sent as OpenAI's `response_format` (strict: every property required, no extras).

    The SDK's own conversion (`openai.lib.type_to_response_format_param`) is the base; for OpenAI's
    own API the keywords its strict subset rejects are dropped (the pydantic model still enforces
    them after the answer). A compatible server keeps them and, given `max_tokens`, gets every string
    bounded so that the whole object fits in `max_tokens` (`fit_strings_to_tokens`): its constrained
    decoder then closes the JSON before the limit instead of being cut off mid-string.

    Made once per (schema, server kind, max_tokens); each caller gets its own copy.
    """
    return copy.deepcopy(_strict_json_schema(schema, compatible_server, max_tokens))


@functools.lru_cache(maxsize=512)
def _strict_json_schema(schema: type[BaseModel], compatible_server: bool, max_tokens: int | None) -> dict[str, Any]:
    from openai.lib import type_to_response_format_param

    param: Any = type_to_response_format_param(schema)
    result: dict[str, Any] = copy.deepcopy(param["json_schema"]["schema"])
    if not compatible_server:
        _drop_keywords(result, _OPENAI_STRICT_UNSUPPORTED)
    elif max_tokens is not None:
        fit_strings_to_tokens(result, max_tokens)
    return result


#: Characters a token of a small model's prose at worst, and the share of `max_tokens` that string
#: contents may use (the rest is keys, punctuation, numbers and booleans).
WORST_CHARS_PER_TOKEN, STRING_SHARE = 2.5, 0.6
#: Items assumed for an array without maxItems, and the shortest bound given to a string.
_UNBOUNDED_ITEMS, _MIN_STRING_CHARS = 8, 24


def fit_strings_to_tokens(schema: dict[str, Any], max_tokens: int) -> None:
    """Lower the `maxLength` of the schema's strings (in place) so that all of them together, counted as
    often as their arrays allow, fit in `max_tokens`: the longest bounds are lowered first, to one level.

    Only the request's schema changes: the answer is still validated by the pydantic model, whose own
    bounds are the same or looser.
    """
    defs: dict[str, Any] = schema.get("$defs", {})
    slots: dict[int, tuple[dict[str, Any], int]] = {}  # id(node) -> (node, how many times it may occur)

    def walk(node: dict[str, Any], times: int, depth: int = 0) -> None:
        if depth > 20:
            return
        ref = node.get("$ref")
        if isinstance(ref, str):
            target = defs.get(ref.rsplit("/", 1)[-1])
            if isinstance(target, dict):
                walk(target, times, depth + 1)
            return
        for variant in node.get("anyOf", []):
            walk(variant, times, depth + 1)
        kind = node.get("type")
        if kind == "string" and "enum" not in node and "const" not in node:
            seen = slots.get(id(node))
            slots[id(node)] = (node, times + (seen[1] if seen else 0))
        elif kind == "object":
            for prop in node.get("properties", {}).values():
                walk(prop, times, depth + 1)
        elif kind == "array" and isinstance(node.get("items"), dict):
            walk(node["items"], times * int(node.get("maxItems", _UNBOUNDED_ITEMS)), depth + 1)

    walk(schema, 1)
    budget = max_tokens * WORST_CHARS_PER_TOKEN * STRING_SHARE
    entries = sorted(slots.values(), key=lambda entry: entry[0].get("maxLength", math.inf))
    remaining_times = sum(times for _, times in entries)
    for node, times in entries:
        level = budget / remaining_times if remaining_times else budget
        cap = node.get("maxLength", math.inf)
        if cap <= level:
            budget -= cap * times
        else:
            node["maxLength"] = max(_MIN_STRING_CHARS, int(level), int(node.get("minLength", 0)))
            budget -= node["maxLength"] * times
        remaining_times -= times


def _drop_keywords(node: object, keywords: tuple[str, ...]) -> None:
    if isinstance(node, dict):
        for keyword in keywords:
            # A keyword inside `properties` is a field name, not a schema keyword: keep it.
            if keyword in node and not isinstance(node.get(keyword), dict):
                del node[keyword]
        for value in node.values():
            _drop_keywords(value, keywords)
    elif isinstance(node, list):
        for item in node:
            _drop_keywords(item, keywords)
