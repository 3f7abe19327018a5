"""Native tool use on both official SDKs against a server speaking each API's wire format: tools offered
in the vendor's shape, streamed tool calls assembled, the history of calls and results sent back in the
vendor's shape, the final answer still structured, and the worker's tool loop end to end."""

from __future__ import annotations

import json
from typing import Any

import pytest

from shared.agents.llm import (
    CallLimits,
    LLMProvider,
    Message,
    ProviderOutputInvalid,
    ToolCallRequest,
    ToolSpec,
    build_provider,
    supports_tools,
)
from shared.agents.runner import ToolTurn
from shared.agents.schemas import StepOutput, Summary, TaskBrief
from shared.agents.structured import estimate_prompt_tokens
from shared.agents.worker import ToolExchange, ToolResult, execute_step
from shared.domain.costs import PriceTable
from shared.domain.failures import ClassifiedFailure, FailureType
from tests.agents.wire_server import (
    Reply,
    WireServer,
    anthropic_message,
    anthropic_tool_use,
    openai_completion,
    openai_tool_calls,
)

ECHO = ToolSpec("everything.echo", "Echoes back the input",
                {"type": "object", "properties": {"message": {"type": "string"}}, "required": ["message"]})
TIME = ToolSpec("time.get_current_time", "Current time in a timezone",
                {"type": "object", "properties": {"timezone": {"type": "string"}}, "required": ["timezone"]})
PROMPT = [Message("system", "You are a worker."), Message("user", "Say hello to the crew.")]
#: A conversation after one tool round: the assistant's calls and one result each (the second an error).
HISTORY = [
    *PROMPT,
    Message("assistant", "Let me check.", tool_calls=(
        ToolCallRequest("call_1", "everything.echo", {"message": "hello"}),
        ToolCallRequest("call_2", "time.get_current_time", {"timezone": "UTC"}))),
    Message("tool", "Echo: hello", tool_call_id="call_1", name="everything.echo"),
    Message("tool", "[tool error] unknown timezone", tool_call_id="call_2", name="time.get_current_time"),
]
STEP = '{"step_number": 1, "title": "Greeting", "content": "The echo said: Echo: hello", "is_final": false}'
TASK = TaskBrief(title="Greet the crew", description="Say hello", acceptance_criteria=["greeted"])


def anthropic(wire: WireServer, http_client, *, stall: float = 5) -> LLMProvider:
    return build_provider("anthropic", anthropic_api_key="sk-ant-test", anthropic_base_url=wire.url,
                          limits=CallLimits(stall_timeout_s=stall), http_client=http_client)


def openai(wire: WireServer, http_client, *, stall: float = 5, compatible: bool = False) -> LLMProvider:
    return build_provider("openai", openai_api_key="sk-test", openai_base_url=f"{wire.url}/v1",
                          openai_compatible=compatible, prices=PriceTable(),
                          limits=CallLimits(stall_timeout_s=stall), http_client=http_client)


class Deltas:
    def __init__(self) -> None:
        self.texts: list[str] = []

    async def __call__(self, text: str) -> None:
        self.texts.append(text)


def test_the_token_estimate_counts_the_arguments_of_earlier_tool_calls():
    call = ToolCallRequest("call_1", "everything.echo", {"message": "x" * 3000})
    without = estimate_prompt_tokens([*PROMPT, Message("assistant", "")])
    with_call = estimate_prompt_tokens([*PROMPT, Message("assistant", "", tool_calls=(call,))])
    assert with_call - without >= 1000


def test_both_providers_say_they_use_tools(http_client):
    for provider in (build_provider("anthropic", anthropic_api_key="k", http_client=http_client),
                     build_provider("openai", openai_api_key="k", http_client=http_client)):
        assert supports_tools(provider), provider.name


# --- OpenAI: function calling --------------------------------------------------------------------


