"""A provider that answers from a script, through the same parsing path as the real providers."""

from __future__ import annotations

from pydantic import BaseModel

from shared.agents.llm import Completion, Message, OnDelta
from shared.agents.structured import estimate_prompt_tokens, finish_completion


class ScriptedProvider:
    name = "scripted"

    def __init__(self, answers: list[str | Exception]) -> None:
        self.answers = list(answers)
        self.calls: list[list[Message]] = []
        self.schemas: list[type[BaseModel] | None] = []
        self.counted: list[list[Message]] = []

    async def count_tokens(self, messages: list[Message], *, model: str, schema: type[BaseModel] | None = None) -> int:
        self.counted.append(list(messages))
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
    ) -> Completion:
        self.calls.append(list(messages))
        self.schemas.append(schema)
        answer = self.answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return finish_completion(
            text=answer,
            schema=schema,
            input_tokens=100,
            output_tokens=len(answer) // 4 + 1,
            model=model,
            provider=self.name,
            latency_ms=1.0,
        )
