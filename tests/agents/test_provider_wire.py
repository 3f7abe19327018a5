"""The official SDKs against a local server speaking each API's wire format: success and every failure."""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal

import httpx2
import pytest

from shared.agents.llm import CallLimits, LLMProvider, Message, ProviderOutputInvalid, build_provider
from shared.agents.schemas import Summary
from shared.domain.costs import compute_cost
from shared.domain.failures import ClassifiedFailure, FailureType
from tests.agents.wire_server import (
    Reply,
    WireServer,
    anthropic_error,
    anthropic_message,
    openai_completion,
    openai_error,
)


@dataclass(frozen=True)
class Case:
    name: str
    path: str
    build: Callable[[str, float, httpx2.AsyncClient], LLMProvider]
    ok: Callable[[str, int, int], object]
    error: Callable[[str, str], object]
    model: str
    expected_cost: Decimal  #: of 1000 input + 200 output tokens at the served model's price


CASES = [
    Case(
        name="anthropic",
        path="/v1/messages",
        build=lambda url, timeout, client: build_provider(
            "anthropic",
            anthropic_api_key="sk-ant-test",
            anthropic_base_url=url,
            limits=CallLimits(stall_timeout_s=timeout, connect_timeout_s=timeout),
            http_client=client,
        ),
        ok=lambda text, i, o: anthropic_message(text, input_tokens=i, output_tokens=o),
        error=anthropic_error,
        model="claude-haiku-4-5-20251001",
        expected_cost=Decimal("0.00200000"),  # 1000 × $1/M + 200 × $5/M
    ),
    Case(
        name="openai",
        path="/v1/chat/completions",
        build=lambda url, timeout, client: build_provider(
            "openai",
            openai_api_key="sk-test",
            openai_base_url=f"{url}/v1",
            openai_compatible=False,  # OpenAI's own API (at a test URL): official prices
            limits=CallLimits(stall_timeout_s=timeout, connect_timeout_s=timeout),
            http_client=client,
        ),
        ok=lambda text, i, o: openai_completion(text, prompt_tokens=i, completion_tokens=o),
        error=lambda kind, message: openai_error(kind, message),
        model="gpt-4.1-mini-2025-04-14",
        expected_cost=Decimal("0.00072000"),  # 1000 × $0.40/M + 200 × $1.60/M
    ),
]
PROMPT = [Message("system", "You summarize."), Message("user", "Summarize the voyage.")]


@pytest.fixture(params=CASES, ids=lambda case: case.name)
def case(request: pytest.FixtureRequest) -> Case:
    return request.param  # type: ignore[no-any-return]


async def _failure(provider: LLMProvider, schema: type[Summary] | None = None) -> ClassifiedFailure:
    with pytest.raises(ClassifiedFailure) as caught:
        await provider.complete(PROMPT, model="some-model", schema=schema, max_tokens=100)
    return caught.value


async def test_success_reports_tokens_model_and_cost(case: Case, wire: WireServer, http_client):
    wire.replies.append(Reply(body=case.ok("Fair winds all the way.", 1000, 200)))
    provider = case.build(wire.url, 5.0, http_client)

    completion = await provider.complete(PROMPT, model="requested-model", max_tokens=300)

    assert completion.text == "Fair winds all the way."
    assert (completion.input_tokens, completion.output_tokens) == (1000, 200)
    assert completion.model == case.model and completion.provider == case.name
    assert completion.cost_usd == case.expected_cost == compute_cost(case.model, 1000, 200)
    assert completion.latency_ms > 0
    assert [r.path for r in wire.requests] == [case.path]
    assert wire.requests[0].body["model"] == "requested-model"
    assert wire.requests[0].body["stream"] is True and wire.requests[0].body["max_tokens"] == 300