async def test_openai_offers_functions_and_assembles_streamed_tool_calls(wire: WireServer, http_client):
    wire.replies.append(Reply(body=openai_tool_calls(
        [("call_a", "everything__echo", {"message": "hello crew"}),
         ("call_b", "time__get_current_time", {"timezone": "Europe/Paris"})],
        text="Checking.", prompt_tokens=120, completion_tokens=30), pieces=4))
    deltas = Deltas()

    completion = await openai(wire, http_client).complete(PROMPT, model="gpt-4.1-mini", schema=StepOutput,
                                                          max_tokens=200, tools=[ECHO, TIME], on_delta=deltas)

    assert completion.tool_calls == (
        ToolCallRequest("call_a", "everything.echo", {"message": "hello crew"}),
        ToolCallRequest("call_b", "time.get_current_time", {"timezone": "Europe/Paris"}))
    assert completion.parsed is None and completion.text == "Checking." == "".join(deltas.texts)
    assert (completion.input_tokens, completion.output_tokens) == (120, 30)
    body = wire.requests[0].body
    assert body["tools"] == [
        {"type": "function", "function": {"name": "everything__echo", "description": "Echoes back the input",
                                          "parameters": ECHO.input_schema}},
        {"type": "function", "function": {"name": "time__get_current_time",
                                          "description": "Current time in a timezone",
                                          "parameters": TIME.input_schema}}]
    assert body["response_format"]["type"] == "json_schema", "the final answer stays structured"
    assert body["stream"] is True


async def test_openai_sends_tool_history_as_assistant_tool_calls_and_tool_messages(wire: WireServer, http_client):
    wire.replies.append(Reply(body=openai_completion(STEP, prompt_tokens=300, completion_tokens=40)))

    completion = await openai(wire, http_client).complete(HISTORY, model="gpt-4.1-mini", schema=StepOutput,
                                                          max_tokens=200, tools=[ECHO, TIME])

    assert isinstance(completion.parsed, StepOutput) and completion.parsed.content.endswith("Echo: hello")
    assert completion.tool_calls == ()
    assert wire.requests[0].body["messages"][2:] == [
        {"role": "assistant", "content": "Let me check.", "tool_calls": [
            {"id": "call_1", "type": "function",
             "function": {"name": "everything__echo", "arguments": '{"message": "hello"}'}},
            {"id": "call_2", "type": "function",
             "function": {"name": "time__get_current_time", "arguments": '{"timezone": "UTC"}'}}]},
        {"role": "tool", "tool_call_id": "call_1", "content": "Echo: hello"},
        {"role": "tool", "tool_call_id": "call_2", "content": "[tool error] unknown timezone"},
    ]


async def test_openai_tool_arguments_that_are_not_a_json_object_are_invalid_output_with_the_bill(
    wire: WireServer, http_client
):
    wire.replies.append(Reply(body=openai_tool_calls([("call_a", "everything__echo", '{"message": "hel')],
                                                     prompt_tokens=50, completion_tokens=8, finish_reason="length")))

    with pytest.raises(ProviderOutputInvalid) as caught:
        await openai(wire, http_client).complete(PROMPT, model="gpt-4.1-mini", max_tokens=8, tools=[ECHO])

    assert "cut off at the 8-token limit inside a tool call" in caught.value.message
    assert (caught.value.completion.input_tokens, caught.value.completion.output_tokens) == (50, 8)


async def test_openai_tool_call_of_an_unknown_function_keeps_its_name(wire: WireServer, http_client):
    wire.replies.append(Reply(body=openai_tool_calls([("c", "made_up", "")], prompt_tokens=5, completion_tokens=2)))

    completion = await openai(wire, http_client, compatible=True).complete(
        PROMPT, model="local", max_tokens=20, tools=[ECHO])

    assert completion.tool_calls == (ToolCallRequest("c", "made_up", {}),)


# --- Anthropic: tool use -------------------------------------------------------------------------


