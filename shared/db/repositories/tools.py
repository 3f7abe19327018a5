"""Tool servers of a company and the tool calls of a task.

A tool call's status changes are guarded updates (`WHERE status = ANY(%(sources)s)`), so a call whose
result is recorded can never be started again, whichever process or retry asks.
"""

from __future__ import annotations

from typing import Any
from uuid import UUID

from psycopg.types.json import Jsonb

from shared.db import rows
from shared.db.database import Conn
from shared.domain.tool_models import ToolCallRecord, ToolServerRecord

_SERVER_COLUMNS = """
id, company_id, name, url, approval, header_names, secret_ref, tools, server_info, max_cost_usd, status,
created_at, refreshed_at
"""

#: insert_tool_server -- a new server of a company (its name is unique in the company)
INSERT_SERVER = f"""
INSERT INTO tool_servers (id, company_id, name, url, approval, header_names, secret_ref, tools, server_info,
                          max_cost_usd, created_by)
VALUES (%(id)s, %(company_id)s, %(name)s, %(url)s, %(approval)s, %(header_names)s, %(secret_ref)s, %(tools)s,
        %(server_info)s, %(max_cost_usd)s, %(created_by)s)
ON CONFLICT (company_id, name) DO NOTHING
RETURNING {_SERVER_COLUMNS}
"""  # noqa: S608 - SQL built from this module's constants
#: list_tool_servers -- a company's servers by name
LIST_SERVERS = f"SELECT {_SERVER_COLUMNS} FROM tool_servers WHERE company_id = %(company_id)s ORDER BY name"  # noqa: S608 - SQL built from this module's constants
#: get_tool_server -- one server of a company
GET_SERVER = f"SELECT {_SERVER_COLUMNS} FROM tool_servers WHERE id = %(id)s AND company_id = %(company_id)s"  # noqa: S608 - SQL built from this module's constants
#: get_tool_server_by_name -- a company's server by name
GET_SERVER_BY_NAME = f"""
SELECT {_SERVER_COLUMNS} FROM tool_servers WHERE company_id = %(company_id)s AND name = %(name)s
"""  # noqa: S608 - SQL built from this module's constants
#: update_tool_listing -- what tools/list answered at a refresh
UPDATE_LISTING = f"""
UPDATE tool_servers SET tools = %(tools)s, server_info = %(server_info)s, status = %(status)s,
       refreshed_at = clock_timestamp()
WHERE id = %(id)s AND company_id = %(company_id)s
RETURNING {_SERVER_COLUMNS}
"""  # noqa: S608 - SQL built from this module's constants
#: delete_tool_server -- remove a server (its calls keep their names; server_id becomes NULL)
DELETE_SERVER = f"""
DELETE FROM tool_servers WHERE id = %(id)s AND company_id = %(company_id)s RETURNING {_SERVER_COLUMNS}
"""  # noqa: S608 - SQL built from this module's constants

_CALL_COLUMNS = """
id, company_id, team_id, task_id, member_id, step_number, position, server_id, server_name AS server,
tool_name AS tool, llm_call_id, arguments, approval, status, escalation_id, result, result_chars, error, cost_usd,
cost_call_id, attempts, created_at, started_at, finished_at, duration_ms
"""

#: insert_tool_call -- a call a step asked for (once per task, step and position)
INSERT_CALL = f"""
INSERT INTO tool_calls (id, company_id, team_id, task_id, member_id, step_number, position, server_id, server_name,
                        tool_name, llm_call_id, arguments, approval, status, error, finished_at)
VALUES (%(id)s, %(company_id)s, %(team_id)s, %(task_id)s, %(member_id)s, %(step_number)s, %(position)s,
        %(server_id)s, %(server_name)s, %(tool_name)s, %(llm_call_id)s, %(arguments)s, %(approval)s, %(status)s,
        %(error)s, CASE WHEN %(status)s IN ('succeeded', 'failed', 'denied') THEN clock_timestamp() END)
ON CONFLICT (task_id, step_number, position) DO NOTHING
RETURNING {_CALL_COLUMNS}
"""  # noqa: S608 - SQL built from this module's constants
#: tool_calls_of_task -- a task's calls, oldest first
CALLS_FOR_TASK = f"SELECT {_CALL_COLUMNS} FROM tool_calls WHERE task_id = %(task_id)s ORDER BY step_number, position"  # noqa: S608 - SQL built from this module's constants
#: get_tool_call -- one call
GET_CALL = f"SELECT {_CALL_COLUMNS} FROM tool_calls WHERE id = %(id)s"  # noqa: S608 - SQL built from this module's constants
#: lock_tool_call -- one call, locked (its team and task locked first: the lock order)
LOCK_CALL = f"""
WITH team AS (SELECT t.id FROM teams t JOIN tool_calls c ON c.team_id = t.id WHERE c.id = %(id)s FOR UPDATE OF t)
SELECT {_CALL_COLUMNS} FROM tool_calls WHERE id = %(id)s AND team_id IN (SELECT id FROM team) FOR UPDATE
"""  # noqa: S608 - SQL built from this module's constants
#: tool_usage_of_task -- calls counted against the task's limit, and the time spent in tools
USAGE = """
SELECT count(*) FILTER (WHERE NOT (status = 'failed' AND attempts = 0)) AS calls,
       coalesce(sum(duration_ms), 0) AS duration_ms
FROM tool_calls WHERE task_id = %(task_id)s
"""
#: move_tool_call -- a guarded status change (approval)
MOVE_CALL = f"""
UPDATE tool_calls SET status = %(to)s, escalation_id = coalesce(%(escalation_id)s, escalation_id)
WHERE id = %(id)s AND status = ANY(%(sources)s)
RETURNING {_CALL_COLUMNS}
"""  # noqa: S608 - SQL built from this module's constants
#: start_tool_call -- one more attempt begins (a recorded result is never started again)
START_CALL = f"""
UPDATE tool_calls SET status = 'running', attempts = attempts + 1, cost_call_id = %(cost_call_id)s,
       started_at = coalesce(started_at, clock_timestamp())
WHERE id = %(id)s AND status IN ('requested', 'approved', 'running')
RETURNING {_CALL_COLUMNS}
"""  # noqa: S608 - SQL built from this module's constants
#: finish_tool_call -- the result, the tool's error, a limit or a denial: recorded once
FINISH_CALL = f"""
UPDATE tool_calls SET status = %(status)s, result = %(result)s, result_chars = %(result_chars)s, error = %(error)s,
       cost_usd = %(cost_usd)s, finished_at = clock_timestamp(), duration_ms = %(duration_ms)s
WHERE id = %(id)s AND status = ANY(%(sources)s)
RETURNING {_CALL_COLUMNS}
"""  # noqa: S608 - SQL built from this module's constants


