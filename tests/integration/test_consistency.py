"""One lock order, bounded retries of a unit of work, and errors that say what happened.

The review found escalations locking team then task while task transitions locked task then team: two
such transactions could deadlock. Now every transaction that writes a task locks its team first.
"""

from __future__ import annotations

import asyncio

import psycopg
import pytest

from shared.db.database import Database, TransientConflict
from shared.domain.errors import DependencyDown
from shared.domain.models import Actor, PlannedTaskIn
from shared.domain.states import TaskStatus

SYSTEM = Actor.system()


@pytest.fixture
async def task(make_team, services):
    team = await make_team()
    [task] = await services.tasks.create_plan(
        team.id, [PlannedTaskIn(key="only", title="Only task", acceptance_criteria=["done"])], SYSTEM)
    worker = next(m for m in team.members if m.role == "worker")
    await services.tasks.assign(task.id, worker.id, SYSTEM)
    return task


async def test_a_task_transition_waits_for_its_team_row_before_it_locks_the_task(task, services, database_url):
    """Hold the team row as an escalation does (team first), start a task transition, then take the task
    row: with one lock order the transition has not locked the task yet, so there is no deadlock."""
    async with await psycopg.AsyncConnection.connect(database_url) as holder:
        async with holder.transaction():
            await holder.execute("SELECT 1 FROM teams WHERE id = %s FOR UPDATE", (task.team_id,))
            moving = asyncio.create_task(services.tasks.start(task.id, SYSTEM))
            await asyncio.sleep(0.3)  # the transition is now waiting for the team row
            assert not moving.done()
            await holder.execute("SET LOCAL lock_timeout = '200ms'")  # well before deadlock detection (1 s)
            await holder.execute("SELECT 1 FROM tasks WHERE id = %s FOR UPDATE", (task.id,))  # free: no deadlock
        started = await asyncio.wait_for(moving, 10)
    assert started.status == TaskStatus.IN_PROGRESS


async def test_concurrent_escalations_and_transitions_of_one_task_never_deadlock(make_team, services):
    team = await make_team()
    tasks = await services.tasks.create_plan(
        team.id, [PlannedTaskIn(key=f"t{i}", title=f"T{i}", acceptance_criteria=["x"]) for i in range(6)], SYSTEM)
    worker = next(m for m in team.members if m.role == "worker")

    async def race(task_id):
        await services.tasks.assign(task_id, worker.id, SYSTEM)
        return await asyncio.gather(
            services.tasks.start(task_id, SYSTEM),
            services.escalations.open(team_id=team.id, task_id=task_id, reason="stuck", failure_type="unknown",
                                      actor=SYSTEM),
            services.checkpoints.create(task_id, 1, {"text": "x"}, SYSTEM),
            services.messages.post(team_id=team.id, task_id=task_id, sender="w", content="hi"),
            return_exceptions=True)

    results = await asyncio.gather(*(race(t.id) for t in tasks))
    errors = [r for group in results for r in group if isinstance(r, BaseException)]
    # The start may lose to the escalation (a 409 IllegalTransition), never to a deadlock.
    assert not [e for e in errors if isinstance(e, TransientConflict | psycopg.errors.DeadlockDetected)]
    assert all(type(e).__name__ == "IllegalTransition" for e in errors)


async def test_a_unit_of_work_that_loses_a_serialization_conflict_runs_again(services):
    attempts = []

    async def work(tx):
        attempts.append(1)
        if len(attempts) < 3:
            await tx.conn.execute("SELECT 1")
            raise psycopg.errors.SerializationFailure("could not serialize access")
        return "done"

    assert await services.db.atomic(work) == "done"
    assert len(attempts) == 3


async def test_a_unit_of_work_that_keeps_deadlocking_is_a_conflict_not_a_database_outage(services):
    async def work(tx):
        raise psycopg.errors.DeadlockDetected("deadlock detected")

    with pytest.raises(TransientConflict) as conflict:
        await services.db.atomic(work, attempts=2)
    assert conflict.value.status == 409


async def test_an_unreachable_database_is_a_503(pg_server_url):
    from psycopg_pool import AsyncConnectionPool

    pool = AsyncConnectionPool("postgresql://postgres@127.0.0.1:1/none", open=False, timeout=1, min_size=0, max_size=1)
    await pool.open(wait=False)
    try:
        with pytest.raises(DependencyDown) as down:
            async with Database(pool).connection() as conn:
                await conn.execute("SELECT 1")
        assert down.value.status == 503
    finally:
        await pool.close()