async def test_anthropic_offers_tools_and_assembles_streamed_tool_use_blocks(wire: WireServer, http_client):
    wire.replies.append(Reply(body=anthropic_tool_use(
        [("toolu_01", "everything__echo", {"message": "hello crew"}),
         ("toolu_02", "time__get_current_time", {"timezone": "Europe/Paris"})],
        text="Checking.", input_tokens=120, output_tokens=30), pieces=4))
    deltas = Deltas()

    completion = await anthropic(wire, http_client).complete(PROMPT, model="claude-haiku-4-5", schema=StepOutput,
                                                             max_tokens=200, tools=[ECHO, TIME], on_delta=deltas)

    assert completion.tool_calls == (
        ToolCallRequest("toolu_01", "everything.echo", {"message": "hello crew"}),
        ToolCallRequest("toolu_02", "time.get_current_time", {"timezone": "Europe/Paris"}))
    assert completion.parsed is None and completion.text == "Checking." == "".join(deltas.texts)
    assert (completion.input_tokens, completion.output_tokens) == (120, 30)
    body = wire.requests[0].body
    assert body["tools"] == [
        {"name": "everything__echo", "description": "Echoes back the input", "input_schema": ECHO.input_schema},
        {"name": "time__get_current_time", "description": "Current time in a timezone",
         "input_schema": TIME.input_schema}]
    assert "tool_choice" not in body
    assert body["output_config"]["format"]["type"] == "json_schema", "the final answer stays structured"


async def test_anthropic_sends_tool_history_as_tool_use_and_tool_result_blocks(wire: WireServer, http_client):
    wire.replies.append(Reply(body=anthropic_message(STEP, input_tokens=300, output_tokens=40)))
    conversation = [*HISTORY, Message("user", "Now answer.")]

    completion = await anthropic(wire, http_client).complete(conversation, model="claude-haiku-4-5",
                                                             schema=StepOutput, max_tokens=200, tools=[ECHO, TIME])

    assert isinstance(completion.parsed, StepOutput)
    body = wire.requests[0].body
    assert body["system"] == "You are a worker."
    assert body["messages"] == [
        {"role": "user", "content": "Say hello to the crew."},
        {"role": "assistant", "content": [
            {"type": "text", "text": "Let me check."},
            {"type": "tool_use", "id": "call_1", "name": "everything__echo", "input": {"message": "hello"}},
            {"type": "tool_use", "id": "call_2", "name": "time__get_current_time", "input": {"timezone": "UTC"}}]},
        {"role": "user", "content": [  # both results in one user turn, before the text that follows them
            {"type": "tool_result", "tool_use_id": "call_1", "content": "Echo: hello"},
            {"type": "tool_result", "tool_use_id": "call_2", "content": "[tool error] unknown timezone",
             "is_error": True},
            {"type": "text", "text": "Now answer."}]},
    ]


async def test_anthropic_answer_without_tools_after_tool_use_declares_them_with_tool_choice_none(
    wire: WireServer, http_client
):
    wire.replies.append(Reply(body=anthropic_message(STEP, input_tokens=300, output_tokens=40)))
    wire.replies.append(Reply(body={"input_tokens": 321}))
    provider = anthropic(wire, http_client)

    completion = await provider.complete(HISTORY, model="claude-haiku-4-5", schema=StepOutput, max_tokens=200)
    counted = await provider.count_tokens(HISTORY, model="claude-haiku-4-5", schema=StepOutput)

    assert isinstance(completion.parsed, StepOutput) and counted == 321
    for request in wire.requests:  # the API refuses tool_use blocks without tools, in counts too
        assert [t["name"] for t in request.body["tools"]] == ["everything__echo", "time__get_current_time"]
        assert request.body["tool_choice"] == {"type": "none"}
        assert request.body["messages"][1]["content"][1]["type"] == "tool_use"


async def test_anthropic_tool_input_cut_at_max_tokens_is_invalid_output_with_the_bill(
    wire: WireServer, http_client
):
    partial = [b'event: message_start\ndata: {"type": "message_start", "message": {"id": "msg_1", "type": "message",'
               b' "role": "assistant", "model": "claude-haiku-4-5", "content": [], "stop_reason": null,'
               b' "usage": {"input_tokens": 50, "output_tokens": 1}}}\n\n',
               b'event: content_block_start\ndata: {"type": "content_block_start", "index": 0, "content_block":'
               b' {"type": "tool_use", "id": "toolu_1", "name": "everything__echo", "input": {}}}\n\n',
               b'event: content_block_delta\ndata: {"type": "content_block_delta", "index": 0, "delta":'
               b' {"type": "input_json_delta", "partial_json": "{\\"message\\": \\"hel"}}\n\n',
               b'event: message_delta\ndata: {"type": "message_delta", "delta": {"stop_reason": "max_tokens",'
               b' "stop_sequence": null}, "usage": {"output_tokens": 8}}\n\n',
               b'event: message_stop\ndata: {"type": "message_stop"}\n\n']
    wire.replies.append(Reply(body={"stream": "scripted"}, events=partial))

    with pytest.raises(ProviderOutputInvalid) as caught:
        await anthropic(wire, http_client).complete(PROMPT, model="claude-haiku-4-5", max_tokens=8, tools=[ECHO])

    assert "cut off at the 8-token limit inside a tool call" in caught.value.message
    assert (caught.value.completion.input_tokens, caught.value.completion.output_tokens) == (50, 8)


