"""The offline provider's deterministic tool loop: arguments built from a tool's input schema and the
task, and the step text that cites what the tools answered."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from shared.agents.llm import Message, ToolCallRequest, ToolSpec
from shared.agents.schemas import TaskBrief

#: A quoted example in a parameter's description ("IANA timezone name (e.g., 'America/New_York')").
_QUOTED_EXAMPLE = re.compile(r"""['"`]([^'"`\n]{1,80})['"`]""")
#: How much of each tool result the offline step quotes.
CITATION_CHARS = 300


def _string_value(name: str, spec: dict[str, Any], task: TaskBrief) -> str:
    examples = spec.get("examples")
    if isinstance(examples, list) and examples and isinstance(examples[0], str):
        return examples[0]
    found = _QUOTED_EXAMPLE.search(str(spec.get("description") or ""))
    if found:
        return found.group(1)
    if spec.get("format") == "uri":
        return "https://example.com/"
    return f"{task.title}" if name not in ("id", "key") else "1"


def _value(name: str, spec: dict[str, Any], task: TaskBrief) -> Any:
    if "default" in spec:
        return spec["default"]
    if "const" in spec:
        return spec["const"]
    enum = spec.get("enum")
    if isinstance(enum, list) and enum:
        return enum[0]
    kind = spec.get("type")
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), "string")
    if kind in ("number", "integer"):
        minimum = spec.get("minimum", spec.get("exclusiveMinimum"))
        return minimum if isinstance(minimum, int | float) and not isinstance(minimum, bool) else 1
    if kind == "boolean":
        return False
    if kind == "array":
        return []
    if kind == "object":
        return arguments_for(spec, task)
    return _string_value(name, spec, task)


def arguments_for(schema: dict[str, Any], task: TaskBrief) -> dict[str, Any]:
    """Arguments for every required property of `schema`: its default, an example it gives, or a value
    made from the task (a string parameter gets the task's title)."""
    properties = schema.get("properties")
    if not isinstance(properties, dict):
        return {}
    required = [name for name in schema.get("required") or [] if name in properties]
    return {name: _value(name, properties[name] if isinstance(properties[name], dict) else {}, task)
            for name in required}


def offline_tool_calls(tools: Sequence[ToolSpec], task: TaskBrief) -> tuple[ToolCallRequest, ...]:
    """One call of each allowed tool, in the order given."""
    return tuple(ToolCallRequest(id=f"offline-call-{i}", name=tool.name,
                                 arguments=arguments_for(tool.input_schema, task))
                 for i, tool in enumerate(tools, start=1))


def asked_for_tools(messages: Sequence[Message]) -> bool:
    return any(m.role == "assistant" and m.tool_calls for m in messages)


def citations(messages: Sequence[Message]) -> str:
    """What the step says about the tool results in the conversation ("" when there are none)."""
    results = [m for m in messages if m.role == "tool"]
    if not results:
        return ""
    lines = ["", "", "Tool results used in this step:"]
    for message in results:
        text = " ".join(message.content.split())
        if len(text) > CITATION_CHARS:
            text = text[:CITATION_CHARS] + "…"
        lines.append(f"- {message.name or 'tool'} answered: {text}")
    return "\n".join(lines)
