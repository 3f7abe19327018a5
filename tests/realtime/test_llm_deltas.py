"""`llm.delta`: live model output sent to the team's group, coalesced per call, never stored."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

from shared.agents.offline import OfflineProvider
from shared.agents.prompt_templates import load_prompt
from shared.agents.schemas import Summary
from shared.realtime import realtime_of, team_group
from tests.realtime.conftest import Inbox


class Deltas(Inbox):
    async def on_message(self, args: Any) -> None:
        if isinstance(args.data, dict) and args.data.get("type") == "llm.delta":
            self.events.append(args.data)
            self._changed.set()


async def _watch(app: Any, open_client: Any, team_id: uuid.UUID) -> Deltas:
    realtime = realtime_of(app.db)
    token = await realtime.client.get_client_access_token(groups=[team_group(team_id)])
    client, _ = await open_client(str(token["url"]))
    deltas = Deltas()
    from azure.messaging.webpubsubclient.models import CallbackType

    await client.subscribe(CallbackType.SERVER_MESSAGE, deltas.on_message)
    return deltas


async def test_a_calls_deltas_are_coalesced_in_order_from_index_0_and_make_its_text(app, open_client):
    team_id, task_id, member_id = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    deltas = await _watch(app, open_client, team_id)
    call = realtime_of(app.db).deltas.live(team_id, task_id, member_id).open_call()
    pieces = [f"word{i} " for i in range(60)]

    loop = asyncio.get_running_loop()
    started = loop.time()
    for piece in pieces:  # 60 pieces over ~0.6 s (longer on a busy machine)
        await call(piece)
        await asyncio.sleep(0.01)
    await call.aclose()
    elapsed = loop.time() - started
    # The final message may come after the text is complete (with no text of its own): wait for both.
    await deltas.until(lambda: "".join(d["text"] for d in deltas.events) == "".join(pieces)
                       and any(d.get("final") for d in deltas.events))

    assert [d["index"] for d in deltas.events] == list(range(len(deltas.events)))
    assert len(deltas.events) <= elapsed / 0.1 + 2, f"{len(deltas.events)} messages in {elapsed:.2f}s: over ~10/s"
    assert len(deltas.events) < len(pieces), "pieces were coalesced"
    first = deltas.events[0]
    assert first["text"] == "word0 ", "the first piece goes out at once, alone"
    assert {d["call_id"] for d in deltas.events} == {call.call_id}
    assert (first["team_id"], first["task_id"], first["member_id"]) == (str(team_id), str(task_id), str(member_id))
    assert all("seq" not in d for d in deltas.events), "deltas are not part of the seq'd stream"
    assert [d.get("final", False) for d in deltas.events] == [False] * (len(deltas.events) - 1) + [True]


async def test_each_call_has_its_own_id_and_counts_from_zero(app, open_client):
    team_id = uuid.uuid4()
    deltas = await _watch(app, open_client, team_id)
    live = realtime_of(app.db).deltas.live(team_id, None, None)

    for text in ("first call", "second call"):
        call = live.open_call()
        await call(text)
        await call.aclose()
    await deltas.until(lambda: sum(bool(d.get("final")) for d in deltas.events) == 2)

    by_call: dict[str, list[dict]] = {}
    for d in deltas.events:
        by_call.setdefault(d["call_id"], []).append(d)
    assert len(by_call) == 2 and deltas.events[0]["task_id"] is None
    for sent, text in zip(by_call.values(), ("first call", "second call"), strict=True):
        assert [d["index"] for d in sent] == list(range(len(sent))), "each call counts from 0"
        assert "".join(d["text"] for d in sent) == text and sent[-1]["final"] is True


async def test_deltas_are_never_stored(app, open_client, make_company):
    from shared.domain.models import TeamCreate

    principal = await make_company()
    team = await app.services.teams.create(principal, TeamCreate(goal="Sail"))
    call = realtime_of(app.db).deltas.live(team.id, None, None).open_call()
    messages = load_prompt("summary.v2").render({"goal": "Sail", "tasks": []})

    await OfflineProvider().complete(messages, model="offline-manager", schema=Summary, max_tokens=200, on_delta=call)
    await call.aclose()

    events = await app.services.events.after(team.id, 0)
    assert events and all(e.type != "llm.delta" for e in events), "only the seq'd events are stored"
    assert call.sent >= 1


async def test_a_web_pubsub_that_is_down_loses_deltas_without_failing_the_call(app, emulator):
    team_id = uuid.uuid4()
    await emulator.stop()
    call = realtime_of(app.db).deltas.live(team_id, None, None).open_call()

    await call("lost")
    await call.aclose()

    assert call.sent == 1
