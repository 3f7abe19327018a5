"""What the OpenAI and Anthropic providers share about native tool use: tool names on the wire and back,
input schemas a function definition accepts, and arguments assembled from a stream.

Tools are named `<server>.<tool>` in the app and `<server>__<tool>` on the wire (`ToolSpec.wire_name`:
both APIs allow only `[A-Za-z0-9_-]{1,64}`). A call the model asks for is reported under the app's name,
so the tool-call service can match it against the team's allow-list; a name the model made up is
kept as it came (the service records that call as failed, and the model sees why).
"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from shared.agents.llm import Completion, Message, ProviderOutputInvalid, ToolCallRequest, ToolSpec, wire_name

_ID_UNSAFE = re.compile(r"[^A-Za-z0-9_-]")


class ToolArgumentsInvalid(ValueError):
    """A tool call's arguments are not one JSON object (the model's mistake: shown to it again)."""


@dataclass(frozen=True)
class ToolNames:
    """The wire names of one request's tools and the app's names they stand for."""

    by_wire: dict[str, str] = field(default_factory=dict)

    @classmethod
    def of(cls, tools: Sequence[ToolSpec], messages: Iterable[Message] = ()) -> ToolNames:
        names = {t.wire_name: t.name for t in tools}
        for message in messages:  # calls made earlier in the conversation keep their names too
            for call in message.tool_calls:
                names.setdefault(wire_name(call.name), call.name)
        return cls(names)

    def app_name(self, wire: str) -> str:
        return self.by_wire.get(wire, wire)


def wire_id(call_id: str) -> str:
    """A tool call id as both APIs accept it back (Anthropic: `^[a-zA-Z0-9_-]+$`)."""
    return _ID_UNSAFE.sub("_", call_id)[:200] or "call"


def parameters_schema(schema: dict[str, Any]) -> dict[str, Any]:
    """An MCP tool's input schema as a function's parameters: always an object schema (MCP requires
    `type: object`, but a server that leaves it out must not break the request)."""
    result = copy.deepcopy(schema) if isinstance(schema, dict) else {}
    if result.get("type") != "object":
        result = {"type": "object", "properties": {}} if "properties" not in result else {**result, "type": "object"}
    result.setdefault("properties", {})
    return result


def parse_arguments(raw: str, *, tool: str) -> dict[str, Any]:
    """The arguments the model wrote (a JSON object, possibly empty), or ToolArgumentsInvalid."""
    if not raw.strip():
        return {}
    try:
        value = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise ToolArgumentsInvalid(f"the arguments of the call of {tool} are not valid JSON ({exc.msg})") from None
    if not isinstance(value, dict):
        raise ToolArgumentsInvalid(f"the arguments of the call of {tool} must be a JSON object, "
                                   f"not {type(value).__name__}")
    return value


@dataclass(frozen=True)
class StreamedCall:
    """One tool call as a provider's stream assembled it: its id, its wire name, and its arguments
    as the JSON text the model wrote (`start_arguments`: what the call's first event already held,
    used when no text followed: Anthropic's `tool_use` start block)."""

    id: str
    wire_name: str
    arguments_json: str
    start_arguments: dict[str, Any] | None = None


def with_tool_calls(completion: Completion, streamed: Iterable[StreamedCall], *, names: ToolNames, id_prefix: str,
                    truncated_at: int | None) -> Completion:
    """`completion` with the calls the model asked for (under the app's tool names, in stream order,
    an id made up from `id_prefix` where the provider gave none). Arguments that are not a JSON
    object are invalid output, billed like any other (ProviderOutputInvalid carries `completion`)."""
    calls: list[ToolCallRequest] = []
    try:
        for position, call in enumerate(streamed, start=1):
            name = names.app_name(call.wire_name)
            arguments = (call.start_arguments if not call.arguments_json and call.start_arguments is not None
                         else parse_arguments(call.arguments_json, tool=name))
            calls.append(ToolCallRequest(id=call.id or f"{id_prefix}_{position}", name=name, arguments=arguments))
    except ToolArgumentsInvalid as exc:
        message = str(exc)
        if truncated_at is not None:
            message = (f"the answer was cut off at the {truncated_at}-token limit inside a tool call; "
                       "call the tool again with shorter arguments")
        raise ProviderOutputInvalid(message, completion=completion) from None
    return replace(completion, tool_calls=tuple(calls))


def is_tool_error(content: str) -> bool:
    """A recorded result that is a failure (the tool-call service writes it so: docs/agents.md)."""
    return content.startswith(("[tool error]", "[not executed"))
