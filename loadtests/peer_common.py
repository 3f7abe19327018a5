"""What both sides of the peer baseline share (`loadtests.bench_peer`, `loadtests.peer_langgraph`).

The team shape, plain data: the benchmark builds it from Ghost Pirates' offline provider and hands it
to the LangGraph process as JSON. And the commit count of a run's database. No LangGraph here.
"""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import asdict, dataclass

from psycopg import AsyncConnection
from psycopg.conninfo import conninfo_to_dict, make_conninfo


@dataclass(frozen=True)
class TaskShape:
    key: str
    title: str
    dependencies: tuple[str, ...]
    steps: int  #: worker steps before the first review
    revise: bool  #: the first review says "revise" (then one more step and one more review)


@dataclass(frozen=True)
class TeamShape:
    goal: str
    tasks: tuple[TaskShape, ...]

    @property
    def calls(self) -> int:
        """LLM calls of one team: plan, every step, every review, summary."""
        return 2 + sum(t.steps + 1 + 2 * t.revise for t in self.tasks)

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, text: str) -> TeamShape:
        raw = json.loads(text)
        return cls(raw["goal"], tuple(TaskShape(t["key"], t["title"], tuple(t["dependencies"]), int(t["steps"]),
                                                bool(t["revise"])) for t in raw["tasks"]))


#: A small team for the test: two parallel tasks, then one that needs both (one revision).
SMALL = TeamShape("A small team", (TaskShape("a", "Task a", (), 2, False), TaskShape("b", "Task b", (), 1, False),
                                   TaskShape("c", "Task c", ("a", "b"), 2, True)))


async def xact_commit(url: str) -> int:
    """Committed transactions of `url`'s database so far (`pg_stat_database`), read through the
    `postgres` database so that reading them adds none. A backend's counters reach it when the
    backend exits, or at most ~10 s after its last commit while idle (PostgreSQL 15+)."""
    name = str(conninfo_to_dict(url)["dbname"])
    async with await AsyncConnection.connect(make_conninfo(url, dbname="postgres"), autocommit=True) as conn:
        await conn.execute("SELECT pg_stat_clear_snapshot()")
        row = await (await conn.execute("SELECT xact_commit FROM pg_stat_database WHERE datname = %s",
                                        (name,))).fetchone()
    return int(row[0]) if row else 0


async def no_backends(url: str, seconds: float = 30) -> None:
    """Wait until nothing is connected to `url`'s database: every backend's counters are flushed."""
    name = str(conninfo_to_dict(url)["dbname"])
    deadline = time.monotonic() + seconds
    async with await AsyncConnection.connect(make_conninfo(url, dbname="postgres"), autocommit=True) as conn:
        while time.monotonic() < deadline:
            row = await (await conn.execute("SELECT count(*) FROM pg_stat_activity WHERE datname = %s",
                                            (name,))).fetchone()
            if row is not None and row[0] == 0:
                return
            await asyncio.sleep(0.05)
    raise TimeoutError(f"connections to {name} still open after {seconds:.0f} s")
