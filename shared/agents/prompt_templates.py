"""Versioned prompt files (`prompts/<name>.v<N>.md`) and how they are rendered into messages.

A file holds a system part and a user part, separated by `<!-- system -->` / `<!-- user -->`
markers. The user part ends with the task inputs as JSON inside `<input>` tags: models read tagged
JSON reliably, and the offline provider reads the same block back.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from string import Template

from shared.agents.llm import Message

SYSTEM_MARKER = "<!-- system -->"
USER_MARKER = "<!-- user -->"
INPUT_OPEN, INPUT_CLOSE = "<input>", "</input>"


@dataclass(frozen=True)
class PromptTemplate:
    version: str  #: the file's stem, e.g. "plan.v1": recorded with every result
    system: str
    user: str

    def render(self, inputs: Mapping[str, object], **placeholders: object) -> list[Message]:
        """System and user messages: `${input}` is the inputs as JSON, other `${name}`s are placeholders."""
        values = {name: str(value) for name, value in placeholders.items()}
        values["input"] = input_json(inputs)
        # One pass of safe_substitute: text inside the values is never itself substituted.
        return [
            Message("system", Template(self.system).safe_substitute(values)),
            Message("user", Template(self.user).safe_substitute(values)),
        ]


def input_json(inputs: Mapping[str, object]) -> str:
    """The inputs as JSON with every `<` written `\\u003c`: user text can then never open or close a
    tag (`</input>`) in the prompt, and `json.loads` still gives the text back unchanged."""
    return json.dumps(inputs, indent=2, ensure_ascii=False).replace("<", "\\u003c")


def parse_prompt_file(version: str, text: str) -> PromptTemplate:
    if SYSTEM_MARKER not in text or USER_MARKER not in text:
        raise ValueError(f"prompt {version} needs both {SYSTEM_MARKER} and {USER_MARKER} sections")
    _, after_system = text.split(SYSTEM_MARKER, 1)
    system, user = after_system.split(USER_MARKER, 1)
    if INPUT_OPEN not in user or "${input}" not in user:
        raise ValueError(f"prompt {version}: the user section must end with <input>${{input}}</input>")
    return PromptTemplate(version=version, system=system.strip(), user=user.strip())


@lru_cache(maxsize=32)
def load_prompt(version: str) -> PromptTemplate:
    """Read `prompts/<version>.md` once per process (on first use, not at import)."""
    path = resources.files("shared.agents").joinpath("prompts", f"{version}.md")
    return parse_prompt_file(version, path.read_text(encoding="utf-8"))


def extract_inputs(messages: list[Message]) -> dict[str, object] | None:
    """The JSON inputs of the latest user message that carries an `<input>` block, if any.

    The opening tag is the first in the message (the template puts none before it) and the closing
    tag the last (none after it), so tags inside the user's own text cannot cut the block short.
    """
    for message in reversed(messages):
        if message.role != "user":
            continue
        start, end = message.content.find(INPUT_OPEN), message.content.rfind(INPUT_CLOSE)
        if start == -1 or end <= start:
            continue
        try:
            data = json.loads(message.content[start + len(INPUT_OPEN) : end])
        except json.JSONDecodeError:
            continue
        if isinstance(data, dict):
            return data
    return None
