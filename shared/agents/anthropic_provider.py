"""Claude through the official `anthropic` SDK (Messages API), streamed, errors mapped to failure types.

Structured output is the API's own: `output_config.format` json_schema, the schema made fit for it by
the SDK's `transform_schema` (constraints it cannot enforce move into descriptions; the pydantic
model still checks them). Token counts for the context budget come from `messages.count_tokens`.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import anthropic
import httpx2
from anthropic.types import MessageParam
from pydantic import BaseModel

from shared.agents.llm import CallLimits, Completion, Message, OnDelta, ToolSpec, elapsed_ms
from shared.agents.provider_errors import (
    classify_http_error,
    garbage_body_failure,
    network_failure,
)
from shared.agents.streaming import StreamClock
from shared.agents.structured import estimate_prompt_tokens, finish_completion
from shared.domain.costs import OFFICIAL, PriceTable
from shared.domain.failures import ClassifiedFailure, FailureType

log = logging.getLogger(__name__)


def to_anthropic(messages: list[Message]) -> tuple[str, list[MessageParam]]:
    """System messages become the `system` parameter; consecutive same-role turns are merged."""
    system = "\n\n".join(m.content for m in messages if m.role == "system")
    merged: list[tuple[Literal["user", "assistant"], str]] = []
    for message in messages:
        if message.role == "system":
            continue
        content = message.content or "(empty)"  # the API rejects empty text blocks
        if message.role == "tool":  # no tool use here yet (supports_tools is False): results as text
            content = f"[tool result of {message.name}]\n{content}"
        role: Literal["user", "assistant"] = "assistant" if message.role == "assistant" else "user"
        if merged and merged[-1][0] == role:
            merged[-1] = (role, f"{merged[-1][1]}\n\n{content}")
        else:
            merged.append((role, content))
    turns: list[MessageParam] = []
    for role, content in merged:
        if role == "user":
            turns.append({"role": "user", "content": content})
        else:
            turns.append({"role": "assistant", "content": content})
    return system, turns


def output_config(schema: type[BaseModel]) -> dict[str, Any]:
    return {"format": {"type": "json_schema", "schema": anthropic.transform_schema(schema)}}


@dataclass
class _Accumulated:
    text: list[str] = field(default_factory=list)
    model: str | None = None
    input_tokens: int | None = None
    output_tokens: int | None = None
    stop_reason: str | None = None
    started: bool = False


class AnthropicProvider:
    name = "anthropic"
    supports_tools = False  #: tool use arrives with the streaming rewrite of this provider (issue 15)

    def __init__(
        self,
        *,
        api_key: str,
        base_url: str | None = None,
        limits: CallLimits | None = None,
        prices: PriceTable = OFFICIAL,
        http_client: httpx2.AsyncClient | None = None,
    ) -> None:
        self.limits = limits or CallLimits()
        self.prices = prices
        # max_retries=0: the FailureHandler owns retries (durable timers), the SDK must not add its own.
        self._client = anthropic.AsyncAnthropic(
            api_key=api_key, base_url=base_url, timeout=self.limits.http_timeout(), max_retries=0,
            http_client=http_client,
        )

    @staticmethod
    def _request(messages: list[Message], schema: type[BaseModel] | None) -> dict[str, Any]:
        system, turns = to_anthropic(messages)
        request: dict[str, Any] = {"messages": turns}
        if system:
            request["system"] = system
        if schema is not None:
            request["output_config"] = output_config(schema)
        return request

    async def count_tokens(self, messages: list[Message], *, model: str, schema: type[BaseModel] | None = None) -> int:
        """The API's own count; the estimate when the count cannot be had (the call itself will then tell)."""
        clock = StreamClock(self.limits, self.name)
        try:
            request = self._request(messages, schema)
            counted = await clock.step(self._client.messages.count_tokens(model=model, **request))
        except (anthropic.APIError, ClassifiedFailure, json.JSONDecodeError) as exc:
            log.warning("anthropic token count failed, using the estimate: %s", exc)
            return estimate_prompt_tokens(messages, schema)
        tokens = getattr(counted, "input_tokens", None)
        return tokens if isinstance(tokens, int) else estimate_prompt_tokens(messages, schema)

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
        if tools:
            raise ClassifiedFailure(FailureType.UNKNOWN, "this Anthropic provider does not use tools")
        started = time.perf_counter()
        clock = StreamClock(self.limits, self.name)
        got = _Accumulated()
        try:
            # No `temperature`: the current Messages API (SDK 2.x) has no such parameter.
            stream = await clock.step(self._client.messages.create(
                model=model, max_tokens=max_tokens, stream=True, **self._request(messages, schema),
            ))
            async with stream:
                async for event in clock.events(stream):
                    text = self._take(event, got)
                    if text and on_delta is not None:
                        await on_delta(text)
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
        except anthropic.APIError as exc:  # an `error` event inside the stream (e.g. overloaded_error)
            raise classify_http_error(500, headers={}, body=exc.body or exc.message, provider=self.name) from exc
        except (json.JSONDecodeError, httpx2.DecodingError) as exc:  # a data line that is not JSON
            raise garbage_body_failure(self.name, f"invalid JSON in the stream ({exc})") from exc
        return self._to_completion(got, schema=schema, requested_model=model, max_tokens=max_tokens,
                                   latency_ms=elapsed_ms(started))

    @staticmethod
    def _take(event: object, got: _Accumulated) -> str:
        """Fold one stream event into `got`; the new text it carries."""
        kind = getattr(event, "type", None)
        if kind == "message_start":
            message = getattr(event, "message", None)
            got.started = True
            model = getattr(message, "model", None)
            got.model = model if isinstance(model, str) and model else None
            usage = getattr(message, "usage", None)
            tokens = getattr(usage, "input_tokens", None)
            if isinstance(tokens, int):
                # Cached prompt tokens are still prompt tokens for the budget.
                for extra in ("cache_creation_input_tokens", "cache_read_input_tokens"):
                    value = getattr(usage, extra, None)
                    tokens += value if isinstance(value, int) else 0
                got.input_tokens = tokens
            output = getattr(usage, "output_tokens", None)
            got.output_tokens = output if isinstance(output, int) else None
        elif kind == "content_block_delta":
            delta = getattr(event, "delta", None)
            text = getattr(delta, "text", None)
            if getattr(delta, "type", None) == "text_delta" and isinstance(text, str):
                got.text.append(text)
                return text
        elif kind == "message_delta":
            stop = getattr(getattr(event, "delta", None), "stop_reason", None)
            got.stop_reason = stop if isinstance(stop, str) else got.stop_reason
            output = getattr(getattr(event, "usage", None), "output_tokens", None)
            if isinstance(output, int):
                got.output_tokens = output  # cumulative, per the API
        return ""

    def _to_completion(
        self, got: _Accumulated, *, schema: type[BaseModel] | None, requested_model: str, max_tokens: int,
        latency_ms: float,
    ) -> Completion:
        # An HTML page or a JSON body without the events comes through the SSE decoder as nothing.
        if not got.started:
            raise garbage_body_failure(self.name, "the stream had no message_start event")
        if got.input_tokens is None or got.output_tokens is None:
            raise garbage_body_failure(self.name, "the message has no usage")
        if got.stop_reason == "refusal":
            raise ClassifiedFailure(FailureType.CONTENT_REFUSED, "anthropic: the model refused to answer")
        model = got.model or requested_model
        return finish_completion(
            text="".join(got.text),
            schema=schema,
            input_tokens=got.input_tokens,
            output_tokens=got.output_tokens,
            model=model,
            provider=self.name,
            latency_ms=latency_ms,
            price=self.prices.price_for(model),
            truncated_at=max_tokens if got.stop_reason == "max_tokens" else None,
        )
