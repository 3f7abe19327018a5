"""OpenAI, or any OpenAI-compatible server (vLLM, Ollama, LiteLLM) via `base_url`, with the `openai` SDK."""

from __future__ import annotations

import json
import time
from collections.abc import Sequence

import httpx
import openai
from openai.types.chat import ChatCompletion, ChatCompletionMessageParam
from pydantic import BaseModel

from shared.agents.llm import Completion, Message, ToolSpec, elapsed_ms
from shared.agents.provider_errors import (
    classify_http_error,
    garbage_body_failure,
    network_failure,
)
from shared.agents.structured import estimate_tokens, finish_completion, with_schema_instruction
from shared.domain.failures import ClassifiedFailure, FailureType

#: Local servers ignore the key, but the SDK refuses to start without one.
LOCAL_SERVER_API_KEY = "not-needed-by-local-servers"


def to_openai(messages: list[Message]) -> list[ChatCompletionMessageParam]:
    converted: list[ChatCompletionMessageParam] = []
    for message in messages:
        if message.role == "system":
            converted.append({"role": "system", "content": message.content})
        elif message.role == "user":
            converted.append({"role": "user", "content": message.content})
        elif message.role == "tool":  # no tool use here yet (supports_tools is False): results as text
            converted.append({"role": "user", "content": f"[tool result of {message.name}]\n{message.content}"})
        else:
            converted.append({"role": "assistant", "content": message.content})
    return converted


class OpenAIProvider:
    name = "openai"
    supports_tools = False  #: function calling arrives with the streaming rewrite of this provider (issue 15)

    def __init__(
        self,
        *,
        api_key: str | None,
        base_url: str | None = None,
        timeout_s: float = 60,
        http_client: httpx.AsyncClient | None = None,
    ) -> None:
        # max_retries=0: the FailureHandler owns retries (durable timers), the SDK must not add its own.
        self._client = openai.AsyncOpenAI(
            api_key=api_key or LOCAL_SERVER_API_KEY,
            base_url=base_url,
            timeout=timeout_s,
            max_retries=0,
            http_client=http_client,
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
            raise ClassifiedFailure(FailureType.UNKNOWN, "this OpenAI provider does not use tools")
        payload = to_openai(with_schema_instruction(messages, schema))
        started = time.perf_counter()
        try:
            # `max_tokens` rather than `max_completion_tokens`: compatible servers understand only the former.
            result = await self._client.chat.completions.create(
                model=model, messages=payload, max_tokens=max_tokens, temperature=temperature
            )
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
        except json.JSONDecodeError as exc:  # the SDK decodes a JSON content type without catching
            raise garbage_body_failure(self.name, f"invalid JSON ({exc.msg})") from exc
        latency = elapsed_ms(started)
        prompt_text = "".join(m.content for m in messages)
        return self._to_completion(
            result, schema=schema, requested_model=model, latency_ms=latency, prompt_text=prompt_text
        )

    def _to_completion(
        self,
        result: object,
        *,
        schema: type[BaseModel] | None,
        requested_model: str,
        latency_ms: float,
        prompt_text: str,
    ) -> Completion:
        if not isinstance(result, ChatCompletion):
            raise garbage_body_failure(self.name, f"expected a chat completion, got {type(result).__name__}")
        choices = getattr(result, "choices", None)
        if not isinstance(choices, list) or not choices:
            raise garbage_body_failure(self.name, "the chat completion has no choices")
        choice = choices[0]
        message = getattr(choice, "message", None)
        if getattr(choice, "finish_reason", None) == "content_filter":
            raise ClassifiedFailure(
                FailureType.CONTENT_REFUSED, "openai: the answer was blocked by a content filter"
            )
        refusal = getattr(message, "refusal", None)
        if isinstance(refusal, str) and refusal:
            raise ClassifiedFailure(
                FailureType.CONTENT_REFUSED, f"openai: the model refused: {refusal[:300]}"
            )
        content = getattr(message, "content", None)
        text = content if isinstance(content, str) else ""
        usage = getattr(result, "usage", None)
        input_tokens = getattr(usage, "prompt_tokens", None)
        output_tokens = getattr(usage, "completion_tokens", None)
        # Some compatible servers omit usage; an estimate keeps the budget honest where zero would not.
        if not isinstance(input_tokens, int):
            input_tokens = estimate_tokens(prompt_text)
        if not isinstance(output_tokens, int):
            output_tokens = estimate_tokens(text)
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
