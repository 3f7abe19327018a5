"""Claude through the official `anthropic` SDK (Messages API), streamed, errors mapped to failure types.

Structured output is the API's own: `output_config.format` json_schema, the schema made fit for it by
the SDK's `transform_schema` (constraints it cannot enforce move into descriptions; the pydantic
model still checks them). Token counts for the context budget come from `messages.count_tokens`.

Tools are the API's tool use: `tools` with each MCP tool's input schema, the calls arriving as
`tool_use` content blocks (their `input` streamed as `input_json_delta` fragments, assembled here),
the results going back as `tool_result` blocks of the next user turn. The API refuses a conversation
with `tool_use` / `tool_result` blocks but no `tools`: when a step must answer without tools (its
tool rounds are used up) but its history has calls, those tools are still declared, with
`tool_choice: none`, so the history keeps its native shape and the model cannot call again.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, cast

import anthropic
import httpx2
from anthropic.types import MessageParam
from pydantic import BaseModel

from shared.agents.llm import (
    CallLimits,
    Completion,
    Message,
    OnDelta,
    ToolSpec,
    elapsed_ms,
    wire_name,
)
from shared.agents.provider_errors import (
    classify_http_error,
    garbage_body_failure,
    network_failure,
)
from shared.agents.streaming import StreamClock
from shared.agents.structured import estimate_prompt_tokens, finish_completion
from shared.agents.tool_wire import (
    StreamedCall,
    ToolNames,
    is_tool_error,
    parameters_schema,
    wire_id,
    with_tool_calls,
)
from shared.domain.costs import OFFICIAL, PriceTable
from shared.domain.failures import ClassifiedFailure, FailureType

log = logging.getLogger(__name__)


Role = Literal["user", "assistant"]


def _blocks(message: Message) -> list[dict[str, Any]]:
    """One message's content blocks: text (never empty: the API rejects empty text blocks), an
    assistant turn's `tool_use` calls, a tool message's `tool_result`."""
    if message.role == "tool":
        result: dict[str, Any] = {"type": "tool_result", "tool_use_id": wire_id(message.tool_call_id or ""),
                                  "content": message.content or "(empty)"}
        if is_tool_error(message.content):
            result["is_error"] = True
        return [result]
    blocks: list[dict[str, Any]] = []
    if message.content or not message.tool_calls:
        blocks.append({"type": "text", "text": message.content or "(empty)"})
    blocks += [{"type": "tool_use", "id": wire_id(call.id), "name": wire_name(call.name), "input": call.arguments}
               for call in message.tool_calls]
    return blocks


def to_anthropic(messages: list[Message]) -> tuple[str, list[MessageParam]]:
    """System messages become the `system` parameter; consecutive same-role turns are merged (tool
    results are user turns, their `tool_result` blocks first, as the API requires). A turn of text
    only is sent as a plain string, as before tools."""
    system = "\n\n".join(m.content for m in messages if m.role == "system")
    merged: list[tuple[Role, list[dict[str, Any]]]] = []
    for message in messages:
        if message.role == "system":
            continue
        role: Role = "assistant" if message.role == "assistant" else "user"
        blocks = _blocks(message)
        if merged and merged[-1][0] == role:
            merged[-1][1].extend(blocks)
        else:
            merged.append((role, blocks))
    turns: list[MessageParam] = []
    for role, blocks in merged:
        if all(b["type"] == "text" for b in blocks):
            turns.append(cast(MessageParam, {"role": role, "content": "\n\n".join(str(b["text"]) for b in blocks)}))
        else:
            # tool_result blocks lead a user turn (a correction after a result comes after them).
            blocks.sort(key=lambda b: b["type"] != "tool_result")
            turns.append(cast(MessageParam, {"role": role, "content": blocks}))
    return system, turns


def tool_definitions(tools: Sequence[ToolSpec], messages: Sequence[Message]) -> tuple[list[dict[str, Any]], bool]:
    """(`tools` of the request, whether they are only there for the history). A tool called earlier in
    the conversation but not offered now is declared with an open schema (the API requires it)."""
    declared = [{"name": t.wire_name, "description": t.description,
                 "input_schema": parameters_schema(t.input_schema)} for t in tools]
    offered = {t.wire_name for t in tools}
    for message in messages:
        for call in message.tool_calls:
            name = wire_name(call.name)
            if name not in offered:
                offered.add(name)
                declared.append({"name": name, "description": f"{call.name} (not offered in this turn)",
                                 "input_schema": {"type": "object", "properties": {}}})
    return declared, not tools and bool(declared)


def output_config(schema: type[BaseModel]) -> dict[str, Any]:
    return {"format": {"type": "json_schema", "schema": anthropic.transform_schema(schema)}}


@dataclass
class _ToolUse:
    """One streamed `tool_use` block: its id and name at the start, its input in JSON fragments."""

    id: str
    name: str
    input_json: list[str] = field(default_factory=list)
    start_input: dict[str, Any] = field(default_factory=dict)


@dataclass
class _Accumulated:
    text: list[str] = field(default_factory=list)
    tool_uses: dict[int, _ToolUse] = field(default_factory=dict)
    model: str | None = None
    input_tokens: int | None = None
    output_tokens: int | None = None
    stop_reason: str | None = None
    started: bool = False


class AnthropicProvider:
    name = "anthropic"
    supports_tools = True  #: tool use (`tools`, `tool_use` / `tool_result` blocks)

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
    def _request(messages: list[Message], schema: type[BaseModel] | None, tools: Sequence[ToolSpec] = ()
                 ) -> dict[str, Any]:
        system, turns = to_anthropic(messages)
        request: dict[str, Any] = {"messages": turns}
        if system:
            request["system"] = system
        if schema is not None:
            request["output_config"] = output_config(schema)
        declared, history_only = tool_definitions(tools, messages)
        if declared:
            request["tools"] = declared
        if history_only:
            request["tool_choice"] = {"type": "none"}
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
        started = time.perf_counter()
        clock = StreamClock(self.limits, self.name)
        got = _Accumulated()
        try:
            # No `temperature`: the current Messages API (SDK 2.x) has no such parameter.
            stream = await clock.step(self._client.messages.create(
                model=model, max_tokens=max_tokens, stream=True, **self._request(messages, schema, tools),
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
                                   latency_ms=elapsed_ms(started), names=ToolNames.of(tools, messages))

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
        elif kind == "content_block_start":
            block = getattr(event, "content_block", None)
            index = getattr(event, "index", None)
            if getattr(block, "type", None) == "tool_use" and isinstance(index, int):
                start = getattr(block, "input", None)
                got.tool_uses[index] = _ToolUse(id=str(getattr(block, "id", "") or ""),
                                                name=str(getattr(block, "name", "") or ""),
                                                start_input=start if isinstance(start, dict) else {})
        elif kind == "content_block_delta":
            delta = getattr(event, "delta", None)
            text = getattr(delta, "text", None)
            if getattr(delta, "type", None) == "text_delta" and isinstance(text, str):
                got.text.append(text)
                return text
            partial = getattr(delta, "partial_json", None)
            use = got.tool_uses.get(getattr(event, "index", -1))
            if getattr(delta, "type", None) == "input_json_delta" and isinstance(partial, str) and use is not None:
                use.input_json.append(partial)
        elif kind == "message_delta":
            stop = getattr(getattr(event, "delta", None), "stop_reason", None)
            got.stop_reason = stop if isinstance(stop, str) else got.stop_reason
            output = getattr(getattr(event, "usage", None), "output_tokens", None)
            if isinstance(output, int):
                got.output_tokens = output  # cumulative, per the API
        return ""

    def _to_completion(
        self, got: _Accumulated, *, schema: type[BaseModel] | None, requested_model: str, max_tokens: int,
        latency_ms: float, names: ToolNames,
    ) -> Completion:
        # An HTML page or a JSON body without the events comes through the SSE decoder as nothing.
        if not got.started:
            raise garbage_body_failure(self.name, "the stream had no message_start event")
        if got.input_tokens is None or got.output_tokens is None:
            raise garbage_body_failure(self.name, "the message has no usage")
        if got.stop_reason == "refusal":
            raise ClassifiedFailure(FailureType.CONTENT_REFUSED, "anthropic: the model refused to answer")
        model = got.model or requested_model
        truncated_at = max_tokens if got.stop_reason == "max_tokens" else None
        if got.tool_uses:
            return self._tool_completion(got, names=names, model=model, latency_ms=latency_ms,
                                         truncated_at=truncated_at)
        return finish_completion(
            text="".join(got.text),
            schema=schema,
            input_tokens=got.input_tokens,
            output_tokens=got.output_tokens,
            model=model,
            provider=self.name,
            latency_ms=latency_ms,
            price=self.prices.price_for(model),
            truncated_at=truncated_at,
        )

    def _tool_completion(self, got: _Accumulated, *, names: ToolNames, model: str, latency_ms: float,
                         truncated_at: int | None) -> Completion:
        """The model asked for tools: its `tool_use` blocks in order, under the app's tool names. An
        input that is not a JSON object (a stream cut at `max_tokens`) is invalid output, billed."""
        assert got.input_tokens is not None and got.output_tokens is not None
        completion = finish_completion(text="".join(got.text), schema=None, input_tokens=got.input_tokens,
                                       output_tokens=got.output_tokens, model=model, provider=self.name,
                                       latency_ms=latency_ms, price=self.prices.price_for(model))
        streamed = (StreamedCall(use.id, use.name, "".join(use.input_json), start_arguments=use.start_input)
                    for _, use in sorted(got.tool_uses.items()))
        return with_tool_calls(completion, streamed, names=names, id_prefix="toolu", truncated_at=truncated_at)
