"""Typed reads at the adapter boundary: a statement's rows as instances of a dataclass or model.

`class_row(cls)` builds `cls(**row)` per row (psycopg's row factories), so a repository returns
`TaskRecord`s and `TeamScope`s, never `dict[str, Any]`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar

from psycopg.rows import class_row, scalar_row

from shared.db.database import Conn

T = TypeVar("T")
Params = Mapping[str, Any]


async def one(conn: Conn, row: type[T], statement: Any, params: Params | None = None) -> T | None:
    """The first row as a `row`, or None."""
    async with conn.cursor(row_factory=class_row(row)) as cur:
        await cur.execute(statement, params)
        return await cur.fetchone()


async def many(conn: Conn, row: type[T], statement: Any, params: Params | None = None) -> list[T]:
    async with conn.cursor(row_factory=class_row(row)) as cur:
        await cur.execute(statement, params)
        return await cur.fetchall()


async def value(conn: Conn, statement: Any, params: Params | None = None) -> Any:
    """The first column of the first row, or None when there is no row."""
    async with conn.cursor(row_factory=scalar_row) as cur:
        await cur.execute(statement, params)
        return await cur.fetchone()


async def values(conn: Conn, statement: Any, params: Params | None = None) -> list[Any]:
    async with conn.cursor(row_factory=scalar_row) as cur:
        await cur.execute(statement, params)
        return await cur.fetchall()


async def run(conn: Conn, statement: Any, params: Params | None = None) -> int:
    """Execute; the number of rows it changed."""
    cur = await conn.execute(statement, params)
    return cur.rowcount
