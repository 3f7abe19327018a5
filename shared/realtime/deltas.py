"""Live model output: `llm.delta` messages to `team_<id>` while an LLM call streams (API.md).

Not stored and without `seq`: a client that misses some loses nothing that is stored, since the
seq'd `message.created` / `checkpoint.created` replaces the streamed text. Per call (`call_id`) the
text is coalesced to at most one message every `interval_s` (0.1 s: ~10 a second), `index` counting
from 0. The first piece goes out at once, so a watcher sees the model start without waiting a tick.
The call's last message has `"final": true` (an extension of API.md's shape), so a client knows that
the call ended and that its stored result, not a next call, is what comes for that task.
Sends go through the same service client as the outbox publisher; a failed send is dropped (the
outbox, not this, is what guarantees delivery).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any
from uuid import UUID

from azure.core.exceptions import AzureError
from azure.messaging.webpubsubservice.aio import WebPubSubServiceClient

from shared.domain.ids import uuid7
from shared.realtime.service import team_group

__all__ = ["DELTA_INTERVAL_S", "DeltaCall", "DeltaPublisher", "LiveAgent"]

log = logging.getLogger(__name__)

DELTA_INTERVAL_S = 0.1


class DeltaCall:
    """The deltas of one LLM call: `await call(text)` for each piece, `await call.aclose()` at the end."""

    def __init__(self, client: WebPubSubServiceClient, *, team_id: UUID, task_id: UUID | None,
                 member_id: UUID | None, interval_s: float = DELTA_INTERVAL_S) -> None:
        self.client = client
        self.group = team_group(team_id)
        self.call_id = str(uuid7())
        self.interval_s = interval_s
        self.sent = 0  #: messages sent (the next `index`)
        self._base: dict[str, Any] = {
            "type": "llm.delta", "team_id": str(team_id), "task_id": str(task_id) if task_id else None,
            "member_id": str(member_id) if member_id else None, "call_id": self.call_id,
        }
        self._buffer: list[str] = []
        self._last_send = float("-inf")
        self._flusher: asyncio.Task[None] | None = None
        self._wake = asyncio.Event()
        self._closing = False
        self._final_sent = False

    async def __call__(self, text: str) -> None:
        """Queue a piece of text; never waits for the network."""
        if not text:
            return
        self._buffer.append(text)
        if self._flusher is None:
            self._flusher = asyncio.get_running_loop().create_task(self._flush_loop(), name=f"delta:{self.call_id}")

    async def _flush_loop(self) -> None:
        loop = asyncio.get_running_loop()
        try:
            while self._buffer:
                wait = self._last_send + self.interval_s - loop.time()
                if wait > 0 and not self._wake.is_set():
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(self._wake.wait(), wait)
                await self._send_buffer(final=self._closing)
        finally:
            self._flusher = None

    async def _send_buffer(self, *, final: bool = False) -> None:
        text = "".join(self._buffer)
        self._buffer.clear()
        message = {**self._base, "index": self.sent, "text": text}
        if final:
            message["final"] = True
            self._final_sent = True
        self.sent += 1
        self._last_send = asyncio.get_running_loop().time()
        try:
            await self.client.send_to_group(self.group, message, content_type="application/json")
        except (AzureError, OSError, TimeoutError) as exc:
            log.debug("llm.delta %s #%d not sent: %s", self.call_id, message["index"], exc)

    async def aclose(self) -> None:
        """Send what is still buffered now (not after the interval), marked final, and wait for it to go out."""
        if self._closing:
            return
        self._closing = True
        self._wake.set()
        flusher = self._flusher
        if flusher is not None:
            await asyncio.shield(flusher)
        if not self._final_sent and (self._buffer or self.sent):  # a call that wrote nothing sends nothing
            await self._send_buffer(final=True)


class LiveAgent:
    """One agent's live output in a team (and task): a `DeltaCall` per LLM call (shared.agents `LiveOutput`)."""

    def __init__(self, client: WebPubSubServiceClient, *, team_id: UUID, task_id: UUID | None,
                 member_id: UUID | None, interval_s: float) -> None:
        self.client, self.team_id, self.task_id, self.member_id = client, team_id, task_id, member_id
        self.interval_s = interval_s

    def open_call(self) -> DeltaCall:
        return DeltaCall(self.client, team_id=self.team_id, task_id=self.task_id, member_id=self.member_id,
                         interval_s=self.interval_s)


class DeltaPublisher:
    """Builds the live output of agents, sharing the process's Web PubSub service client."""

    def __init__(self, client: WebPubSubServiceClient, *, interval_s: float = DELTA_INTERVAL_S) -> None:
        self.client = client
        self.interval_s = interval_s

    def live(self, team_id: UUID, task_id: UUID | None, member_id: UUID | None) -> LiveAgent:
        return LiveAgent(self.client, team_id=team_id, task_id=task_id, member_id=member_id,
                         interval_s=self.interval_s)
