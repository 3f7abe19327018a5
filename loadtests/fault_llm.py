"""An OpenAI-compatible chat server that answers like the offline provider and fails on demand.

`make chaos` points the teams' agents at it (`LLM_PROVIDER=openai`, `OPENAI_BASE_URL`): every
`POST /v1/chat/completions` streams the offline provider's answer for the requested schema, with a
`usage` chunk, as a real compatible server does. Between, it injects faults in bursts: the next N
calls answer 429 (with `Retry-After`), 500, or a stream of garbage (data lines that are not JSON,
no usage). It counts the calls it *served*: a stream with usage written to the end on an open
connection. What the provider served is what the app must have billed, exactly once. Each call's
outcome is also kept by the client's request id (`X-Client-Request-Id`, which the app's OpenAI
provider sets to the call's cost row id), so the chaos run reconciles call by call, not only in sum.

`hold()` keeps new calls waiting before their first byte (a quiet provider), so that the chaos run
can kill the app while calls are in flight without the one window no client can bill exactly: a
stream the provider finished whose client died before it recorded the usage (that call is billed at
its worst case by the abandoned-call sweep, `docs/architecture.md`, "Budget").

Not the e2e `RecordingProxy` (tests/e2e/model_proxy.py): that one forwards to a real model server;
this one is the model, so thousands of calls cost nothing and faults are ours to place.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Literal

from aiohttp import web
from pydantic import BaseModel

from shared.agents.llm import Message
from shared.agents.offline import OfflineProvider
from shared.agents.schemas import MAX_CRITERIA, PlanDraft, ReviewAnswer, StepOutput, Summary, plan_draft_schema
from shared.agents.structured import estimate_tokens

Fault = Literal["429", "500", "garbage"]
Role = Literal["system", "user", "assistant", "tool"]
FAULTS: tuple[Fault, ...] = ("429", "500", "garbage")
MODEL = "chaos-model"

_FIXED: dict[str, type[BaseModel]] = {"StepOutput": StepOutput, "ReviewAnswer": ReviewAnswer, "Summary": Summary}


def schema_for(response_format: dict[str, Any] | None) -> type[BaseModel] | None:
    """The pydantic model the app asked for, from the `response_format` it sent (name and JSON schema).

    The manager's plan is a per-team class named `Plan` (`plan_draft_schema`): rebuilt from the task
    slots and the member count its JSON schema names."""
    if not response_format:
        return None
    spec = response_format.get("json_schema") or {}
    name = str(spec.get("name", ""))
    if name in _FIXED:
        return _FIXED[name]
    if name == "Plan":
        properties = (spec.get("schema") or {}).get("properties") or {}
        slots = sum(1 for key in properties if key.startswith("t") and key[1:].isdigit())
        members = properties.get("members") or {}
        workers = int(members.get("minItems") or 1)
        draft: type[PlanDraft] = plan_draft_schema(workers=workers, max_tasks=max(2, slots), max_criteria=MAX_CRITERIA)
        return draft
    return None


@dataclass
class Figures:
    """What the server saw, by outcome."""

    requests: int = 0
    served: int = 0  #: streams with usage written to the end
    served_prompt_tokens: int = 0
    served_completion_tokens: int = 0
    faults: Counter[str] = field(default_factory=Counter)
    dropped: int = 0  #: the client had gone before the answer could be written (killed while held)
    unanswerable: int = 0  #: a request the offline provider could not answer (a bug of this server)
    #: By the client's request id: ("served", prompt tokens, completion tokens), or the fault, or
    #: "dropped" / "unanswerable". A request without the header is kept as "anonymous-N".
    calls: dict[str, tuple[str, int, int]] = field(default_factory=dict)


@dataclass
class FaultyLLM:
    """The server; `start()`, then `burst()` / `hold()` / `release()` while teams run, then `stop()`."""

    latency_seconds: float = 0.02
    retry_after_seconds: int = 1
    figures: Figures = field(default_factory=Figures)
    url: str = ""
    _pending: list[Fault] = field(default_factory=list)
    _open: asyncio.Event = field(default_factory=asyncio.Event)
    _held: int = 0
    _in_flight: int = 0
    _ids: itertools.count[int] = field(default_factory=itertools.count)
    _runner: web.AppRunner | None = None

    @property
    def held(self) -> int:
        """Calls waiting at the gate now."""
        return self._held

    @property
    def in_flight(self) -> int:
        """Calls past the gate whose answer is being written."""
        return self._in_flight

    async def start(self, port: int = 0) -> FaultyLLM:
        self._open.set()
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_post("/v1/chat/completions", self._chat)
        self._runner = web.AppRunner(app, shutdown_timeout=1.0)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", port)
        await site.start()
        self.url = f"http://127.0.0.1:{self._runner.addresses[0][1]}/v1"
        return self

    async def stop(self) -> None:
        self._open.set()
        if self._runner is not None:
            await self._runner.cleanup()

    def burst(self, fault: Fault, calls: int) -> None:
        """The next `calls` requests answer with `fault` (after any burst already queued)."""
        self._pending += [fault] * calls

    def hold(self) -> None:
        self._open.clear()

    def release(self) -> None:
        self._open.set()

    async def _chat(self, request: web.Request) -> web.StreamResponse:
        self.figures.requests += 1
        request_id = request.headers.get("X-Client-Request-Id") or f"anonymous-{self.figures.requests}"
        body = json.loads(await request.read())
        self._held += 1
        try:
            await self._open.wait()
        finally:
            self._held -= 1
        if request.transport is None or request.transport.is_closing():
            self.figures.dropped += 1
            self.figures.calls[request_id] = ("dropped", 0, 0)
            raise web.HTTPServiceUnavailable(text="client gone")
        if self._pending:
            fault = self._pending.pop(0)
            self.figures.faults[fault] += 1
            self.figures.calls[request_id] = (fault, 0, 0)
            return await self._fault(request, fault)
        self._in_flight += 1
        try:
            return await self._answer(request, body, request_id)
        finally:
            self._in_flight -= 1

    async def _fault(self, request: web.Request, fault: Fault) -> web.StreamResponse:
        if fault == "429":
            return web.json_response({"error": {"message": "rate limited (chaos)", "type": "rate_limit_error"}},
                                     status=429, headers={"Retry-After": str(self.retry_after_seconds)})
        if fault == "500":
            return web.json_response({"error": {"message": "internal error (chaos)", "type": "server_error"}},
                                     status=500)
        response = web.StreamResponse(status=200, headers={"Content-Type": "text/event-stream"})
        await response.prepare(request)
        await response.write(b"data: {\"id\": \"chatcmpl-garbage\", \"choices\": [{\"delta\": {\"content\n\n")
        await response.write(b"data: \x00\xff not json at all }}\n\n")
        await response.write_eof()
        return response

    async def _answer(self, request: web.Request, body: dict[str, Any], request_id: str) -> web.StreamResponse:
        messages = [Message(_role(m.get("role")), str(m.get("content", ""))) for m in body.get("messages", [])]
        max_tokens = int(body.get("max_tokens") or 1024)
        schema = schema_for(body.get("response_format"))
        try:
            completion = await OfflineProvider().complete(messages, model=MODEL, schema=schema, max_tokens=max_tokens)
            text = completion.text
        except Exception as exc:  # reported in the figures, answered as a server error
            self.figures.unanswerable += 1
            self.figures.calls[request_id] = ("unanswerable", 0, 0)
            return web.json_response({"error": {"message": f"chaos server cannot answer: {exc}"}}, status=500)
        prompt_tokens = sum(estimate_tokens(m.content) for m in messages)
        completion_tokens = min(max_tokens, estimate_tokens(text))
        call_id = f"chatcmpl-chaos-{next(self._ids)}"
        response = web.StreamResponse(status=200, headers={"Content-Type": "text/event-stream"})
        await response.prepare(request)
        await asyncio.sleep(self.latency_seconds)
        size = max(1, -(-len(text) // 4))
        created = int(time.time())
        for start in range(0, len(text), size):
            await response.write(_event(call_id, created, [{"index": 0, "delta": {"content": text[start:start + size]},
                                                             "finish_reason": None}]))
        await response.write(_event(call_id, created, [{"index": 0, "delta": {}, "finish_reason": "stop"}]))
        usage = {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
                 "total_tokens": prompt_tokens + completion_tokens}
        await response.write(_event(call_id, created, [], usage=usage))
        await response.write(b"data: [DONE]\n\n")
        await response.write_eof()
        # Written to the end on an open connection: the provider served (and would bill) this call.
        self.figures.served += 1
        self.figures.served_prompt_tokens += prompt_tokens
        self.figures.served_completion_tokens += completion_tokens
        self.figures.calls[request_id] = ("served", prompt_tokens, completion_tokens)
        return response


def _role(value: object) -> Role:
    return value if value in ("system", "user", "assistant", "tool") else "user"  # type: ignore[return-value]


def _event(call_id: str, created: int, choices: list[dict[str, Any]], usage: dict[str, int] | None = None) -> bytes:
    chunk: dict[str, Any] = {"id": call_id, "object": "chat.completion.chunk", "created": created, "model": MODEL,
                             "choices": choices}
    if usage is not None:
        chunk["usage"] = usage
    return b"data: " + json.dumps(chunk).encode() + b"\n\n"
