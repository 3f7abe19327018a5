"""What only one API does: Anthropic's system parameter and refusals, OpenAI's filters and local servers."""

from __future__ import annotations

import pytest

from shared.agents.llm import Message, build_provider
from shared.agents.schemas import Summary
from shared.domain.failures import ClassifiedFailure, FailureType
from tests.agents.wire_server import (
    Reply,
    WireServer,
    anthropic_error,
    anthropic_message,
    openai_completion,
    openai_error,
)

PROMPT = [Message("system", "You summarize."), Message("user", "Summarize the voyage.")]


def anthropic(wire: WireServer, http_client):
    return build_provider(
        "anthropic",
        anthropic_api_key="sk-ant-test",
        anthropic_base_url=wire.url,
        timeout_s=5,
        http_client=http_client,
    )


def openai(wire: WireServer, http_client, *, key: str | None = "sk-test"):
    return build_provider(
        "openai", openai_api_key=key, openai_base_url=f"{wire.url}/v1", timeout_s=5, http_client=http_client
    )


async def test_anthropic_request_puts_system_text_and_schema_in_the_system_parameter(
    wire: WireServer, http_client
):
    wire.replies.append(Reply(body=anthropic_message('{"summary": "ok"}', input_tokens=5, output_tokens=5)))

    await anthropic(wire, http_client).complete(
        PROMPT, model="claude-haiku-4-5", schema=Summary, max_tokens=321
    )

    request = wire.requests[0]
    assert request.headers["x-api-key"] == "sk-ant-test"
    assert "anthropic-version" in request.headers
    assert request.body["max_tokens"] == 321
    assert request.body["messages"] == [{"role": "user", "content": "Summarize the voyage."}]
    system = str(request.body["system"])
    assert system.startswith("You summarize.") and "JSON Schema" in system


async def test_anthropic_refusal_stop_reason_is_content_refused(wire: WireServer, http_client):
    wire.replies.append(
        Reply(body=anthropic_message("", input_tokens=5, output_tokens=0, stop_reason="refusal"))
    )
    with pytest.raises(ClassifiedFailure) as caught:
        await anthropic(wire, http_client).complete(PROMPT, model="claude-haiku-4-5")
    assert caught.value.failure_type is FailureType.CONTENT_REFUSED


async def test_anthropic_prompt_too_long_is_context_too_long(wire: WireServer, http_client):
    body = anthropic_error("invalid_request_error", "prompt is too long: 215343 tokens > 200000 maximum")
    wire.replies.append(Reply(400, body))
    with pytest.raises(ClassifiedFailure) as caught:
        await anthropic(wire, http_client).complete(PROMPT, model="claude-haiku-4-5")
    assert caught.value.failure_type is FailureType.CONTEXT_TOO_LONG


async def test_openai_request_carries_bearer_key_and_chat_messages(wire: WireServer, http_client):
    wire.replies.append(Reply(body=openai_completion("ok", prompt_tokens=5, completion_tokens=1)))

    await openai(wire, http_client).complete(PROMPT, model="gpt-4.1-mini", max_tokens=99, temperature=0.5)

    request = wire.requests[0]
    assert request.headers["authorization"] == "Bearer sk-test"
    assert request.body["messages"] == [
        {"role": "system", "content": "You summarize."},
        {"role": "user", "content": "Summarize the voyage."},
    ]
    assert (request.body["max_tokens"], request.body["temperature"]) == (99, 0.5)


async def test_openai_schema_instruction_stays_in_the_one_leading_system_message(
    wire: WireServer, http_client
):
    wire.replies.append(
        Reply(body=openai_completion('{"summary": "ok"}', prompt_tokens=5, completion_tokens=5))
    )

    await openai(wire, http_client).complete(PROMPT, model="gpt-4.1-mini", schema=Summary)

    messages = wire.requests[0].body["messages"]
    assert [m["role"] for m in messages] == ["system", "user"]
    assert "JSON Schema" in messages[0]["content"]


async def test_openai_compatible_server_needs_no_key_and_missing_usage_is_estimated(
    wire: WireServer, http_client
):
    body = openai_completion("Aye, captain.", prompt_tokens=0, completion_tokens=0, model="llama3.1:8b")
    del body["usage"]
    wire.replies.append(Reply(body=body))

    completion = await openai(wire, http_client, key=None).complete(PROMPT, model="llama3.1:8b")

    assert completion.model == "llama3.1:8b"
    assert completion.input_tokens > 0 and completion.output_tokens > 0, "a budget must never see a free call"


async def test_openai_content_filter_finish_is_content_refused(wire: WireServer, http_client):
    wire.replies.append(
        Reply(
            body=openai_completion(None, prompt_tokens=5, completion_tokens=0, finish_reason="content_filter")
        )
    )
    with pytest.raises(ClassifiedFailure) as caught:
        await openai(wire, http_client).complete(PROMPT, model="gpt-4.1-mini")
    assert caught.value.failure_type is FailureType.CONTENT_REFUSED


async def test_openai_model_refusal_is_content_refused(wire: WireServer, http_client):
    body = openai_completion(None, prompt_tokens=5, completion_tokens=3)
    body["choices"][0]["message"]["refusal"] = "I can't help with that."  # type: ignore[index]
    wire.replies.append(Reply(body=body))
    with pytest.raises(ClassifiedFailure) as caught:
        await openai(wire, http_client).complete(PROMPT, model="gpt-4.1-mini")
    assert caught.value.failure_type is FailureType.CONTENT_REFUSED


async def test_openai_context_length_exceeded_is_context_too_long(wire: WireServer, http_client):
    body = openai_error("context_length_exceeded", "This model's maximum context length is 128000 tokens.")
    wire.replies.append(Reply(400, body))
    with pytest.raises(ClassifiedFailure) as caught:
        await openai(wire, http_client).complete(PROMPT, model="gpt-4.1-mini")
    assert caught.value.failure_type is FailureType.CONTEXT_TOO_LONG
