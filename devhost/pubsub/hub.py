"""A hub: its connections, groups and users, and the fan-out of messages to them.

Everything here runs on the event loop without awaiting, so membership changes and sends are atomic
with respect to each other; socket writes happen later in per-socket drain tasks.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Coroutine, Iterable
from dataclasses import dataclass
from typing import Any

from devhost.pubsub.connection import Connection, Protocol
from devhost.pubsub.payload import Payload

logger = logging.getLogger("devhost.pubsub")

Selector = Callable[[Connection], bool]
GoneHook = Callable[["Hub", Connection, str], None]

# Close code for "this connection id is gone": clients must not try to recover it
# (see ../../../shared/protocols/WEB_PUBSUB.md, reliable variant).
SESSION_GONE = 1008


@dataclass(frozen=True, slots=True)
class Limits:
    """How long a dropped reliable session waits for its client, and how much it may buffer."""

    reconnect_grace_seconds: float = 60.0
    max_unacked_messages: int = 5000


class Background:
    """Owns fire-and-forget tasks (socket drains, upstream notifications) so none is lost or leaked."""

    __slots__ = ("_tasks",)

    def __init__(self) -> None:
        self._tasks: set[asyncio.Task[None]] = set()

    def spawn(self, coroutine: Coroutine[Any, Any, None]) -> None:
        task = asyncio.get_running_loop().create_task(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._finished)

    def _finished(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            logger.error("background task failed", exc_info=task.exception())

    async def drain(self, grace_seconds: float) -> None:
        """Wait for pending tasks, then cancel what is still running after `grace_seconds`."""
        if not self._tasks:
            return
        _, pending = await asyncio.wait(set(self._tasks), timeout=grace_seconds)
        for task in pending:
            task.cancel()
        if pending:
            await asyncio.wait(pending)


class Hub:
    """Connections of one hub, indexed by id, group and user."""

    def __init__(
        self, name: str, *, limits: Limits, background: Background, on_gone: GoneHook | None = None
    ) -> None:
        self.name = name
        self.limits = limits
        self.background = background
        self.on_gone = on_gone
        self.connections: dict[str, Connection] = {}
        self.groups: dict[str, set[Connection]] = {}
        self.users: dict[str, set[Connection]] = {}
        # Adding a user to a group also covers that user's later connections.
        self.user_groups: dict[str, set[str]] = {}

    # Membership --------------------------------------------------------------------------------

    def add(self, connection: Connection, groups: Iterable[str]) -> None:
        self.connections[connection.connection_id] = connection
        if connection.user_id is not None:
            self.users.setdefault(connection.user_id, set()).add(connection)
            for group in self.user_groups.get(connection.user_id, ()):
                self.join(connection, group)
        for group in groups:
            self.join(connection, group)

    def join(self, connection: Connection, group: str) -> None:
        connection.groups.add(group)
        self.groups.setdefault(group, set()).add(connection)

    def leave(self, connection: Connection, group: str) -> None:
        connection.groups.discard(group)
        members = self.groups.get(group)
        if members is not None:
            members.discard(connection)
            if not members:
                del self.groups[group]

    def leave_all(self, connection: Connection) -> None:
        for group in list(connection.groups):
            self.leave(connection, group)

    def remove(self, connection: Connection) -> bool:
        """Forget a connection for good; returns False when it was already gone."""
        if self.connections.pop(connection.connection_id, None) is None:
            return False
        connection.closed = True
        if connection.expiry is not None:
            connection.expiry.cancel()
            connection.expiry = None
        self.leave_all(connection)
        if connection.user_id is not None:
            sessions = self.users.get(connection.user_id)
            if sessions is not None:
                sessions.discard(connection)
                if not sessions:
                    del self.users[connection.user_id]
        return True

    def add_user_to_group(self, user_id: str, group: str) -> None:
        self.user_groups.setdefault(user_id, set()).add(group)
        for connection in self.users.get(user_id, ()):
            self.join(connection, group)

    def remove_user_from_group(self, user_id: str, group: str) -> None:
        groups = self.user_groups.get(user_id)
        if groups is not None:
            groups.discard(group)
            if not groups:
                del self.user_groups[user_id]
        for connection in self.users.get(user_id, ()):
            self.leave(connection, group)

    def remove_user_from_all_groups(self, user_id: str) -> None:
        self.user_groups.pop(user_id, None)
        for connection in self.users.get(user_id, ()):
            self.leave_all(connection)

    # Lookup ------------------------------------------------------------------------------------

    def members(self, *, group: str | None = None, user_id: str | None = None) -> list[Connection]:
        if group is not None:
            return list(self.groups.get(group, ()))
        if user_id is not None:
            return list(self.users.get(user_id, ()))
        return list(self.connections.values())

    # Sending -----------------------------------------------------------------------------------

    def send(
        self,
        targets: Iterable[Connection],
        payload: Payload,
        *,
        excluded: Iterable[str] = (),
        selector: Selector | None = None,
    ) -> int:
        """Queue `payload` for every target; returns how many connections it was queued for."""
        skip = set(excluded)
        spawn = self.background.spawn
        limit = self.limits.max_unacked_messages
        overflowing: list[Connection] = []
        count = 0
        for connection in targets:
            if connection.connection_id in skip or (selector is not None and not selector(connection)):
                continue
            count += 1
            if connection.deliver(payload, spawn) > limit:
                overflowing.append(connection)
        for connection in overflowing:
            self.terminate(connection, "Too many messages are waiting for a sequenceAck.")
        return count

    # Lifecycle ---------------------------------------------------------------------------------

    def drop(self, connection: Connection, reason: str) -> None:
        """Forget a connection whose socket is gone for good and report it (upstream `disconnected`)."""
        if self.remove(connection) and self.on_gone is not None:
            self.on_gone(self, connection, reason)

    def terminate(self, connection: Connection, reason: str, *, code: int | None = None) -> None:
        """Close a connection from the service side: `disconnected` message, close frame, forget it."""
        if not self.remove(connection):
            return
        spawn = self.background.spawn
        connection.send_control({"type": "system", "event": "disconnected", "message": reason}, spawn)
        if code is None:
            code = SESSION_GONE if connection.protocol is Protocol.RELIABLE else 1000
        connection.close_link(code, reason[:120], spawn)
        if self.on_gone is not None:
            self.on_gone(self, connection, reason)

    def expire_later(self, connection: Connection, on_expired: Callable[[Connection], None]) -> None:
        """Keep a dropped reliable session for its client to resume, then drop it for good."""
        connection.expiry = asyncio.get_running_loop().call_later(
            self.limits.reconnect_grace_seconds, on_expired, connection
        )
