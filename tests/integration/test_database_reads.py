"""`Database.reads`: the reads a step makes before its LLM call share one read-only transaction."""

from __future__ import annotations

import pytest

from shared.db.database import Database


async def _now_and_backend(db: Database) -> tuple[object, int]:
    async with db.connection() as conn:
        row = await (await conn.execute("SELECT now() AS now, pg_backend_pid() AS pid")).fetchone()
    assert row is not None
    return row["now"], row["pid"]


async def test_reads_inside_share_one_connection_and_one_transaction(services):
    db = services.db
    async with db.reads():
        first = await _now_and_backend(db)
        second = await _now_and_backend(db)
        async with db.reads():  # nested: the same one
            third = await _now_and_backend(db)
    assert first == second == third  # now() is the transaction's start: one transaction
    outside = [await _now_and_backend(db) for _ in range(2)]
    assert outside[0][0] != outside[1][0]  # autocommit: a transaction per statement


async def test_a_write_inside_reads_is_refused_before_it_reaches_the_database(services):
    async with services.db.reads():
        with pytest.raises(RuntimeError, match=r"inside Database\.reads"):
            await services.db.atomic(lambda tx: tx.conn.execute("SELECT 1"))
