"""What only one API does (Anthropic's system parameter, output_config, refusals and token counting;
OpenAI's filters, strict json_schema and local servers), and streaming on both."""

from __future__ import annotations

import time
from decimal import Decimal

import pytest

from shared.agents.llm import CallLimits, Message, ProviderOutputInvalid, build_provider
from shared.agents.schemas import Summary
from shared.domain.costs import ModelPrice, PriceTable
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


def anthropic(wire: WireServer, http_client, *, stall: float = 5):
    return build_provider(
        "anthropic",
        anthropic_api_key="sk-ant-test",
        anthropic_base_url=wire.url,
        limits=CallLimits(stall_timeout_s=stall),
        http_client=http_client,
    )


def openai(wire: WireServer, http_client, *, key: str | None = "sk-test", compatible: bool = False,
           structured_output="json_schema", prices: PriceTable | None = None, limits: CallLimits | None = None):
    return build_provider(
        "openai", openai_api_key=key, openai_base_url=f"{wire.url}/v1", openai_compatible=compatible,
        structured_output=structured_output, prices=prices or PriceTable(),
        limits=limits or CallLimits(stall_timeout_s=5),
        http_client=http_client,
    )


class Deltas:
    def __init__(self) -> None:
        self.texts: list[str] = []

    async def __call__(self, text: str) -> None:
        self.texts.append(text)


async def test_anthropic_request_puts_system_text_in_the_system_parameter_and_the_schema_in_output_config(
    wire: WireServer, http_client
):
    wire.replies.append(Reply(body=anthropic_message('{"summary": "ok"}', input_tokens=5, output_tokens=5)))

    await anthropic(wire, http_client).complete(PROMPT, model="claude-haiku-4-5", schema=Summary, max_tokens=321)

    request = wire.requests[0]
    # anthropic 2.x sends the key as a bearer token (0.x used x-api-key); the API takes both.
    assert "sk-ant-test" in (request.headers.get("x-api-key", ""), request.headers.get("authorization", "")[7:])
    assert "anthropic-version" in request.headers
    assert request.body["max_tokens"] == 321 and request.body["stream"] is True
    assert request.body["messages"] == [{"role": "user", "content": "Summarize the voyage."}]
    assert request.body["system"] == "You summarize."
    schema_format = request.body["output_config"]["format"]
    assert schema_format["type"] == "json_schema" and "summary" in schema_format["schema"]["properties"]


async def test_anthropic_stream_delivers_deltas_and_the_usage_of_message_delta(wire: WireServer, http_client):
    wire.replies.append(Reply(body=anthropic_message("Fair winds all the way.", input_tokens=1000,
                                                     output_tokens=200), pieces=4))
    deltas = Deltas()

    completion = await anthropic(wire, http_client).complete(PROMPT, model="claude-haiku-4-5", max_tokens=300,
                                                              on_delta=deltas)

    assert len(deltas.texts) == 4 and "".join(deltas.texts) == completion.text == "Fair winds all the way."
    assert (completion.input_tokens, completion.output_tokens) == (1000, 200)


async def test_anthropic_max_tokens_stop_is_invalid_output_with_the_usage(wire: WireServer, http_client):
    wire.replies.append(Reply(body=anthropic_message('{"summary": "trea', input_tokens=40, output_tokens=8,
                                                     stop_reason="max_tokens")))
    with pytest.raises(ProviderOutputInvalid) as caught:
        await anthropic(wire, http_client).complete(PROMPT, model="claude-haiku-4-5", schema=Summary, max_tokens=8)
    assert "cut off at the 8-token limit" in caught.value.message
    assert (caught.value.completion.input_tokens, caught.value.completion.output_tokens) == (40, 8)