async def insert_server(conn: Conn, **params: Any) -> ToolServerRecord | None:
    """None when the company already has a server of that name."""
    params = {**params, "tools": Jsonb(params["tools"]), "server_info": Jsonb(params["server_info"])}
    return await rows.one(conn, ToolServerRecord, INSERT_SERVER, params)


async def servers(conn: Conn, company_id: UUID) -> list[ToolServerRecord]:
    return await rows.many(conn, ToolServerRecord, LIST_SERVERS, {"company_id": company_id})


async def server(conn: Conn, server_id: UUID, company_id: UUID) -> ToolServerRecord | None:
    return await rows.one(conn, ToolServerRecord, GET_SERVER, {"id": server_id, "company_id": company_id})


async def server_by_name(conn: Conn, company_id: UUID, name: str) -> ToolServerRecord | None:
    return await rows.one(conn, ToolServerRecord, GET_SERVER_BY_NAME, {"company_id": company_id, "name": name})


async def update_listing(conn: Conn, server_id: UUID, company_id: UUID, *, tools: list[dict[str, Any]],
                         server_info: dict[str, Any], status: str) -> ToolServerRecord | None:
    return await rows.one(conn, ToolServerRecord, UPDATE_LISTING, {
        "id": server_id, "company_id": company_id, "tools": Jsonb(tools), "server_info": Jsonb(server_info),
        "status": status})


async def delete_server(conn: Conn, server_id: UUID, company_id: UUID) -> ToolServerRecord | None:
    return await rows.one(conn, ToolServerRecord, DELETE_SERVER, {"id": server_id, "company_id": company_id})


async def insert_call(conn: Conn, **params: Any) -> ToolCallRecord | None:
    """None when that step already recorded a call at that position."""
    params = {"error": None, **params, "arguments": Jsonb(params["arguments"])}
    return await rows.one(conn, ToolCallRecord, INSERT_CALL, params)


async def calls_for_task(conn: Conn, task_id: UUID) -> list[ToolCallRecord]:
    return await rows.many(conn, ToolCallRecord, CALLS_FOR_TASK, {"task_id": task_id})


async def call(conn: Conn, call_id: UUID) -> ToolCallRecord | None:
    return await rows.one(conn, ToolCallRecord, GET_CALL, {"id": call_id})


async def lock_call(conn: Conn, call_id: UUID) -> ToolCallRecord | None:
    return await rows.one(conn, ToolCallRecord, LOCK_CALL, {"id": call_id})


async def usage(conn: Conn, task_id: UUID) -> tuple[int, int]:
    """(calls counted against the limit, milliseconds spent in tools) of a task."""
    async with conn.cursor() as cur:
        await cur.execute(USAGE, {"task_id": task_id})
        row = await cur.fetchone()
    assert row is not None
    return int(row["calls"]), int(row["duration_ms"])


async def move_call(conn: Conn, call_id: UUID, *, to: str, sources: list[str],
                    escalation_id: UUID | None = None) -> ToolCallRecord | None:
    return await rows.one(conn, ToolCallRecord, MOVE_CALL, {
        "id": call_id, "to": to, "sources": sources, "escalation_id": escalation_id})


async def start_call(conn: Conn, call_id: UUID, cost_call_id: UUID | None) -> ToolCallRecord | None:
    return await rows.one(conn, ToolCallRecord, START_CALL, {"id": call_id, "cost_call_id": cost_call_id})


async def finish_call(conn: Conn, call_id: UUID, **params: Any) -> ToolCallRecord | None:
    return await rows.one(conn, ToolCallRecord, FINISH_CALL, {"id": call_id, **params})
