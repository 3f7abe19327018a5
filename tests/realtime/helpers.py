"""Helpers of the end-to-end real-time tests: a proxy that can drop and refuse connections, and the
client-side merge of live events with backfill that API.md prescribes."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

import httpx


class DroppingProxy:
    """Loopback TCP proxy in front of the emulator: `drop()` aborts live sockets (no close frame) and
    refuses new ones until `restore()`, like a network outage."""

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.port = 0
        self.refusing = False
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()

    async def start(self) -> int:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self.port

    def rewrite(self, url: str) -> str:
        return url.replace(f":{self.target_port}/", f":{self.port}/")

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self.refusing:
            writer.transport.abort()
            return
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.target_port)
        self._writers.update((writer, up_writer))
        await asyncio.gather(self._pipe(reader, up_writer), self._pipe(up_reader, writer))

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(ConnectionError, OSError):
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        writer.transport.abort()
        self._writers.discard(writer)

    def drop(self) -> None:
        self.refusing = True
        for writer in list(self._writers):
            writer.transport.abort()
        self._writers.clear()

    def restore(self) -> None:
        self.refusing = False

    async def stop(self) -> None:
        self.drop()
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()


async def backfill(http: httpx.AsyncClient, auth: dict[str, str], team_id: str, after_seq: int) -> list[dict[str, Any]]:
    response = await http.get(f"/api/teams/{team_id}/events", params={"after_seq": after_seq}, headers=auth)
    assert response.status_code == 200, response.text
    events: list[dict[str, Any]] = response.json()
    return events


async def merge_live_with_backfill(http: httpx.AsyncClient, auth: dict[str, str], team_id: str,
                                   live: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], int]:
    """What a client applies: live events in arrival order, a gap filled from the API before the event
    after it, already-seen seqs dropped, and a final catch-up. Returns (applied, backfilled count)."""
    applied: list[dict[str, Any]] = []
    filled = 0

    async def catch_up(until: int | None) -> None:
        nonlocal filled
        last = applied[-1]["seq"] if applied else 0
        for event in await backfill(http, auth, team_id, last):
            if until is not None and event["seq"] >= until:
                break
            applied.append(event)
            filled += 1

    for event in live:
        last = applied[-1]["seq"] if applied else 0
        if event["seq"] <= last:
            continue
        if event["seq"] > last + 1:
            await catch_up(event["seq"])
        applied.append(event)
    await catch_up(None)
    return applied, filled