async def test_anthropic_refusal_stop_reason_is_content_refused(wire: WireServer, http_client):
    wire.replies.append(
        Reply(body=anthropic_message("", input_tokens=5, output_tokens=0, stop_reason="refusal"))
    )
    with pytest.raises(ClassifiedFailure) as caught:
        await anthropic(wire, http_client).complete(PROMPT, model="claude-haiku-4-5", max_tokens=10)
    assert caught.value.failure_type is FailureType.CONTENT_REFUSED


async def test_anthropic_prompt_too_long_is_context_too_long(wire: WireServer, http_client):
    body = anthropic_error("invalid_request_error", "prompt is too long: 215343 tokens > 200000 maximum")
    wire.replies.append(Reply(400, body))
    with pytest.raises(ClassifiedFailure) as caught:
        await anthropic(wire, http_client).complete(PROMPT, model="claude-haiku-4-5", max_tokens=10)
    assert caught.value.failure_type is FailureType.CONTEXT_TOO_LONG


async def test_anthropic_error_event_inside_the_stream_is_provider_unavailable(wire: WireServer, http_client):
    error = b'event: error\ndata: {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}\n\n'
    wire.replies.append(Reply(body={"stream": "scripted"}, events=[error]))
    with pytest.raises(ClassifiedFailure) as caught:
        await anthropic(wire, http_client).complete(PROMPT, model="claude-haiku-4-5", max_tokens=10)
    assert caught.value.failure_type is FailureType.PROVIDER_UNAVAILABLE


async def test_anthropic_token_count_is_the_apis_own(wire: WireServer, http_client):
    wire.replies.append(Reply(body={"input_tokens": 4242}))

    counted = await anthropic(wire, http_client).count_tokens(PROMPT, model="claude-haiku-4-5", schema=Summary)

    assert counted == 4242
    assert wire.requests[0].path == "/v1/messages/count_tokens"
    assert wire.requests[0].body["system"] == "You summarize." and "output_config" in wire.requests[0].body


async def test_a_failed_anthropic_token_count_falls_back_to_the_estimate(wire: WireServer, http_client):
    wire.replies.append(Reply(500, anthropic_error("api_error", "boom")))
    counted = await anthropic(wire, http_client).count_tokens(PROMPT, model="claude-haiku-4-5")
    assert counted > 0


async def test_openai_request_carries_bearer_key_chat_messages_and_stream_options(wire: WireServer, http_client):
    wire.replies.append(Reply(body=openai_completion("ok", prompt_tokens=5, completion_tokens=1)))

    await openai(wire, http_client).complete(PROMPT, model="gpt-4.1-mini", max_tokens=99, temperature=0.5)

    request = wire.requests[0]
    assert request.headers["authorization"] == "Bearer sk-test"
    assert request.body["messages"] == [
        {"role": "system", "content": "You summarize."},
        {"role": "user", "content": "Summarize the voyage."},
    ]
    assert (request.body["max_tokens"], request.body["temperature"]) == (99, 0.5)
    assert request.body["stream"] is True and request.body["stream_options"] == {"include_usage": True}


async def test_openai_structured_output_is_a_strict_json_schema_without_keywords_the_api_rejects(
    wire: WireServer, http_client
):
    wire.replies.append(Reply(body=openai_completion('{"summary": "ok", "highlights": [], "follow_ups": []}',
                                                     prompt_tokens=5, completion_tokens=5)))

    completion = await openai(wire, http_client).complete(PROMPT, model="gpt-4.1-mini", schema=Summary, max_tokens=50)

    assert completion.parsed == Summary(summary="ok")
    response_format = wire.requests[0].body["response_format"]
    assert response_format["type"] == "json_schema" and response_format["json_schema"]["strict"] is True
    schema = response_format["json_schema"]["schema"]
    assert schema["required"] == ["summary", "highlights", "follow_ups"], "strict: every property required"
    assert "minLength" not in str(schema) and "default" not in str(schema)
    assert [m["role"] for m in wire.requests[0].body["messages"]] == ["system", "user"]


