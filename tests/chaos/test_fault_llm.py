"""The chaos run's model server, through the app's own OpenAI provider: it answers the agents'
schemas as a compatible server does, its faults reach the app as the failures they stand for, and
it counts as served exactly the calls whose answer, with usage, it wrote to the end."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx2
import pytest

from loadtests.fault_llm import MODEL, FaultyLLM
from shared.agents.llm import CALL_ID
from shared.agents.manager import plan_goal
from shared.agents.openai_provider import OpenAIProvider
from shared.domain.failures import ClassifiedFailure, FailureType


@pytest.fixture
async def llm() -> AsyncIterator[FaultyLLM]:
    server = await FaultyLLM(latency_seconds=0).start()
    yield server
    await server.stop()


@pytest.fixture
async def provider(llm: FaultyLLM) -> AsyncIterator[OpenAIProvider]:
    async with httpx2.AsyncClient() as client:
        yield OpenAIProvider(api_key=None, base_url=llm.url, compatible=True, http_client=client)


async def test_a_plan_of_the_agents_own_schema_is_served_with_usage_and_counted(llm: FaultyLLM,
                                                                                 provider: OpenAIProvider) -> None:
    result = await plan_goal(provider, goal="Write a field guide to outages", workers=2, model=MODEL,
                             max_tasks=3)

    assert 2 <= len(result.value.tasks) <= 3 and len(result.value.members) == 2
    (completion,) = result.completions
    assert llm.figures.served == 1
    assert (completion.input_tokens, completion.output_tokens) == (llm.figures.served_prompt_tokens,
                                                                   llm.figures.served_completion_tokens)


@pytest.mark.parametrize(("fault", "failure"), [("429", FailureType.RATE_LIMITED),
                                                ("500", FailureType.PROVIDER_UNAVAILABLE),
                                                ("garbage", FailureType.PROVIDER_UNAVAILABLE)])
async def test_a_burst_fails_that_many_calls_as_its_failure_and_none_is_served(
        llm: FaultyLLM, provider: OpenAIProvider, fault: str, failure: FailureType) -> None:
    llm.burst(fault, 2)  # type: ignore[arg-type]
    for _ in range(2):
        with pytest.raises(ClassifiedFailure) as raised:
            await plan_goal(provider, goal="Outages", workers=1, model=MODEL, max_tasks=2)
        assert raised.value.failure_type == failure
        if fault == "429":
            assert raised.value.retry_after == llm.retry_after_seconds
    assert (llm.figures.faults[fault], llm.figures.served) == (2, 0)

    await plan_goal(provider, goal="Outages", workers=1, model=MODEL, max_tasks=2)  # the burst is over
    assert llm.figures.served == 1


async def test_each_call_is_known_by_the_request_id_the_metering_gave_it(llm: FaultyLLM,
                                                                         provider: OpenAIProvider) -> None:
    """The app's OpenAI provider sends the call's cost-row id as `X-Client-Request-Id`: the server's
    record of each call can be matched to its cost row one by one."""
    llm.burst("500", 1)
    outcomes = {}
    for call_id in ("0190-failed", "0190-served"):
        token = CALL_ID.set(call_id)
        try:
            outcomes[call_id] = await plan_goal(provider, goal="Outages", workers=1, model=MODEL, max_tasks=2)
        except ClassifiedFailure:
            outcomes[call_id] = None
        finally:
            CALL_ID.reset(token)
    served = outcomes["0190-served"]
    assert outcomes["0190-failed"] is None and served is not None
    (completion,) = served.completions
    assert llm.figures.calls == {"0190-failed": ("500", 0, 0),
                                 "0190-served": ("served", completion.input_tokens, completion.output_tokens)}
