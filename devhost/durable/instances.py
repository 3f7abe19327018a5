"""Instance management behind the HTTP API: start, query, raise events, terminate, purge."""

from __future__ import annotations

import contextlib
import json
import uuid
from collections.abc import Callable
from datetime import datetime
from enum import StrEnum
from typing import Any

from psycopg import AsyncConnection
from psycopg_pool import AsyncConnectionPool

from .history import EventType, as_new, event, execution_started, format_timestamp, utc_now
from .model import CONTROL, TERMINAL, NewMessage, Status
from .store import create_or_replace_instance, insert_messages

STATUS_COLUMNS = "instance_id, name, status, input, output, custom_status, created_at, updated_at"

SELECT_STATUS = f"SELECT {STATUS_COLUMNS} FROM instances WHERE instance_id = %s"  # noqa: S608 - SQL built from this module's constants
SELECT_HISTORY = "SELECT event FROM history WHERE instance_id = %s ORDER BY seq"
QUERY_STATUS = f"""
SELECT {STATUS_COLUMNS} FROM instances
WHERE (%(statuses)s::text[] IS NULL OR status = ANY(%(statuses)s))
  AND (%(created_from)s::timestamptz IS NULL OR created_at >= %(created_from)s)
  AND (%(created_to)s::timestamptz IS NULL OR created_at <= %(created_to)s)
  AND (%(prefix)s::text IS NULL OR starts_with(instance_id, %(prefix)s))
ORDER BY created_at, instance_id
LIMIT %(top)s
"""  # noqa: S608 - SQL built from this module's constants
SELECT_STATE = "SELECT status, execution_id FROM instances WHERE instance_id = %s"
PURGE = """
WITH gone AS (
    DELETE FROM instances WHERE instance_id = ANY(%(ids)s)
      AND status IN ('Completed', 'Failed', 'Terminated')
    RETURNING instance_id
), h AS (DELETE FROM history WHERE instance_id IN (SELECT instance_id FROM gone)),
   i AS (DELETE FROM inbox WHERE instance_id IN (SELECT instance_id FROM gone)),
   a AS (DELETE FROM activities WHERE instance_id IN (SELECT instance_id FROM gone))
SELECT count(*) FROM gone
"""
SELECT_PURGEABLE = """
SELECT instance_id FROM instances
WHERE status IN ('Completed', 'Failed', 'Terminated')
  AND (%(statuses)s::text[] IS NULL OR status = ANY(%(statuses)s))
  AND created_at >= %(created_from)s
  AND (%(created_to)s::timestamptz IS NULL OR created_at <= %(created_to)s)
"""

#: Names the management API shows for history event types (the host's `EventType` strings).
EVENT_NAMES = {int(kind): "".join(p.capitalize() for p in kind.name.split("_")) for kind in EventType}
EVENT_NAMES[int(EventType.SUB_ORCHESTRATION_CREATED)] = "SubOrchestrationInstanceCreated"
EVENT_NAMES[int(EventType.SUB_ORCHESTRATION_COMPLETED)] = "SubOrchestrationInstanceCompleted"
EVENT_NAMES[int(EventType.SUB_ORCHESTRATION_FAILED)] = "SubOrchestrationInstanceFailed"
HIDDEN_EVENTS = {int(EventType.ORCHESTRATOR_STARTED), int(EventType.ORCHESTRATOR_COMPLETED)}
OUTPUT_FIELDS = ("Result", "Input")


class Delivery(StrEnum):
    """What happened to a message sent to an instance."""

    ACCEPTED = "accepted"  #: queued for the instance
    NOT_FOUND = "not_found"  #: no such instance
    GONE = "gone"  #: the instance has finished


class InstanceExists(Exception):
    """start_new with the id of an instance that has not finished."""