async def test_a_compatible_server_keeps_length_bounds_so_it_can_enforce_them(wire: WireServer, http_client):
    wire.replies.append(Reply(body=openai_completion('{"summary": "ok", "highlights": [], "follow_ups": []}',
                                                     prompt_tokens=5, completion_tokens=5)))

    await openai(wire, http_client, key=None, compatible=True).complete(PROMPT, model="smol", schema=Summary,
                                                                        max_tokens=50)

    assert '"minLength": 1' in str(wire.requests[0].body["response_format"]).replace("'", '"')


async def test_prompt_only_json_puts_the_schema_in_the_one_leading_system_message(wire: WireServer, http_client):
    wire.replies.append(Reply(body=openai_completion('Here: {"summary": "ok"}', prompt_tokens=5, completion_tokens=5)))

    completion = await openai(wire, http_client, key=None, compatible=True, structured_output="prompt").complete(
        PROMPT, model="old-server-model", schema=Summary, max_tokens=50)

    body = wire.requests[0].body
    assert "response_format" not in body
    assert [m["role"] for m in body["messages"]] == ["system", "user"]
    assert "JSON Schema" in body["messages"][0]["content"]
    assert completion.parsed == Summary(summary="ok"), "prose around the object is tolerated"


async def test_openai_stream_delivers_deltas_and_the_usage_chunk(wire: WireServer, http_client):
    wire.replies.append(Reply(body=openai_completion("Aye, the map is true.", prompt_tokens=70, completion_tokens=9),
                              pieces=5))
    deltas = Deltas()

    completion = await openai(wire, http_client).complete(PROMPT, model="gpt-4.1-mini", max_tokens=50,
                                                           on_delta=deltas)

    assert len(deltas.texts) == 5 and "".join(deltas.texts) == completion.text
    assert (completion.input_tokens, completion.output_tokens) == (70, 9)


async def test_openai_length_finish_is_invalid_output_carrying_the_real_usage(wire: WireServer, http_client):
    wire.replies.append(Reply(body=openai_completion('{"summary": "the tre', prompt_tokens=33, completion_tokens=6,
                                                     finish_reason="length")))
    with pytest.raises(ProviderOutputInvalid) as caught:
        await openai(wire, http_client).complete(PROMPT, model="gpt-4.1-mini", schema=Summary, max_tokens=6)
    assert "cut off at the 6-token limit" in caught.value.message
    assert (caught.value.completion.input_tokens, caught.value.completion.output_tokens) == (33, 6)


async def test_a_compatible_server_is_priced_by_settings_under_the_requested_name(wire: WireServer, http_client):
    body = openai_completion("Aye.", prompt_tokens=1_000_000, completion_tokens=1_000_000,
                             model="/models/SmolLM2-135M-Instruct.Q4_1.gguf")
    wire.replies.append(Reply(body=body))
    prices = PriceTable({"smollm2": ModelPrice(Decimal("0.5"), Decimal("1.5"))})

    completion = await openai(wire, http_client, key=None, compatible=True, prices=prices).complete(
        PROMPT, model="smollm2", max_tokens=5)

    assert completion.model == "smollm2"
    assert str(completion.cost_usd) == "2.00000000"


async def test_openai_compatible_server_needs_no_key_and_missing_usage_is_estimated(
    wire: WireServer, http_client
):
    body = openai_completion("Aye, captain.", prompt_tokens=0, completion_tokens=0, model="llama3.1:8b")
    del body["usage"]
    wire.replies.append(Reply(body=body))

    completion = await openai(wire, http_client, key=None, compatible=True).complete(
        PROMPT, model="llama3.1:8b", max_tokens=20)

    assert completion.model == "llama3.1:8b"
    assert "authorization" not in wire.requests[0].headers or "not-needed" in wire.requests[0].headers["authorization"]
    assert completion.input_tokens > 0 and completion.output_tokens > 0, "a budget must never see a free call"


