"""The OpenAI provider's tool path on a real server: llama.cpp (xllamacpp, `--jinja`) serving SmolLM2-135M
with a chat template that has tools (devhost/smollm2_tools.jinja), recorded on the wire by a proxy.

What is under test is the wire, not the model's judgement: the tools go out as OpenAI functions,
llama.cpp parses the model's `<tool_call>` into streamed `delta.tool_calls`, the provider assembles
them into a call, the call and its result go back as an assistant `tool_calls` message and a
`role: "tool"` message, and the final answer is json_schema structured output.

No `tool_choice` forcing: llama.cpp accepts only "auto" / "none" / "required" (not a named function),
and "required" still lets content come first, which the tiny model fills with prose until
`max_tokens`. One worked example of a call in the conversation (a few-shot turn) makes it call on
its own; the server's fixed seed makes that reproducible. Given a `response_format` beside the
tools, llama.cpp lets the model choose between schema JSON and a call, and the tiny model always
writes the JSON, so the first request here has no schema (the worker's first step sends both:
on this model it answers without tools, which tests/e2e/test_real_model.py covers).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator

import httpx2
import pytest
from pydantic import BaseModel, Field

from devhost.local_model import MODEL_NAME, LocalModel
from shared.agents.llm import CallLimits, Message, ToolCallRequest, ToolSpec, build_provider
from shared.domain.costs import PriceTable
from tests.e2e.model_proxy import RecordingProxy

pytestmark = pytest.mark.slow

ECHO = ToolSpec("everything.echo", "Echoes back the input",
                {"type": "object", "properties": {"message": {"type": "string"}}, "required": ["message"]})
#: A worked example first (a call of the tool and its result), then the request.
CONVERSATION = [
    Message("system", "For every request, reply only with a <tool_call>."),
    Message("user", "Echo the word hello."),
    Message("assistant", "", tool_calls=(ToolCallRequest("call_1", ECHO.name, {"message": "hello"}),)),
    Message("tool", "Echo: hello", tool_call_id="call_1", name=ECHO.name),
    Message("user", "Echo the word ahoy."),
]


class Answer(BaseModel):
    answer: str = Field(max_length=40)


@pytest.fixture(scope="module")
async def tool_model(tmp_path_factory) -> AsyncIterator[RecordingProxy]:
    model = LocalModel(tools=True, log=tmp_path_factory.mktemp("local-model") / "server.log")
    await asyncio.to_thread(model.start)
    proxy = await RecordingProxy(model.url).start()
    yield proxy
    await proxy.stop()
    await asyncio.to_thread(model.stop)


@pytest.fixture
async def http_client() -> AsyncIterator[httpx2.AsyncClient]:
    async with httpx2.AsyncClient() as client:
        yield client


async def test_a_real_llama_cpp_server_calls_a_tool_gets_its_result_and_answers(tool_model: RecordingProxy,
                                                                                 http_client: httpx2.AsyncClient):
    provider = build_provider("openai", openai_base_url=f"{tool_model.url}/v1", prices=PriceTable(),
                              limits=CallLimits(stall_timeout_s=180, call_timeout_s=600), http_client=http_client)

    asked = await provider.complete(CONVERSATION, model=MODEL_NAME, max_tokens=48, tools=[ECHO])

    [call] = asked.tool_calls
    assert call.name == "everything.echo", "the wire name maps back to the app's tool name"
    assert isinstance(call.arguments.get("message"), str) and call.id
    first = tool_model.exchanges[0]
    assert first.request["stream"] is True
    assert first.request["tools"] == [{"type": "function", "function": {
        "name": "everything__echo", "description": ECHO.description, "parameters": ECHO.input_schema}}]
    assert first.finish_reason == "tool_calls" and first.tool_call_deltas, "llama.cpp streamed the call"
    assert first.usage and (asked.input_tokens, asked.output_tokens) == (
        first.usage["prompt_tokens"], first.usage["completion_tokens"])

    result = f"Echo: {call.arguments['message']}"
    answered = await provider.complete(
        [*CONVERSATION, Message("assistant", asked.text, tool_calls=asked.tool_calls),
         Message("tool", result, tool_call_id=call.id, name=call.name),
         Message("user", "What did the tool answer?")],
        model=MODEL_NAME, schema=Answer, max_tokens=24)

    assert isinstance(answered.parsed, Answer) and not answered.tool_calls
    second = tool_model.exchanges[1]
    assert second.request["response_format"]["type"] == "json_schema"
    messages = second.request["messages"]
    [turn] = [m for m in messages if m.get("tool_calls") and m["tool_calls"][0]["id"] == call.id]
    assert turn["role"] == "assistant" and turn["tool_calls"] == [{"id": call.id, "type": "function", "function": {
        "name": "everything__echo", "arguments": json.dumps(call.arguments)}}]
    assert messages[messages.index(turn) + 1] == {"role": "tool", "tool_call_id": call.id, "content": result}
