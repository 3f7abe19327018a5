"""Episodes that keep failing, activities over functionTimeout, and hosts with skewed clocks."""

from __future__ import annotations

import asyncio
import json
import time
from datetime import UTC, datetime, timedelta

import httpx
import psycopg

from devhost.durable.history import utc_now

from . import sample_app
from .conftest import Running, StartBackend, completed_ids, wait_for_status, wait_until_done

POISON_OPTIONS = {"max_episode_attempts": 3, "episode_retry_seconds": 0.05}


def sql(dsn: str, statement: str, params: tuple[object, ...] = ()) -> list[tuple[object, ...]]:
    with psycopg.connect(dsn, autocommit=True) as conn:
        cur = conn.execute(statement, params or None)  # type: ignore[arg-type]
        return cur.fetchall() if cur.description else []


def refuse_history_rows(dsn: str, *, matching: str, times: int | None) -> None:
    """A real database fault: inserting a history row whose text contains `matching` raises
    (the first `times` times only, counted by a sequence, which a rollback does not undo)."""
    limit = "NULL" if times is None else str(times)
    sql(dsn, "CREATE SEQUENCE durable.refusals")
    sql(dsn, f"""
        CREATE FUNCTION durable.refuse_history() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            IF NEW.event LIKE '%{matching}%' AND ({limit} IS NULL OR nextval('durable.refusals') <= {limit})
            THEN RAISE EXCEPTION 'history row refused by the test';
            END IF;
            RETURN NEW;
        END $$""")
    sql(dsn, "CREATE TRIGGER refuse BEFORE INSERT ON durable.history "
             "FOR EACH ROW EXECUTE FUNCTION durable.refuse_history()")


# --- poison episodes ------------------------------------------------------------------------


async def test_an_undecodable_message_fails_the_instance_after_the_attempt_limit_and_tells_the_parent(
    start_backend: StartBackend, empty_database_url: str
) -> None:
    running = await start_backend(**POISON_OPTIONS, lease_seconds=30)  # backoff, not lease expiry
    parent = await running.client.start_new("supervise_approval", "poison")
    child = f"{parent}-child"
    await wait_for_status(running.client, child, lambda s: s.custom_status == {"stage": "waiting for approval"})
    sql(empty_database_url, "INSERT INTO durable.inbox (instance_id, event) VALUES (%s, %s)",
        (child, '{"EventType": 15, "Name": "Approve", "Input": '))  # truncated: cannot be decoded
    started = time.monotonic()
    status = await wait_until_done(running.client, child, timeout=10)
    assert time.monotonic() - started < 10  # three attempts with backoff, not three lease expiries
    assert status.runtime_status.value == "Failed"
    assert status.output.startswith("Orchestrator function 'approval' failed: JSONDecodeError: ")
    assert "the episode failed 3 times" in status.output
    outcome = await wait_until_done(running.client, parent)
    assert outcome.output == {"child_failed": status.output + " "}  # the SDK adds " \\n {Details}"
    assert running.backend.stats.episodes_failed == 3
    assert running.backend.stats.instances_given_up == 1
    assert sql(empty_database_url, "SELECT count(*) FROM durable.inbox WHERE instance_id = %s", (child,)) == [(0,)]


async def test_a_transient_commit_failure_is_retried_and_the_instance_completes(
    start_backend: StartBackend, empty_database_url: str
) -> None:
    running = await start_backend(**POISON_OPTIONS)
    refuse_history_rows(empty_database_url, matching="Transient", times=1)
    instance_id = await running.client.start_new("sequence", "transient", ["Transient"])
    status = await wait_until_done(running.client, instance_id, timeout=10)
    assert status.runtime_status.value == "Completed"
    assert status.output == ["Hello Transient"]
    assert running.backend.stats.episodes_failed == 1
    assert running.backend.stats.instances_given_up == 0
    attempts = sql(empty_database_url,
                   "SELECT episode_attempts, last_error FROM durable.instances WHERE instance_id = %s",
                   (instance_id,))
    assert attempts == [(0, None)]  # a committed episode resets the count


async def test_a_commit_that_always_fails_ends_the_instance_failed_with_the_database_error(
    start_backend: StartBackend, empty_database_url: str
) -> None:
    running = await start_backend(**POISON_OPTIONS)
    # LIKE is case-sensitive: the failure reason written at the end ("...refused by the test")
    # does not match, so only the instance's own episodes are refused
    refuse_history_rows(empty_database_url, matching="Refused", times=None)
    instance_id = await running.client.start_new("sequence", "refused", ["Refused"])
    status = await wait_until_done(running.client, instance_id, timeout=10)
    assert status.runtime_status.value == "Failed"
    assert status.output.startswith(
        "Orchestrator function 'sequence' failed: RaiseException: history row refused by the test"
    )
    assert running.backend.stats.episodes_failed == 3