# --- both ------------------------------------------------------------------------------------------


def _tool_reply(api: str, **reply: Any) -> Reply:
    if api == "anthropic":
        return Reply(body=anthropic_tool_use([("toolu_01", "everything__echo", {"message": "Greet the crew"})],
                                             input_tokens=100, output_tokens=20), **reply)
    return Reply(body=openai_tool_calls([("call_01", "everything__echo", {"message": "Greet the crew"})],
                                        prompt_tokens=100, completion_tokens=20), **reply)


def _answer_reply(api: str) -> Reply:
    if api == "anthropic":
        return Reply(body=anthropic_message(STEP, input_tokens=200, output_tokens=40))
    return Reply(body=openai_completion(STEP, prompt_tokens=200, completion_tokens=40))


@pytest.mark.parametrize("api", ["anthropic", "openai"])
async def test_a_worker_step_calls_a_tool_then_answers_with_its_result(api: str, wire: WireServer, http_client):
    provider = anthropic(wire, http_client) if api == "anthropic" else openai(wire, http_client)
    wire.replies += [_tool_reply(api), _answer_reply(api)]
    step: dict[str, Any] = {"goal": "Greet", "task": TASK, "step_number": 1, "previous_steps": [], "feedback": None,
                            "model": "m", "tools": [ECHO]}

    turn = await execute_step(provider, **step)
    assert isinstance(turn, ToolTurn)
    [call] = turn.tool_calls
    assert (call.name, call.arguments) == ("everything.echo", {"message": "Greet the crew"})
    result = await execute_step(provider, **step, tool_turns=[ToolExchange(turn.text, [
        ToolResult(call, "Echo: Greet the crew")])])

    assert not isinstance(result, ToolTurn) and result.value.content == "The echo said: Echo: hello"
    second = json.dumps(wire.requests[1].body["messages"])
    assert call.id in second and "Echo: Greet the crew" in second, "the call and its result went back"


@pytest.mark.parametrize("api", ["anthropic", "openai"])
async def test_a_tool_call_stream_that_stops_sending_is_a_network_timeout(api: str, wire: WireServer, http_client):
    provider = anthropic(wire, http_client, stall=0.4) if api == "anthropic" else openai(wire, http_client, stall=0.4)
    wire.replies.append(_tool_reply(api, stall_after=3))

    with pytest.raises(ClassifiedFailure) as caught:
        await provider.complete(PROMPT, model="m", max_tokens=50, tools=[ECHO])

    assert caught.value.failure_type is FailureType.NETWORK_TIMEOUT
    assert "LLM_STALL_TIMEOUT_SECONDS" in caught.value.message


async def test_openai_prompt_mode_keeps_tools_and_the_schema_in_the_system_message(wire: WireServer, http_client):
    provider = build_provider("openai", openai_base_url=f"{wire.url}/v1", structured_output="prompt",
                              limits=CallLimits(stall_timeout_s=5), http_client=http_client)
    wire.replies.append(Reply(body=openai_completion('{"summary": "ok"}', prompt_tokens=5, completion_tokens=5)))

    completion = await provider.complete(PROMPT, model="local", schema=Summary, max_tokens=50, tools=[ECHO])

    body = wire.requests[0].body
    assert completion.parsed == Summary(summary="ok")
    assert "response_format" not in body and body["tools"][0]["function"]["name"] == "everything__echo"
    assert "JSON Schema" in body["messages"][0]["content"]
