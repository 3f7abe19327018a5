"""OpenAI, or any OpenAI-compatible server (vLLM, Ollama, llama.cpp) via `base_url`, with the `openai` SDK.

Every call streams (`stream=True`, `stream_options.include_usage`), so usage is the server's own
count even when the answer is invalid. The chunks are accumulated here rather than with the SDK's
`chat.completions.stream()` helper: that helper raises on `finish_reason: length` before the caller
can bill the call as invalid output, and it would parse with the bare schema, without our messages.

Tools are function calling: `tools` of `type: function`, the calls arriving as `delta.tool_calls`
pieces (by `index`: the id and name first, the arguments in fragments) assembled here. The history
goes back in the API's own shape: an assistant message with `tool_calls`, then one `role: "tool"`
message per call (`tool_call_id`).
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import httpx2
import openai
from openai.types.chat import ChatCompletionChunk, ChatCompletionMessageParam
from pydantic import BaseModel

from shared.agents.llm import (
    CALL_ID,
    CallLimits,
    Completion,
    Message,
    OnDelta,
    StructuredOutput,
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
from shared.agents.structured import (
    estimate_prompt_tokens,
    estimate_tokens,
    finish_completion,
    strict_json_schema,
    with_schema_instruction,
)
from shared.agents.tool_wire import StreamedCall, ToolNames, parameters_schema, wire_id, with_tool_calls
from shared.domain.costs import OFFICIAL, PriceTable
from shared.domain.failures import ClassifiedFailure, FailureType

#: Local servers ignore the key, but the SDK refuses to start without one.
LOCAL_SERVER_API_KEY = "not-needed-by-local-servers"


def to_openai(messages: list[Message]) -> list[ChatCompletionMessageParam]:
    """Our messages in the chat completions shape: an assistant turn's tool calls as `tool_calls`
    (function name on the wire, arguments as a JSON string), each result a `role: "tool"` message."""
    converted: list[ChatCompletionMessageParam] = []
    for message in messages:
        if message.role == "system":
            converted.append({"role": "system", "content": message.content})
        elif message.role == "user":
            converted.append({"role": "user", "content": message.content})
        elif message.role == "tool":
            converted.append({"role": "tool", "tool_call_id": wire_id(message.tool_call_id or ""),
                              "content": message.content})
        elif message.tool_calls:
            converted.append({
                "role": "assistant",
                "content": message.content or None,
                "tool_calls": [{"id": wire_id(call.id), "type": "function",
                                "function": {"name": wire_name(call.name),
                                             "arguments": json.dumps(call.arguments, ensure_ascii=False)}}
                               for call in message.tool_calls],
            })
        else:
            converted.append({"role": "assistant", "content": message.content})
    return converted


def function_tools(tools: Sequence[ToolSpec]) -> list[dict[str, Any]]:
    """`tools` of a chat completions request. Not `strict`: MCP input schemas are free JSON Schema,
    outside the strict subset (every property required, no extra keywords)."""
    return [{"type": "function", "function": {"name": tool.wire_name, "description": tool.description,
                                              "parameters": parameters_schema(tool.input_schema)}}
            for tool in tools]


def response_format(schema: type[BaseModel], *, compatible_server: bool, max_tokens: int | None) -> dict[str, Any]:
    """`response_format` for a strict json_schema answer (the name must match ^[a-zA-Z0-9_-]+$)."""
    return {
        "type": "json_schema",
        "json_schema": {
            "name": schema.__name__,
            "schema": strict_json_schema(schema, compatible_server=compatible_server, max_tokens=max_tokens),
            "strict": True,
        },
    }


@dataclass
class _ToolCallParts:
    """One streamed tool call: `id` and `name` arrive once, `arguments` in pieces."""

    id: str = ""
    name: str = ""
    arguments: list[str] = field(default_factory=list)


@dataclass
class _Accumulated:
    text: list[str] = field(default_factory=list)
    tool_calls: dict[int, _ToolCallParts] = field(default_factory=dict)
    refusal: list[str] = field(default_factory=list)
    finish_reason: str | None = None
    model: str | None = None
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    chunks_with_choices: int = 0
    chunks: int = 0


class OpenAIProvider:
    name = "openai"
    supports_tools = True  #: function calling (`tools` / `tool_calls`), also on compatible servers

    def __init__(
        self,
        *,
        api_key: str | None,
        base_url: str | None = None,
        limits: CallLimits | None = None,
        prices: PriceTable = OFFICIAL,
        compatible: bool = False,
        structured_output: StructuredOutput = "json_schema",
        fit_strings_to_max_tokens: bool = False,
        http_client: httpx2.AsyncClient | None = None,
    ) -> None:
        self.fit_strings_to_max_tokens = fit_strings_to_max_tokens
        self.limits = limits or CallLimits()
        self.prices = prices
        self.compatible = compatible
        self.structured_output: StructuredOutput = structured_output
        # max_retries=0: the FailureHandler owns retries (durable timers), the SDK must not add its own.
        self._client = openai.AsyncOpenAI(
            api_key=api_key or LOCAL_SERVER_API_KEY,
            base_url=base_url,
            timeout=self.limits.http_timeout(),
            max_retries=0,
            http_client=http_client,
        )

    def _prompt(self, messages: list[Message], schema: type[BaseModel] | None) -> list[Message]:
        return with_schema_instruction(messages, schema) if self.structured_output == "prompt" else list(messages)

    async def count_tokens(self, messages: list[Message], *, model: str, schema: type[BaseModel] | None = None) -> int:
        """The SDK has no token counter (tiktoken would be a guess for other servers' models): an estimate."""
        return estimate_prompt_tokens(self._prompt(messages, schema), schema)

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
        prompt = self._prompt(messages, schema)
        extra: dict[str, Any] = {}
        names = ToolNames.of(tools, messages)
        if tools:
            extra["tools"] = function_tools(tools)
        if schema is not None and self.structured_output == "json_schema":
            extra["response_format"] = response_format(
                schema, compatible_server=self.compatible,
                max_tokens=max_tokens if self.fit_strings_to_max_tokens else None)
        call_id = CALL_ID.get()
        if call_id is not None:  # OpenAI keeps it with the request for tracing; other servers ignore it
            extra["extra_headers"] = {"X-Client-Request-Id": call_id}
        started = time.perf_counter()
        clock = StreamClock(self.limits, self.name)
        got = _Accumulated()
        try:
            # `max_tokens` rather than `max_completion_tokens`: compatible servers understand only the former.
            stream = await clock.step(self._client.chat.completions.create(
                model=model, messages=to_openai(prompt), max_tokens=max_tokens, temperature=temperature,
                stream=True, stream_options={"include_usage": True}, **extra,
            ))
            async with stream:
                async for chunk in clock.events(stream):
                    text = self._take(chunk, got)
                    if text and on_delta is not None:
                        await on_delta(text)
        except openai.APITimeoutError as exc:
            raise network_failure(self.name, exc, timed_out=True) from exc
        except openai.APIConnectionError as exc:
            raise network_failure(self.name, exc, timed_out=False) from exc
        except openai.APIStatusError as exc:
            raise classify_http_error(
                exc.status_code, headers=exc.response.headers, body=exc.body, provider=self.name
            ) from exc
        except openai.APIResponseValidationError as exc:
            raise garbage_body_failure(self.name, exc.message) from exc
        except openai.APIError as exc:  # an `error` event inside the stream
            raise classify_http_error(500, headers={}, body=exc.body or exc.message, provider=self.name) from exc
        except (json.JSONDecodeError, httpx2.DecodingError) as exc:  # a data line that is not JSON
            raise garbage_body_failure(self.name, f"invalid JSON in the stream ({exc})") from exc
        return self._to_completion(got, schema=schema, requested_model=model, max_tokens=max_tokens,
                                   latency_ms=elapsed_ms(started), prompt=prompt, names=names)

    @staticmethod
    def _take(chunk: ChatCompletionChunk, got: _Accumulated) -> str:
        """Fold one chunk into `got`; the new text it carries."""
        got.chunks += 1
        model = getattr(chunk, "model", None)
        if isinstance(model, str) and model:
            got.model = model
        usage = getattr(chunk, "usage", None)
        if usage is not None:
            prompt_tokens, completion_tokens = getattr(usage, "prompt_tokens", None), getattr(
                usage, "completion_tokens", None)
            if isinstance(prompt_tokens, int) and isinstance(completion_tokens, int):
                got.prompt_tokens, got.completion_tokens = prompt_tokens, completion_tokens
        choices = getattr(chunk, "choices", None)
        if not isinstance(choices, list) or not choices:
            return ""
        got.chunks_with_choices += 1
        choice = choices[0]
        finish = getattr(choice, "finish_reason", None)
        if isinstance(finish, str):
            got.finish_reason = finish
        delta = getattr(choice, "delta", None)
        refusal = getattr(delta, "refusal", None)
        if isinstance(refusal, str) and refusal:
            got.refusal.append(refusal)
        for piece in getattr(delta, "tool_calls", None) or ():
            index = getattr(piece, "index", None)
            parts = got.tool_calls.setdefault(index if isinstance(index, int) else len(got.tool_calls),
                                              _ToolCallParts())
            call_id = getattr(piece, "id", None)
            if isinstance(call_id, str) and call_id:
                parts.id = call_id
            function = getattr(piece, "function", None)
            name = getattr(function, "name", None)
            if isinstance(name, str) and name:
                parts.name = name
            arguments = getattr(function, "arguments", None)
            if isinstance(arguments, str) and arguments:
                parts.arguments.append(arguments)
        content = getattr(delta, "content", None)
        if isinstance(content, str) and content:
            got.text.append(content)
            return content
        return ""

    def _to_completion(
        self,
        got: _Accumulated,
        *,
        schema: type[BaseModel] | None,
        requested_model: str,
        max_tokens: int,
        latency_ms: float,
        prompt: list[Message],
        names: ToolNames,
    ) -> Completion:
        if not got.chunks_with_choices:
            what = "no chunks" if not got.chunks else "chunks without choices"
            raise garbage_body_failure(self.name, f"the stream had {what}")
        if got.finish_reason == "content_filter":
            raise ClassifiedFailure(
                FailureType.CONTENT_REFUSED, "openai: the answer was blocked by a content filter"
            )
        refusal = "".join(got.refusal)
        if refusal:
            raise ClassifiedFailure(FailureType.CONTENT_REFUSED, f"openai: the model refused: {refusal[:300]}")
        text = "".join(got.text)
        # Some compatible servers omit usage; an estimate keeps the budget honest where zero would not.
        input_tokens = got.prompt_tokens if got.prompt_tokens is not None else estimate_tokens(
            "".join(m.content for m in prompt))
        output_tokens = got.completion_tokens if got.completion_tokens is not None else estimate_tokens(
            text + "".join("".join(c.arguments) for c in got.tool_calls.values()))
        # A compatible server's models are priced by settings under the name the app asked for (llama.cpp
        # reports a file path); OpenAI's own API reports the dated snapshot it served.
        model = requested_model if self.compatible or not got.model else got.model
        truncated_at = max_tokens if got.finish_reason == "length" else None
        if got.tool_calls:
            return self._tool_completion(got, text=text, names=names, input_tokens=input_tokens,
                                         output_tokens=output_tokens, model=model, latency_ms=latency_ms,
                                         truncated_at=truncated_at)
        return finish_completion(
            text=text,
            schema=schema,
            input_tokens=input_tokens,
            output_tokens=output_tokens,
            model=model,
            provider=self.name,
            latency_ms=latency_ms,
            price=self.prices.price_for(model),
            truncated_at=truncated_at,
        )

    def _tool_completion(self, got: _Accumulated, *, text: str, names: ToolNames, input_tokens: int,
                         output_tokens: int, model: str, latency_ms: float, truncated_at: int | None
                         ) -> Completion:
        """The model asked for tools: the assembled calls (under the app's tool names), in stream order.
        Arguments that are not a JSON object are invalid output, billed like any other."""
        completion = finish_completion(text=text, schema=None, input_tokens=input_tokens,
                                       output_tokens=output_tokens, model=model, provider=self.name,
                                       latency_ms=latency_ms, price=self.prices.price_for(model))
        streamed = (StreamedCall(parts.id, parts.name, "".join(parts.arguments))
                    for _, parts in sorted(got.tool_calls.items()))
        return with_tool_calls(completion, streamed, names=names, id_prefix="call", truncated_at=truncated_at)