async def test_openai_content_filter_finish_is_content_refused(wire: WireServer, http_client):
    wire.replies.append(
        Reply(
            body=openai_completion(None, prompt_tokens=5, completion_tokens=0, finish_reason="content_filter")
        )
    )
    with pytest.raises(ClassifiedFailure) as caught:
        await openai(wire, http_client).complete(PROMPT, model="gpt-4.1-mini", max_tokens=10)
    assert caught.value.failure_type is FailureType.CONTENT_REFUSED


async def test_openai_model_refusal_is_content_refused(wire: WireServer, http_client):
    body = openai_completion(None, prompt_tokens=5, completion_tokens=3)
    body["choices"][0]["message"]["refusal"] = "I can't help with that."  # type: ignore[index]
    wire.replies.append(Reply(body=body))
    with pytest.raises(ClassifiedFailure) as caught:
        await openai(wire, http_client).complete(PROMPT, model="gpt-4.1-mini", max_tokens=10)
    assert caught.value.failure_type is FailureType.CONTENT_REFUSED


async def test_openai_context_length_exceeded_is_context_too_long(wire: WireServer, http_client):
    body = openai_error("context_length_exceeded", "This model's maximum context length is 128000 tokens.")
    wire.replies.append(Reply(400, body))
    with pytest.raises(ClassifiedFailure) as caught:
        await openai(wire, http_client).complete(PROMPT, model="gpt-4.1-mini", max_tokens=10)
    assert caught.value.failure_type is FailureType.CONTEXT_TOO_LONG


async def test_a_slow_model_that_keeps_writing_is_not_cut_off_by_the_stall_timeout(wire: WireServer, http_client):
    # 8 events 0.15 s apart: 1.2 s in all, far past the 0.5 s stall timeout, but never 0.5 s without progress.
    wire.replies.append(Reply(body=openai_completion("slow but steady", prompt_tokens=5, completion_tokens=4),
                              pieces=4, gap_s=0.15))
    provider = openai(wire, http_client, limits=CallLimits(stall_timeout_s=0.5, call_timeout_s=30))

    completion = await provider.complete(PROMPT, model="gpt-4.1-mini", max_tokens=10)

    assert completion.text == "slow but steady"


@pytest.mark.parametrize("api", ["anthropic", "openai"])
async def test_a_stream_that_stops_sending_is_a_network_timeout_after_the_stall_timeout(
    wire: WireServer, http_client, api: str
):
    if api == "anthropic":
        wire.replies.append(Reply(body=anthropic_message("never finished", input_tokens=5, output_tokens=5),
                                  stall_after=3))
        provider = anthropic(wire, http_client, stall=0.4)
    else:
        wire.replies.append(Reply(body=openai_completion("never finished", prompt_tokens=5, completion_tokens=5),
                                  stall_after=2))
        provider = openai(wire, http_client, limits=CallLimits(stall_timeout_s=0.4))
    deltas = Deltas()
    started = time.perf_counter()

    with pytest.raises(ClassifiedFailure) as caught:
        await provider.complete(PROMPT, model="claude-haiku-4-5", max_tokens=10, on_delta=deltas)

    assert caught.value.failure_type is FailureType.NETWORK_TIMEOUT
    assert "LLM_STALL_TIMEOUT_SECONDS" in caught.value.message
    assert time.perf_counter() - started < 3
    assert deltas.texts, "what arrived before the stall was streamed"


async def test_the_call_ceiling_stops_a_model_that_writes_forever(wire: WireServer, http_client):
    wire.replies.append(Reply(body=openai_completion("x" * 40, prompt_tokens=5, completion_tokens=40),
                              pieces=40, gap_s=0.05))
    provider = openai(wire, http_client, limits=CallLimits(stall_timeout_s=1.0, call_timeout_s=0.6))

    with pytest.raises(ClassifiedFailure) as caught:
        await provider.complete(PROMPT, model="gpt-4.1-mini", max_tokens=50)

    assert caught.value.failure_type is FailureType.NETWORK_TIMEOUT
    assert "LLM_CALL_TIMEOUT_SECONDS" in caught.value.message