async def test_schema_is_requested_natively_and_the_answer_parsed(case: Case, wire: WireServer, http_client):
    answer = '{"summary": "Treasure found.", "highlights": ["map"], "follow_ups": []}'
    wire.replies.append(Reply(body=case.ok(answer, 50, 20)))
    provider = case.build(wire.url, 5.0, http_client)

    completion = await provider.complete(PROMPT, model="m", schema=Summary, max_tokens=200)

    assert completion.parsed == Summary(summary="Treasure found.", highlights=["map"], follow_ups=[])
    body = wire.requests[0].body
    schema = (body["response_format"]["json_schema"]["schema"] if case.name == "openai"
              else body["output_config"]["format"]["schema"])
    assert set(schema["properties"]) == {"summary", "highlights", "follow_ups"}
    assert schema["additionalProperties"] is False
    assert "JSON Schema" not in json.dumps(body.get("messages")) + str(body.get("system", "")), (
        "the schema, not a paragraph of prompt, asks for the JSON")


async def test_answer_not_matching_schema_is_invalid_output_that_still_carries_the_bill(
    case: Case, wire: WireServer, http_client
):
    wire.replies.append(Reply(body=case.ok('{"highlights": "not a list"}', 70, 9)))
    provider = case.build(wire.url, 5.0, http_client)

    with pytest.raises(ProviderOutputInvalid) as caught:
        await provider.complete(PROMPT, model="m", schema=Summary, max_tokens=100)

    assert caught.value.failure_type is FailureType.INVALID_OUTPUT
    assert "summary: Field required" in caught.value.message
    assert (caught.value.completion.input_tokens, caught.value.completion.output_tokens) == (70, 9)


async def test_429_is_rate_limited_with_retry_after_from_the_header(
    case: Case, wire: WireServer, http_client
):
    wire.replies.append(
        Reply(
            429, case.error("rate_limit_error", "Number of requests exceeded"), headers={"retry-after": "7"}
        )
    )
    failure = await _failure(case.build(wire.url, 5.0, http_client))

    assert failure.failure_type is FailureType.RATE_LIMITED
    assert failure.retry_after == 7.0
    assert len(wire.requests) == 1, "the SDK must not retry on its own"


@pytest.mark.parametrize("status", [500, 502, 503, 529])
async def test_server_errors_and_overload_are_provider_unavailable(
    case: Case, wire: WireServer, http_client, status: int
):
    wire.replies.append(Reply(status, case.error("overloaded_error", "Overloaded")))
    failure = await _failure(case.build(wire.url, 5.0, http_client))

    assert failure.failure_type is FailureType.PROVIDER_UNAVAILABLE
    assert str(status) in failure.message
    assert len(wire.requests) == 1, "the SDK must not retry on its own"


@pytest.mark.parametrize("status", [401, 403])
async def test_rejected_credentials_are_auth_failed(case: Case, wire: WireServer, http_client, status: int):
    wire.replies.append(Reply(status, case.error("authentication_error", "invalid x-api-key")))
    failure = await _failure(case.build(wire.url, 5.0, http_client))

    assert failure.failure_type is FailureType.AUTH_FAILED


async def test_a_server_that_never_answers_is_a_network_timeout(case: Case, wire: WireServer, http_client):
    wire.replies.append(Reply(hang=True))
    started = time.perf_counter()
    failure = await _failure(case.build(wire.url, 0.3, http_client))

    assert failure.failure_type is FailureType.NETWORK_TIMEOUT
    assert time.perf_counter() - started < 3, "the short timeout was honoured, with no SDK retries"


async def test_nothing_listening_is_a_network_timeout(case: Case, http_client):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    failure = await _failure(case.build(f"http://127.0.0.1:{port}", 2.0, http_client))

    assert failure.failure_type is FailureType.NETWORK_TIMEOUT


@pytest.mark.parametrize(
    "reply",
    [
        Reply(raw=b'{"id": "msg_01", "content": [{"type": "te'),
        Reply(raw=b"<html><body>502 Bad Gateway</body></html>", content_type="text/html"),
        Reply(body={"unexpected": "shape"}),
    ],
    ids=["truncated-json", "html-from-a-proxy", "json-without-the-api-fields"],
)
async def test_a_garbage_http_body_is_provider_unavailable(
    case: Case, wire: WireServer, http_client, reply: Reply
):
    wire.replies.append(reply)
    failure = await _failure(case.build(wire.url, 5.0, http_client), schema=Summary)

    assert failure.failure_type is FailureType.PROVIDER_UNAVAILABLE
    assert "unreadable body" in failure.message
