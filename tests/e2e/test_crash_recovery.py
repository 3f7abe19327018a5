"""A devhost SIGKILLed at every point between two writes of the step path, restarted on the same data
dir, finishes its team with every message, every cost and every transition exactly once.

The failpoints are `shared/failpoints.py`'s: each devhost run is armed with one (`GP_CRASH_AT`), kills
itself there, and the next run (with the next failpoint, at last with none) takes the work over after
the dead host's lease (2 s here) ran out.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from decimal import Decimal
from pathlib import Path

import httpx
import psycopg
import pytest

from tests.devhost.process import DevhostProcess, spawn_devhost
from tests.e2e.conftest import REPO, register
from tests.e2e.test_team_runs import TERMINAL, assert_clean_history, run_team

pytestmark = pytest.mark.slow

#: One devhost run per entry, in this order: each dies at its failpoint (the n-th passage of it).
CRASHES = (
    "plan.committed",  # the plan, its tasks and its message are committed; the activity's result is not
    "llm.reserved:2",  # a worker step's call is reserved and not made
    "llm.returned:2",  # a worker step's call answered; nothing of it is written
    "llm.settled:2",  # a worker step's call is settled and its checkpoint and message are not written
    "step.committed:2",  # a worker step committed; the Durable backend does not know it yet
    "review.committed:1",  # a review's verdict and message committed
)


async def _serve(tmp_path: Path, database_url: str, crash_at: str = "") -> DevhostProcess:
    env = {"DATABASE_URL": database_url, "ENVIRONMENT": "test", "GP_CRASH_AT": crash_at,
           "RATE_LIMIT_LOGIN_PER_MINUTE": "1000", "RATE_LIMIT_WRITES_PER_MINUTE": "5000"}
    return await spawn_devhost(REPO, tmp_path, env=env, extra=("--lease-seconds", "2"))


async def _died_or_finished(process: DevhostProcess, http: httpx.AsyncClient, auth: dict[str, str],
                            team_id: str, seconds: float = 40) -> bool:
    """True when the process killed itself, False when the team finished first."""
    deadline = asyncio.get_running_loop().time() + seconds
    while asyncio.get_running_loop().time() < deadline:
        if process.process.returncode is not None:
            return True
        try:
            team = (await http.get(f"/api/teams/{team_id}", headers=auth)).json()
        except httpx.TransportError:
            await asyncio.sleep(0.05)
            continue
        if team["status"] in TERMINAL:
            return False
        await asyncio.sleep(0.05)
    raise AssertionError(f"neither the failpoint nor the end of the team in {seconds}s:\n{process.log()[-3000:]}")


def _books(database_url: str, team_id: str) -> dict[str, object]:
    with psycopg.connect(database_url) as conn:
        def rows(query: str) -> list[tuple]:
            return conn.execute(query, {"team": team_id}).fetchall()

        return {
            "team": rows("SELECT status, spent_usd, reserved_usd FROM teams WHERE id = %(team)s")[0],
            "tasks": rows("SELECT status FROM tasks WHERE team_id = %(team)s"),
            "messages": rows("SELECT id, kind, task_id, content FROM messages WHERE team_id = %(team)s"),
            "checkpoints": rows("SELECT c.task_id, c.step_number FROM checkpoints c JOIN tasks t"
                                " ON t.id = c.task_id WHERE t.team_id = %(team)s"),
            "reviews": rows("SELECT task_id FROM audit_events WHERE team_id = %(team)s"
                            " AND event_type = 'task.status_changed' AND payload->>'from' = 'review'"
                            " AND payload->>'to' IN ('completed', 'revision_requested')"),
            "costs": rows("SELECT purpose, status, cost_usd, reserved_usd FROM cost_tracking"
                          " WHERE team_id = %(team)s"),
        }


async def test_sigkill_at_every_failpoint_then_restart_loses_no_message_and_bills_every_call_once(
        tmp_path: Path, migrated_database_url: str):
    began = asyncio.get_running_loop().time()
    served = await _serve(tmp_path, migrated_database_url, CRASHES[0])
    killed: list[str] = []
    try:
        async with httpx.AsyncClient(base_url=served.base_url, timeout=20) as http:
            auth = await register(http)
            team_id = await run_team(http, auth, "Build a web scraper for product prices")
        for index, crash_at in enumerate(CRASHES):
            async with httpx.AsyncClient(base_url=served.base_url, timeout=20) as http:
                if not await _died_or_finished(served, http, auth, team_id):
                    break
            assert served.process.returncode == -9, served.log()[-3000:]
            assert f"failpoint {crash_at.split(':')[0]} reached" in served.log()
            killed.append(crash_at)
            print(f"{asyncio.get_running_loop().time() - began:.1f}s: killed at {crash_at}")
            following = CRASHES[index + 1] if index + 1 < len(CRASHES) else ""
            served = await _serve(tmp_path, migrated_database_url, following)
            print(f"{asyncio.get_running_loop().time() - began:.1f}s: serving again")
        async with httpx.AsyncClient(base_url=served.base_url, timeout=20) as http:
            assert not await _died_or_finished(served, http, auth, team_id, seconds=60)
    finally:
        if served.process.returncode is None:
            served.process.terminate()
            try:
                await served.wait_exit(20)
            except TimeoutError:
                await served.kill()
    print(f"{asyncio.get_running_loop().time() - began:.1f}s: team finished")
    assert len(killed) == len(CRASHES), f"only these failpoints were reached before the team finished: {killed}"

    books = _books(migrated_database_url, team_id)
    status, spent, reserved = books["team"]  # type: ignore[misc]
    assert status == "completed"
    assert {s for (s,) in books["tasks"]} == {"completed"}  # type: ignore[union-attr]

    messages = books["messages"]
    kinds = Counter(kind for _, kind, _, _ in messages)  # type: ignore[union-attr]
    checkpoints = books["checkpoints"]
    reviews = books["reviews"]
    assert kinds["plan"] == 1 and kinds["summary"] == 1
    assert kinds["step"] + kinds["tool_request"] == len(checkpoints)  # type: ignore[arg-type]
    assert kinds["review"] == len(reviews)  # type: ignore[arg-type]
    assert len(messages) == len(checkpoints) + 1 + len(reviews) + 1  # type: ignore[arg-type]
    contents = Counter((task_id, kind, content) for _, kind, task_id, content in messages)  # type: ignore[union-attr]
    assert max(contents.values()) == 1, [c for c, n in contents.items() if n > 1]

    costs = books["costs"]
    billed = [cost for _, state, cost, _ in costs if state in ("settled", "estimated")]  # type: ignore[union-attr]
    held = [held for _, state, _, held in costs if state == "reserved"]  # type: ignore[union-attr]
    assert spent == sum(billed, Decimal(0))
    assert reserved == sum(held, Decimal(0))
    settled = Counter(purpose for purpose, state, _, _ in costs if state == "settled")  # type: ignore[union-attr]
    # Each committed step carries its own call's settlement, and a call whose step never committed
    # is not settled as if it had (its reservation is billed at its worst case by the sweep).
    # (Before the settlement moved into the step's transaction, `llm.settled` left a call settled by a
    # commit of its own and its step redone: two settled calls for one checkpoint.)
    assert settled["execute"] == len(checkpoints), "a call settled without its step"  # type: ignore[arg-type]
    assert settled["review"] == len(reviews)  # type: ignore[arg-type]
    assert settled["plan"] == 1 and settled["summary"] == 1
    assert_clean_history(migrated_database_url, team_id)
