"""The clock of a streamed LLM call: a progress timeout per event and a ceiling for the whole call.

A slow model that keeps writing is never cut off by the stall timeout (it restarts with every event);
a server that stops sending is, after `stall_timeout_s`; nothing runs past `call_timeout_s`.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable
from typing import TypeVar

from shared.agents.llm import CallLimits
from shared.domain.failures import ClassifiedFailure, FailureType

T = TypeVar("T")


class StreamClock:
    def __init__(self, limits: CallLimits, provider: str) -> None:
        self.limits = limits
        self.provider = provider
        self._deadline = asyncio.get_running_loop().time() + limits.call_timeout_s

    async def step(self, awaitable: Awaitable[T]) -> T:
        """Await the next piece of progress (the response headers, or one stream event)."""
        remaining = self._deadline - asyncio.get_running_loop().time()
        stall = self.limits.stall_timeout_s
        try:
            async with asyncio.timeout(max(0.0, min(stall, remaining))):
                return await awaitable
        except TimeoutError:
            if remaining <= stall:
                raise ClassifiedFailure(
                    FailureType.NETWORK_TIMEOUT,
                    f"{self.provider}: the call ran past its {self.limits.call_timeout_s:g}s ceiling "
                    "(LLM_CALL_TIMEOUT_SECONDS)",
                ) from None
            raise ClassifiedFailure(
                FailureType.NETWORK_TIMEOUT,
                f"{self.provider}: no progress for {stall:g}s (LLM_STALL_TIMEOUT_SECONDS)",
            ) from None

    async def events(self, stream: AsyncIterator[T]) -> AsyncIterator[T]:
        """The stream's events, each within the stall timeout and all within the ceiling."""
        while True:
            try:
                event = await self.step(anext(stream))
            except StopAsyncIteration:
                return
            yield event