class InstanceAdmin:
    """Operations of the management API, each one short transaction."""

    def __init__(
        self,
        pool: AsyncConnectionPool[AsyncConnection[Any]],
        on_message: Callable[[], None] = lambda: None,
        now: Callable[[], datetime] = utc_now,
    ) -> None:
        """`now` stamps the events written here (the backend passes the database's clock)."""
        self.pool = pool
        self.on_message = on_message
        self.now = now

    async def start(self, name: str, instance_id: str | None, raw_input: str | None, version: str) -> str:
        """Create a Pending instance and its ExecutionStarted message; reuse a finished id."""
        instance_id = instance_id or uuid.uuid4().hex
        execution_id = uuid.uuid4().hex
        params = {
            "instance_id": instance_id, "execution_id": execution_id, "name": name, "version": version,
            "input": raw_input, "parent_instance_id": None, "parent_execution_id": None,
            "parent_task_id": None,
        }
        started = execution_started(
            moment=self.now(), name=name, version=version, raw_input=raw_input,
            instance_id=instance_id, execution_id=execution_id,
        )
        async with self.pool.connection() as conn, conn.transaction():
            if not await create_or_replace_instance(conn, params):
                raise InstanceExists(instance_id)
            await insert_messages(conn, [NewMessage(instance_id, execution_id, as_new(started), None)])
        self.on_message()
        return instance_id

    async def status(
        self, instance_id: str, *, show_history: bool, show_history_output: bool, show_input: bool
    ) -> dict[str, Any] | None:
        async with self.pool.connection() as conn:
            cur = await conn.execute(SELECT_STATUS, (instance_id,))
            row = await cur.fetchone()
            if row is None:
                return None
            found = _status_json(row, show_input=show_input)
            if show_history:
                cur = await conn.execute(SELECT_HISTORY, (instance_id,))
                events = [json.loads(r[0]) for r in await cur.fetchall()]
                found["historyEvents"] = _history_json(events, with_output=show_history_output)
        return found

    async def query(
        self,
        *,
        statuses: list[str] | None,
        created_from: datetime | None,
        created_to: datetime | None,
        prefix: str | None,
        show_input: bool,
        top: int = 1000,
    ) -> list[dict[str, Any]]:
        params = {
            "statuses": statuses, "created_from": created_from, "created_to": created_to,
            "prefix": prefix, "top": top,
        }
        async with self.pool.connection() as conn:
            cur = await conn.execute(QUERY_STATUS, params)
            return [_status_json(r, show_input=show_input) for r in await cur.fetchall()]

    async def raise_event(self, instance_id: str, name: str, raw_body: str | None) -> Delivery:
        """Queue an EventRaised; its Input is the posted JSON as-is, like the host."""
        raised = event(EventType.EVENT_RAISED, self.now(), Name=name, Input=raw_body)
        return await self._send(instance_id, None, as_new(raised))

    async def control(self, instance_id: str, operation: str, reason: str) -> Delivery:
        """Queue terminate/suspend/resume; the instance's next episode applies it."""
        return await self._send(instance_id, CONTROL, json.dumps({"op": operation, "reason": reason}))

    async def _send(self, instance_id: str, kind: str | None, text: str) -> Delivery:
        async with self.pool.connection() as conn, conn.transaction():
            cur = await conn.execute(SELECT_STATE, (instance_id,))
            row = await cur.fetchone()
            if row is None:
                return Delivery.NOT_FOUND
            if Status(row[0]) in TERMINAL:
                return Delivery.GONE
            message = NewMessage(instance_id, None, text, None, kind=kind or "event")
            await insert_messages(conn, [message])
        self.on_message()
        return Delivery.ACCEPTED

    async def purge(self, instance_ids: list[str]) -> int:
        """Delete finished instances with their history and messages; live ones are kept."""
        async with self.pool.connection() as conn:
            cur = await conn.execute(PURGE, {"ids": instance_ids})
            row = await cur.fetchone()
        return int(row[0]) if row else 0

    async def purge_by(
        self, *, created_from: datetime, created_to: datetime | None, statuses: list[str] | None
    ) -> int:
        params = {"created_from": created_from, "created_to": created_to, "statuses": statuses}
        async with self.pool.connection() as conn:
            cur = await conn.execute(SELECT_PURGEABLE, params)
            ids = [r[0] for r in await cur.fetchall()]
        return await self.purge(ids) if ids else 0


def _json_or_none(text: str | None) -> Any:
    return None if text is None else json.loads(text)


def _status_json(row: tuple[Any, ...], *, show_input: bool) -> dict[str, Any]:
    instance_id, name, status, raw_input, output, custom_status, created_at, updated_at = row
    return {
        "name": name,
        "instanceId": instance_id,
        "runtimeStatus": status,
        "input": _json_or_none(raw_input) if show_input else None,
        "customStatus": _json_or_none(custom_status),
        "output": _json_or_none(output),
        "createdTime": format_timestamp(created_at),
        "lastUpdatedTime": format_timestamp(updated_at),
    }


def _history_json(events: list[dict[str, Any]], *, with_output: bool) -> list[dict[str, Any]]:
    """History as the host shows it: named event types, no episode markers, JSON values parsed."""
    shown = []
    for item in events:
        kind = int(item["EventType"])
        if kind in HIDDEN_EVENTS:
            continue
        entry = {k: v for k, v in item.items() if k not in ("IsPlayed", "EventType")}
        entry["EventType"] = EVENT_NAMES.get(kind, str(kind))
        for field in OUTPUT_FIELDS:
            if field in entry:
                if with_output and isinstance(entry[field], str):
                    with contextlib.suppress(ValueError):
                        entry[field] = json.loads(entry[field])
                elif not with_output:
                    del entry[field]
        shown.append(entry)
    return shown