async def test_an_episode_whose_worker_never_finishes_is_given_up(
    start_backend: StartBackend, empty_database_url: str
) -> None:
    running = await start_backend(**POISON_OPTIONS)
    instance_id = await running.client.start_new("approval", "crashing")
    await wait_for_status(running.client, instance_id, lambda s: s.runtime_status.value == "Running")
    # what three workers killed in the middle of this instance's episode leave behind
    sql(empty_database_url, "UPDATE durable.instances SET episode_attempts = 3 WHERE instance_id = %s",
        (instance_id,))
    await running.client.raise_event(instance_id, "Approve", True)
    status = await wait_until_done(running.client, instance_id)
    assert status.runtime_status.value == "Failed"
    assert "the episode never finished" in status.output


async def test_an_orchestrator_raising_a_base_exception_fails_and_the_worker_keeps_going(
    durable: Running,
) -> None:
    instance_id = await durable.client.start_new("aborting", "abort")
    status = await wait_until_done(durable.client, instance_id)
    assert status.runtime_status.value == "Failed"
    assert status.output == "Orchestrator function 'aborting' failed: Abort: orchestrator aborted the replay"
    after = await durable.client.start_new("sequence", "after-abort", ["still here"])
    assert (await wait_until_done(durable.client, after)).output == ["Hello still here"]
    # The abort came in the episode after the activity, in the live session: no lane died of it.
    assert [t.get_name() for t in durable.backend._tasks if t.done()] == []


async def test_a_late_completion_after_the_instance_failed_keeps_its_failure_reason(
    start_backend: StartBackend, empty_database_url: str
) -> None:
    running = await start_backend()
    instance_id = await running.client.start_new("fail_fast", "late")
    status = await wait_until_done(running.client, instance_id)
    assert status.runtime_status.value == "Failed"
    reason = status.output
    assert "ValueError: fast" in reason
    async with asyncio.timeout(10):  # the slow call completes after the end and is discarded
        while sql(empty_database_url, "SELECT count(*) FROM durable.activities") != [(0,)] or sql(
            empty_database_url, "SELECT count(*) FROM durable.inbox"
        ) != [(0,)]:
            await asyncio.sleep(0.05)
    assert (await running.client.get_status(instance_id)).output == reason


# --- functionTimeout ------------------------------------------------------------------------


async def test_a_hung_sync_activity_times_out_like_the_host_and_the_retry_policy_applies(
    start_backend: StartBackend,
) -> None:
    sample_app.RELEASE_HUNG.clear()
    sample_app.HUNG_RETURNS.clear()
    running = await start_backend(function_timeout=0.3, activity_concurrency=1)
    try:
        instance_id = await running.client.start_new("hung_with_retry", "hung-sync", "hang")
        status = await wait_until_done(running.client, instance_id, timeout=15)
    finally:
        sample_app.RELEASE_HUNG.set()
    assert status.runtime_status.value == "Completed"
    assert status.output == {
        "caught": "Activity function 'hang' failed: Timeout value of 00:00:00.3000000 was exceeded by "
                  "function: Functions.hang_forever ",
        "failure_type": "network_timeout",
        # one activity slot, two threads left hanging: later sync calls still run
        "then": "Hello after the timeout",
    }
    history = (await running.client.get_status(instance_id, show_history=True)).historyEvents
    failed = [e for e in history if e["EventType"] == "TaskFailed"]
    assert len(failed) == 2  # both attempts, each abandoned after functionTimeout
    assert json.loads(failed[0]["Details"])["ClassName"] == "Microsoft.Azure.WebJobs.Host.FunctionTimeoutException"
    assert running.backend.stats.activities_timed_out == 2
    async with asyncio.timeout(5):
        while len(sample_app.HUNG_RETURNS) < 2:
            await asyncio.sleep(0.02)
    await asyncio.sleep(0.3)  # the late results had their chance to be recorded
    history = (
        await running.client.get_status(instance_id, show_history=True, show_history_output=True)
    ).historyEvents
    assert [e["Result"] for e in history if e["EventType"] == "TaskCompleted"] == ["Hello after the timeout"]


