"""The hard budget cap at the one place every LLM call passes: a provider wrapper that reserves the
call's worst case before making it and bills the real usage after (`CostTracker`).

A call whose worst case does not fit what is left of the budget is not made: `BudgetExhausted`
(`budget_exceeded`) is raised instead and the team pauses with its budget escalation.

With `defer_settlement` (every step of a team run) the usages of the calls made are kept, and the
step settles them in its own transaction (`commit`), beside its checkpoint, message and task state:
a crash leaves either the step with its cost or neither (then the reservation stays until the sweep
bills it at its worst case, as for a call cut off mid-way). A step that ends without committing
settles what it used at once (`settle_leftovers`, in its `finally`). The cap stays exact: the
reservation is made before the call and held until the settlement replaces it.

A step whose commit failed because the database went away (a restart, a failover) still bills the
calls it made exactly: `settle_leftovers` (and `release`, for a call answered with an error) keep
trying for `SETTLE_PATIENCE_SECONDS` while the database is unreachable. Only after that does the
reservation stay for the sweep. Settling twice is harmless (a settled call is left alone), so a
commit whose acknowledgement was lost cannot bill a call twice.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TypeVar
from uuid import UUID

from pydantic import BaseModel

from shared.agents.llm import CALL_ID, Completion, LLMProvider, Message, ProviderOutputInvalid
from shared.agents.structured import schema_json
from shared.db.database import Database, Tx
from shared.domain.costs import OFFICIAL, PriceTable, input_token_bound, worst_case_cost
from shared.domain.errors import DependencyDown
from shared.domain.models import Actor
from shared.failpoints import crash_point
from shared.services.costs import CallUsage, CostTracker

log = logging.getLogger(__name__)
T = TypeVar("T")

#: A reservation outlives the longest a call may take by this much before the sweep bills it.
RESERVATION_MARGIN_SECONDS = 60.0
#: How long a call's settlement (or release) keeps trying while the database is unreachable.
SETTLE_PATIENCE_SECONDS = 30.0


async def patiently(action: Callable[[], Awaitable[None]], *, patience_seconds: float = SETTLE_PATIENCE_SECONDS,
                    what: str = "settle an LLM call") -> None:
    """`action`, tried again (backing off to 2 s) while the database is unreachable, for at most
    `patience_seconds`; after that the DependencyDown propagates."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + patience_seconds
    pause = 0.1
    while True:
        try:
            await action()
            return
        except DependencyDown:
            if loop.time() + pause > deadline:
                log.warning("could not %s for %.0f s: the database is not reachable; the sweep will bill the "
                            "reservation at its worst case", what, patience_seconds)
                raise
            log.info("could not %s: the database is not reachable; trying again in %.1f s", what, pause)
            await asyncio.sleep(pause)
            pause = min(2.0, pause * 2)


@dataclass(frozen=True)
class CallScope:
    """Whom a call is billed to."""

    team_id: UUID
    purpose: str
    actor: Actor
    task_id: UUID | None = None
    member_id: UUID | None = None


