"""A loopback HTTP server that answers like the Anthropic and OpenAI APIs, scripted per test.

A scripted success body (`anthropic_message`, `openai_completion`) is sent as the API's server-sent
events when the request asks to stream, as both providers always do: Anthropic's `message_start`,
`content_block_delta`s, `message_delta` with the usage, `message_stop`; OpenAI's `chat.completion.chunk`s,
a final usage chunk when `stream_options.include_usage` is set, and `data: [DONE]`.

Tool calls stream as the APIs send them: Anthropic's `tool_use` content blocks (`content_block_start`
with the id and name, the input as `input_json_delta` fragments); OpenAI's `delta.tool_calls` (the id
and name in the first piece of each index, the arguments string in fragments), `finish_reason: tool_calls`.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web


@dataclass
class Reply:
    status: int = 200
    body: object = None  #: JSON-encoded unless `raw` is given
    raw: bytes | None = None
    content_type: str = "application/json"
    headers: dict[str, str] = field(default_factory=dict)
    hang: bool = False  #: never answer (until the server shuts down)
    pieces: int = 3  #: text deltas a streamed answer is split into
    gap_s: float = 0.0  #: pause before each streamed event (a slow model that keeps writing)
    stall_after: int | None = None  #: stop sending (but keep the connection) after this many events
    events: list[bytes] | None = None  #: exact SSE bytes to stream instead of converting `body`


@dataclass
class Recorded:
    path: str
    headers: dict[str, str]
    body: dict[str, Any]


class WireServer:
    def __init__(self) -> None:
        self.replies: list[Reply] = []
        self.requests: list[Recorded] = []
        self.url = ""
        self._release = asyncio.Event()
        self._runner: web.AppRunner | None = None

    def reset(self) -> None:
        self.replies.clear()
        self.requests.clear()

    async def start(self) -> None:
        app = web.Application()
        app.router.add_post("/v1/messages", self._handle)
        app.router.add_post("/v1/chat/completions", self._handle)
        app.router.add_post("/v1/messages/count_tokens", self._handle)
        self._runner = web.AppRunner(app, shutdown_timeout=1.0)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = self._runner.addresses[0][1]
        self.url = f"http://127.0.0.1:{port}"

    async def stop(self) -> None:
        self._release.set()
        if self._runner is not None:
            await self._runner.cleanup()

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        payload = await request.read()
        headers = {name.lower(): value for name, value in request.headers.items()}
        self.requests.append(Recorded(request.path, headers, json.loads(payload or b"{}")))
        reply = self.replies.pop(0) if self.replies else Reply(500, {"error": "no scripted reply"})
        recorded = self.requests[-1].body
        if reply.hang:
            await self._hold()
        if recorded.get("stream") and reply.status < 400 and (reply.events is not None or _streamable(reply.body)):
            events = reply.events if reply.events is not None else sse_events(request.path, reply, recorded)
            return await self._stream(request, reply, events)
        body = reply.raw if reply.raw is not None else json.dumps(reply.body).encode()
        headers = {"Content-Type": reply.content_type, **reply.headers}
        return web.Response(status=reply.status, body=body, headers=headers)

    async def _hold(self) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._release.wait(), timeout=5)

    async def _stream(self, request: web.Request, reply: Reply, events: list[bytes]) -> web.StreamResponse:
        response = web.StreamResponse(status=reply.status, headers={"Content-Type": "text/event-stream",
                                                                     **reply.headers})
        await response.prepare(request)
        for number, event in enumerate(events):
            if reply.stall_after is not None and number >= reply.stall_after:
                await self._hold()
                return response
            if reply.gap_s:
                await asyncio.sleep(reply.gap_s)
            await response.write(event)
        await response.write_eof()
        return response


def _streamable(body: object) -> bool:
    """A whole API answer (a message or a chat completion); anything else is sent as it is."""
    return isinstance(body, dict) and (body.get("type") == "message" or "choices" in body)


def _pieces(text: str, count: int) -> list[str]:
    if not text:
        return []
    size = max(1, -(-len(text) // max(1, count)))
    return [text[i : i + size] for i in range(0, len(text), size)]


def _sse(data: object, event: str | None = None) -> bytes:
    head = f"event: {event}\n" if event else ""
    return f"{head}data: {json.dumps(data)}\n\n".encode()


def sse_events(path: str, reply: Reply, request: dict[str, Any]) -> list[bytes]:
    """The scripted whole answer as the API streams it."""
    body: dict[str, Any] = reply.body  # type: ignore[assignment]
    if path == "/v1/messages":
        return anthropic_events(body, reply.pieces)
    return openai_chunks(body, reply.pieces, include_usage=bool((request.get("stream_options") or {}).get(
        "include_usage")))


def anthropic_events(message: dict[str, Any], pieces: int = 3) -> list[bytes]:
    usage = dict(message.get("usage") or {})
    start = {**message, "content": [], "stop_reason": None, "usage": {**usage, "output_tokens": 1}}
    events = [_sse({"type": "message_start", "message": start}, "message_start")]
    for index, block in enumerate(message.get("content") or []):
        if block.get("type") == "tool_use":
            opening = {**block, "input": {}}
            deltas = [{"type": "input_json_delta", "partial_json": piece}
                      for piece in _pieces(json.dumps(block.get("input") or {}), pieces)]
        else:
            opening = {"type": "text", "text": ""}
            deltas = [{"type": "text_delta", "text": piece} for piece in _pieces(block.get("text", ""), pieces)]
        events.append(_sse({"type": "content_block_start", "index": index, "content_block": opening},
                           "content_block_start"))
        events += [_sse({"type": "content_block_delta", "index": index, "delta": delta}, "content_block_delta")
                   for delta in deltas]
        events.append(_sse({"type": "content_block_stop", "index": index}, "content_block_stop"))
    events += [_sse({"type": "message_delta", "delta": {"stop_reason": message.get("stop_reason"),
                                                        "stop_sequence": None},
                     "usage": {"output_tokens": usage.get("output_tokens", 0)}}, "message_delta"),
               _sse({"type": "message_stop"}, "message_stop")]
    return events


def openai_chunks(completion: dict[str, Any], pieces: int = 3, *, include_usage: bool = True) -> list[bytes]:
    choice = completion["choices"][0]
    message = choice["message"]
    base = {"id": completion["id"], "object": "chat.completion.chunk", "created": completion["created"],
            "model": completion["model"]}

    def chunk(delta: dict[str, Any], finish: str | None = None) -> bytes:
        return _sse({**base, "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}]})

    events = [chunk({"role": "assistant", "content": ""})]
    events += [chunk({"content": piece}) for piece in _pieces(message.get("content") or "", pieces)]
    for index, call in enumerate(message.get("tool_calls") or []):
        function = call["function"]
        arguments = _pieces(function["arguments"], pieces) or [""]
        events.append(chunk({"tool_calls": [{"index": index, "id": call["id"], "type": "function",
                                             "function": {"name": function["name"], "arguments": arguments[0]}}]}))
        events += [chunk({"tool_calls": [{"index": index, "function": {"arguments": piece}}]})
                   for piece in arguments[1:]]
    if message.get("refusal"):
        events.append(chunk({"refusal": message["refusal"]}))
    events.append(chunk({}, choice["finish_reason"]))
    if include_usage and completion.get("usage") is not None:
        events.append(_sse({**base, "choices": [], "usage": completion["usage"]}))
    events.append(b"data: [DONE]\n\n")
    return events


def anthropic_message(
    text: str,
    *,
    input_tokens: int,
    output_tokens: int,
    stop_reason: str = "end_turn",
    model: str = "claude-haiku-4-5-20251001",
) -> dict[str, object]:
    return {
        "id": "msg_01XFDUDYJgAACzvnptvVoYEL",
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": [{"type": "text", "text": text}],
        "stop_reason": stop_reason,
        "stop_sequence": None,
        "usage": {"input_tokens": input_tokens, "output_tokens": output_tokens},
    }


def anthropic_tool_use(calls: list[tuple[str, str, dict[str, Any]]], *, text: str = "", input_tokens: int,
                       output_tokens: int, stop_reason: str = "tool_use") -> dict[str, object]:
    """A message that asks for tools: optional text, then one `tool_use` block per (id, name, input)."""
    message = anthropic_message(text, input_tokens=input_tokens, output_tokens=output_tokens,
                                stop_reason=stop_reason)
    blocks: list[dict[str, Any]] = [{"type": "text", "text": text}] if text else []
    blocks += [{"type": "tool_use", "id": call_id, "name": name, "input": arguments}
               for call_id, name, arguments in calls]
    message["content"] = blocks
    return message


def anthropic_error(kind: str, message: str) -> dict[str, object]:
    return {"type": "error", "error": {"type": kind, "message": message}}


def openai_completion(
    text: str | None,
    *,
    prompt_tokens: int,
    completion_tokens: int,
    finish_reason: str = "stop",
    model: str = "gpt-4.1-mini-2025-04-14",
) -> dict[str, object]:
    return {
        "id": "chatcmpl-B9MBs8CjcvOU2jLn4n570S5qMJKcT",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": text, "refusal": None, "annotations": []},
                "logprobs": None,
                "finish_reason": finish_reason,
            }
        ],
        "usage": {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens,
        },
    }


def openai_tool_calls(calls: list[tuple[str, str, dict[str, Any] | str]], *, text: str | None = None,
                      prompt_tokens: int, completion_tokens: int, finish_reason: str = "tool_calls"
                      ) -> dict[str, object]:
    """A chat completion that asks for tools: one tool call per (id, name, arguments); arguments given as
    a string are sent as they are (to script arguments that are not JSON)."""
    completion = openai_completion(text, prompt_tokens=prompt_tokens, completion_tokens=completion_tokens,
                                   finish_reason=finish_reason)
    message: dict[str, Any] = completion["choices"][0]["message"]  # type: ignore[index]
    message["tool_calls"] = [{"id": call_id, "type": "function", "function": {
        "name": name, "arguments": arguments if isinstance(arguments, str) else json.dumps(arguments)}}
        for call_id, name, arguments in calls]
    return completion


def openai_error(code: str, message: str, kind: str = "invalid_request_error") -> dict[str, object]:
    return {"error": {"message": message, "type": kind, "param": None, "code": code}}