async def test_a_hung_async_activity_is_cancelled_at_the_timeout(start_backend: StartBackend) -> None:
    running = await start_backend(function_timeout=0.2)
    instance_id = await running.client.start_new("hung_with_retry", "hung-async", "hang_async")
    status = await wait_until_done(running.client, instance_id, timeout=10)
    assert status.output["caught"].startswith(
        "Activity function 'hang_async' failed: Timeout value of 00:00:00.2000000 was exceeded by "
        "function: Functions.hang_async"
    )
    assert status.output["failure_type"] == "network_timeout"
    assert not running.backend._activities.running  # type: ignore[union-attr]  # nothing left running


# --- one clock ------------------------------------------------------------------------------


async def test_hosts_with_skewed_clocks_fire_timers_and_lease_work_by_the_database_clock(
    start_backend: StartBackend, empty_database_url: str
) -> None:
    ahead = await start_backend(process_clock=lambda: utc_now() + timedelta(hours=1), episode_batch=1)
    behind = await start_backend(process_clock=lambda: utc_now() - timedelta(hours=1), episode_batch=1)
    started = time.monotonic()
    timers = [await ahead.client.start_new("timer", f"timer-{n}") for n in range(4)]
    retries = [await behind.client.start_new("retrying", f"retry-{n}") for n in range(2)]
    slow = await ahead.client.start_new("slow_steps", "slow", 3)
    for instance_id in timers:
        status = await wait_until_done(ahead.client, instance_id, timeout=10)
        # neither an hour late (the host ahead) nor at once (the host behind): 300 ms of orchestration time
        assert 0.3 <= status.output < 5, status.output
    assert time.monotonic() - started < 10
    for instance_id in retries:
        assert (await wait_until_done(behind.client, instance_id, timeout=10)).output == "ok after 3"
    leases = sql(empty_database_url,
                 "SELECT extract(epoch FROM lease_expires - now()) FROM durable.activities "
                 "WHERE lease_expires IS NOT NULL")
    assert all(0 < float(left) <= 30 for (left,) in leases), leases  # type: ignore[arg-type]
    assert (await wait_until_done(ahead.client, slow, timeout=10)).output == 0.15
    database_now = sql(empty_database_url, "SELECT now()")[0][0]
    assert isinstance(database_now, datetime)
    for instance_id in [*timers, *retries, slow]:
        history = (await ahead.client.get_status(instance_id, show_history=True)).historyEvents
        stamps = [datetime.fromisoformat(e["Timestamp"].replace("Z", "+00:00")) for e in history]
        assert all(abs((database_now - stamp).total_seconds()) < 60 for stamp in stamps), instance_id
        assert stamps == sorted(stamps)
        assert len(completed_ids(history)) == len(set(completed_ids(history)))
    assert ahead.backend.stats.episodes > 0 and behind.backend.stats.episodes > 0
    assert abs(ahead.backend.clock.now() - datetime.now(UTC)) < timedelta(seconds=5)


async def test_a_body_that_is_not_json_is_refused_instead_of_poisoning_the_instance(
    durable: Running,
) -> None:
    rpc = json.loads(durable.binding)["rpcBaseUrl"]
    async with httpx.AsyncClient(base_url=rpc) as http:
        started = await http.post("orchestrators/approval/not-json", content=b"{not json")
        assert started.status_code == 400
        assert started.json()["ExceptionMessage"].startswith("The request body is not valid JSON")
        assert (await http.get("instances/not-json")).status_code == 404
        instance_id = await durable.client.start_new("approval", "json-only")
        raised = await http.post(f"instances/{instance_id}/raiseEvent/Approve", content=b"yes")
        assert raised.status_code == 400
        await durable.client.raise_event(instance_id, "Approve", "yes")
    assert (await wait_until_done(durable.client, instance_id)).output == {"approved": "yes"}


async def test_a_schema_from_before_the_attempt_columns_is_upgraded_in_place(
    start_backend: StartBackend, empty_database_url: str
) -> None:
    from .conftest import stop

    first = await start_backend()
    kept = await first.client.start_new("approval", "from-before")
    await wait_for_status(first.client, kept, lambda s: s.runtime_status.value == "Running")
    await stop(first)
    sql(empty_database_url, "ALTER TABLE durable.instances DROP COLUMN episode_attempts, DROP COLUMN last_error")
    upgraded = await start_backend()
    await upgraded.client.raise_event(kept, "Approve", True)
    assert (await wait_until_done(upgraded.client, kept)).output == {"approved": True}