class MeteredProvider:
    """`LLMProvider` around another one: reserve, call, settle (or release when nothing was served)."""

    def __init__(self, inner: LLMProvider, costs: CostTracker, scope: CallScope, *,
                 call_timeout_seconds: float = 600.0, defer_settlement: bool = False) -> None:
        self.inner = inner
        self.name = inner.name
        self.costs = costs
        self.scope = scope
        self.ttl_seconds = call_timeout_seconds + RESERVATION_MARGIN_SECONDS
        self.calls: list[UUID] = []  #: call ids, in order (tests and logs)
        self.supports_tools = bool(getattr(inner, "supports_tools", False))
        #: The inner provider's prices (a compatible server's models are priced by settings).
        self.prices: PriceTable = getattr(inner, "prices", OFFICIAL)
        self.defer_settlement = defer_settlement
        #: Calls answered and not settled yet (with `defer_settlement`), in order.
        self.unsettled: list[tuple[UUID, CallUsage]] = []

    async def count_tokens(self, messages: list[Message], *, model: str, schema: type[BaseModel] | None = None) -> int:
        """Not a call: counted by the inner provider, nothing reserved."""
        return await self.inner.count_tokens(messages, model=model, schema=schema)

    async def complete(self, messages: list[Message], *, model: str, schema: type[BaseModel] | None = None,
                       max_tokens: int = 2048, temperature: float = 0.2, **kwargs: Any) -> Completion:
        texts = [m.content for m in messages]
        if schema is not None:
            texts.append(schema_json(schema, compact=False))
        for tool in kwargs.get("tools") or ():  # the tool definitions travel in the request too
            texts.append(f"{tool.name} {tool.description} {json.dumps(tool.input_schema)}")
        texts += [json.dumps(call.arguments) for m in messages for call in m.tool_calls]
        bound = input_token_bound(texts, messages=len(messages))
        scope = self.scope
        call_id = await self.costs.reserve(
            team_id=scope.team_id, task_id=scope.task_id, member_id=scope.member_id, provider=self.inner.name,
            model=model, purpose=scope.purpose, input_tokens=bound, max_tokens=max_tokens,
            worst_case_usd=worst_case_cost(model, bound, max_tokens, prices=self.prices), ttl_seconds=self.ttl_seconds,
        )
        self.calls.append(call_id)
        crash_point("llm.reserved")
        token = CALL_ID.set(str(call_id))
        try:
            completion = await self.inner.complete(messages, model=model, schema=schema, max_tokens=max_tokens,
                                                   temperature=temperature, **kwargs)
        except ProviderOutputInvalid as exc:  # answered (with usage), just not with what was asked
            await self._settle(call_id, exc.completion)
            raise
        except asyncio.CancelledError:
            # The process is giving up on the call (shutdown, abandoned activity): the provider may
            # still serve it, so the reservation stays until the sweep bills it at its worst case.
            raise
        except Exception:
            # An error answer carries no usage: nothing to bill.
            await patiently(lambda: self.costs.release(call_id), what="release an LLM call's reservation")
            raise
        finally:
            CALL_ID.reset(token)
        crash_point("llm.returned")
        await self._settle(call_id, completion)
        return completion

    async def _settle(self, call_id: UUID, completion: Completion) -> None:
        usage = CallUsage(model=completion.model, input_tokens=completion.input_tokens,
                          output_tokens=completion.output_tokens, cost_usd=completion.cost_usd)
        if self.defer_settlement:
            self.unsettled.append((call_id, usage))
            return

        async def settle() -> None:
            await self.costs.settle(call_id, self.scope.team_id, usage, self.scope.actor)

        await patiently(settle)

    async def settle_in(self, tx: Tx) -> None:
        """Settle the calls answered so far in `tx` (the step's transaction; safe when it runs again)."""
        for call_id, usage in self.unsettled:
            await self.costs.settle_in(tx, call_id, self.scope.team_id, usage, self.scope.actor)

    async def commit(self, db: Database, work: Callable[[Tx], Awaitable[T]]) -> T:
        """Run the step's `work` and the settlement of its calls in one transaction."""

        async def unit(tx: Tx) -> T:
            await self.settle_in(tx)  # first: the team row is locked first, and `work` reads the new spend
            crash_point("llm.settled")  # a SIGKILL here rolls the settlement back with the step
            return await work(tx)

        result = await db.atomic(unit)
        self.unsettled.clear()
        return result

    async def settle_leftovers(self) -> None:
        """Settle, each in its own transaction, what no step transaction settled (the step raised or
        ended without writing anything)."""
        while self.unsettled:
            call_id, usage = self.unsettled[0]

            async def settle(call_id: UUID = call_id, usage: CallUsage = usage) -> None:
                await self.costs.settle(call_id, self.scope.team_id, usage, self.scope.actor)

            await patiently(settle)
            self.unsettled.pop(0)
