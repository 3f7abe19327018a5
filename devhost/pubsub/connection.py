"""A client connection (the service-side session) and the live socket currently attached to it.

Per-connection state is kept small (`__slots__`, lazily created buffers) because the emulator must
hold a thousand idle clients cheaply. Writes never block a fan-out: frames go to the socket's outbox
and a short-lived drain task writes them in order, so one slow socket delays only itself.
"""

from __future__ import annotations

import asyncio
import json
from collections import deque
from collections.abc import Awaitable, Callable, Coroutine
from enum import IntEnum
from typing import Any

from devhost.pubsub.payload import Frame, Payload, sequenced

AsgiSend = Callable[[dict[str, Any]], Awaitable[None]]
Spawn = Callable[[Coroutine[Any, Any, None]], None]


class Protocol(IntEnum):
    """What the client negotiated: nothing (raw payloads) or one of the JSON subprotocols."""

    RAW = 0
    JSON = 1
    RELIABLE = 2


SUBPROTOCOLS = {
    "json.webpubsub.azure.v1": Protocol.JSON,
    "json.reliable.webpubsub.azure.v1": Protocol.RELIABLE,
}

PONG = '{"type":"pong"}'


class CloseRequest:
    """Queued behind pending frames so a close never overtakes data already sent."""

    __slots__ = ("code", "reason")

    def __init__(self, code: int, reason: str) -> None:
        self.code = code
        self.reason = reason


class Link:
    """One accepted WebSocket; a reliable connection may see several over its life."""

    __slots__ = ("outbox", "send", "usable", "writing")

    def __init__(self, send: AsgiSend) -> None:
        self.send = send
        self.outbox: deque[Frame | CloseRequest] | None = None
        self.writing = False
        self.usable = True

    def push(self, item: Frame | CloseRequest, spawn: Spawn) -> None:
        if not self.usable:
            return
        if self.outbox is None:
            self.outbox = deque()
        self.outbox.append(item)
        if not self.writing:
            self.writing = True
            spawn(self._drain())

    async def _drain(self) -> None:
        outbox = self.outbox
        try:
            while outbox and self.usable:
                item = outbox.popleft()
                if isinstance(item, CloseRequest):
                    self.usable = False
                    await self.send({"type": "websocket.close", "code": item.code, "reason": item.reason})
                elif isinstance(item, str):
                    await self.send({"type": "websocket.send", "text": item})
                else:
                    await self.send({"type": "websocket.send", "bytes": item})
        except (OSError, RuntimeError):
            # The peer went away mid-write (uvicorn raises ClientDisconnected, an OSError, or a
            # RuntimeError after close); the receive loop sees the disconnect and decides what stays.
            self.usable = False
        finally:
            if outbox is not None and not self.usable:
                outbox.clear()
            self.writing = False


class Connection:
    """Service-side state of one connection id: identity, rights, groups and reliable buffers."""

    __slots__ = (
        "closed",
        "connection_id",
        "expiry",
        "groups",
        "hub_name",
        "link",
        "next_sequence_id",
        "processed_ack_ids",
        "protocol",
        "reconnection_token",
        "roles",
        "subprotocol",
        "unacked",
        "user_id",
    )

    def __init__(
        self,
        connection_id: str,
        *,
        hub_name: str,
        user_id: str | None,
        roles: frozenset[str],
        protocol: Protocol,
        subprotocol: str | None,
        reconnection_token: str | None,
    ) -> None:
        self.connection_id = connection_id
        self.hub_name = hub_name
        self.user_id = user_id
        self.roles = roles
        self.protocol = protocol
        self.subprotocol = subprotocol
        self.reconnection_token = reconnection_token
        self.groups: set[str] = set()
        self.link: Link | None = None
        self.next_sequence_id = 1
        self.unacked: deque[tuple[int, str]] | None = None
        self.processed_ack_ids: dict[int, None] | None = None
        self.expiry: asyncio.TimerHandle | None = None
        self.closed = False

    # Outbound -----------------------------------------------------------------------------------

    def deliver(self, payload: Payload, spawn: Spawn) -> int:
        """Queue a data message; returns how many frames await a sequenceAck (reliable only)."""
        if self.protocol is Protocol.RAW:
            if self.link is not None:
                self.link.push(payload.raw_frame(), spawn)
            return 0
        envelope = payload.envelope()
        if self.protocol is Protocol.JSON:
            if self.link is not None:
                self.link.push(envelope, spawn)
            return 0
        sequence_id = self.next_sequence_id
        self.next_sequence_id += 1
        if self.unacked is None:
            self.unacked = deque()
        self.unacked.append((sequence_id, envelope))
        if self.link is not None:
            self.link.push(sequenced(envelope, sequence_id), spawn)
        return len(self.unacked)

    def send_control(self, message: dict[str, Any] | str, spawn: Spawn) -> None:
        """Acks, pongs and system messages: never sequenced, dropped while no socket is attached."""
        if self.link is None or self.protocol is Protocol.RAW:
            return
        frame = message if isinstance(message, str) else json.dumps(message, separators=(",", ":"))
        self.link.push(frame, spawn)

    def close_link(self, code: int, reason: str, spawn: Spawn) -> None:
        if self.link is not None:
            self.link.push(CloseRequest(code, reason), spawn)

    # Reliable protocol --------------------------------------------------------------------------

    def acknowledge(self, sequence_id: int) -> None:
        """A sequenceAck covers every message up to and including `sequence_id`."""
        unacked = self.unacked
        while unacked and unacked[0][0] <= sequence_id:
            unacked.popleft()

    def attach(self, send: AsgiSend, spawn: Spawn, *, greeting: dict[str, Any] | None = None) -> Link:
        """Bind a (new) socket: greet it, then replay in order what the client has not acknowledged."""
        if self.link is not None:
            self.link.usable = False
        link = Link(send)
        self.link = link
        if self.expiry is not None:
            self.expiry.cancel()
            self.expiry = None
        if greeting is not None and self.protocol is not Protocol.RAW:
            link.push(json.dumps(greeting, separators=(",", ":")), spawn)
        for sequence_id, envelope in self.unacked or ():
            link.push(sequenced(envelope, sequence_id), spawn)
        return link

    def detach(self) -> None:
        if self.link is not None:
            self.link.usable = False
        self.link = None

    def seen_ack_id(self, ack_id: int) -> bool:
        return self.processed_ack_ids is not None and ack_id in self.processed_ack_ids

    def remember_ack_id(self, ack_id: int, limit: int = 1024) -> None:
        """Keep the last `limit` successful ackIds so a re-sent message is answered `Duplicate`."""
        if self.processed_ack_ids is None:
            self.processed_ack_ids = {}
        self.processed_ack_ids[ack_id] = None
        if len(self.processed_ack_ids) > limit:
            del self.processed_ack_ids[next(iter(self.processed_ack_ids))]
