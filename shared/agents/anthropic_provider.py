"""Claude through the official `anthropic` SDK (Messages API), errors mapped to failure types."""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from typing import Literal

import anthropic
import httpx
from anthropic.types import Message as AnthropicMessage
from anthropic.types import MessageParam
from pydantic import BaseModel

from shared.agents.llm import Completion, Message, ToolSpec, elapsed_ms
from shared.agents.provider_errors import (
    classify_http_error,
    garbage_body_failure,
    network_failure,
)
from shared.agents.structured import finish_completion, with_schema_instruction
from shared.domain.failures import ClassifiedFailure, FailureType


def to_anthropic(messages: list[Message]) -> tuple[str, list[MessageParam]]:
    """System messages become the `system` parameter; consecutive same-role turns are merged."""
    system = "\n\n".join(m.content for m in messages if m.role == "system")
    turns: list[MessageParam] = []
    for message in messages:
        if message.role == "system":
            continue
        content = message.content or "(empty)"  # the API rejects empty text blocks
        role: Literal["user", "assistant"] = "assistant" if message.role == "assistant" else "user"
        if message.role == "tool":  # no tool use here yet (supports_tools is False): results as text
            content = f"[tool result of {message.name}]\n{content}"
        if turns and turns[-1]["role"] == role:
            turns[-1] = {"role": role, "content": f"{turns[-1]['content']}\n\n{content}"}
        else:
            turns.append({"role": role, "content": content})
    return system, turns


class AnthropicProvider:
    name = "anthropic"
    supports_tools = False  #: tool use arrives with the streaming rewrite of this provider (issue 15)

    def __init__(
        self,
        *,
        api_key: str,
        base_url: str | None = None,
        timeout_s: float = 60,
        http_client: httpx.AsyncClient | None = None,
    ) -> None:
        # max_retries=0: the FailureHandler owns retries (durable timers), the SDK must not add its own.
        self._client = anthropic.AsyncAnthropic(
            api_key=api_key, base_url=base_url, timeout=timeout_s, max_retries=0, http_client=http_client
        )

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
        if tools:
            raise ClassifiedFailure(FailureType.UNKNOWN, "this Anthropic provider does not use tools")
        system, turns = to_anthropic(with_schema_instruction(messages, schema))
        started = time.perf_counter()
        try:
            if system:
                result = await self._client.messages.create(
                    model=model, max_tokens=max_tokens, temperature=temperature, system=system, messages=turns
                )
            else:
                result = await self._client.messages.create(
                    model=model, max_tokens=max_tokens, temperature=temperature, messages=turns
                )
        except anthropic.APITimeoutError as exc:
            raise network_failure(self.name, exc, timed_out=True) from exc
        except anthropic.APIConnectionError as exc:
            raise network_failure(self.name, exc, timed_out=False) from exc
        except anthropic.APIStatusError as exc:
            raise classify_http_error(
                exc.status_code, headers=exc.response.headers, body=exc.body, provider=self.name
            ) from exc
        except anthropic.APIResponseValidationError as exc:
            raise garbage_body_failure(self.name, exc.message) from exc
        except json.JSONDecodeError as exc:  # the SDK decodes a JSON content type without catching
            raise garbage_body_failure(self.name, f"invalid JSON ({exc.msg})") from exc
        latency = elapsed_ms(started)
        return self._to_completion(result, schema=schema, requested_model=model, latency_ms=latency)

    def _to_completion(
        self, result: object, *, schema: type[BaseModel] | None, requested_model: str, latency_ms: float
    ) -> Completion:
        # A non-JSON content type comes back as a str; a JSON body without the Message fields is
        # built without validation, so check the fields we rely on before reading them.
        if not isinstance(result, AnthropicMessage):
            raise garbage_body_failure(self.name, f"expected a message, got {type(result).__name__}")
        usage = getattr(result, "usage", None)
        content = getattr(result, "content", None)
        input_tokens = getattr(usage, "input_tokens", None)
        output_tokens = getattr(usage, "output_tokens", None)
        if not isinstance(input_tokens, int) or not isinstance(output_tokens, int):
            raise garbage_body_failure(self.name, "the message has no usage")
        if not isinstance(content, list):
            raise garbage_body_failure(self.name, "the message has no content")
        # Cached prompt tokens are still prompt tokens for the budget.
        for extra in ("cache_creation_input_tokens", "cache_read_input_tokens"):
            value = getattr(usage, extra, None)
            if isinstance(value, int):
                input_tokens += value
        if getattr(result, "stop_reason", None) == "refusal":
            raise ClassifiedFailure(FailureType.CONTENT_REFUSED, "anthropic: the model refused to answer")
        text = "".join(getattr(b, "text", "") for b in content if getattr(b, "type", "") == "text")
        model = getattr(result, "model", None)
        return finish_completion(
            text=text,
            schema=schema,
            input_tokens=input_tokens,
            output_tokens=output_tokens,
            model=model if isinstance(model, str) and model else requested_model,
            provider=self.name,
            latency_ms=latency_ms,
        )
