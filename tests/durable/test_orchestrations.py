"""Each orchestration shape of the sample app runs to the right result through the real client."""

from __future__ import annotations

import asyncio

import pytest

from .conftest import Running, StartBackend, wait_for_status, wait_until_done
from .sample_app import FUNCTIONS_LIST


async def test_sequence_of_activities_returns_results_in_order(durable: Running) -> None:
    instance_id = await durable.client.start_new("sequence", None, ["A", "B", "C"])
    status = await wait_until_done(durable.client, instance_id)
    assert status.runtime_status.value == "Completed"
    assert status.output == ["Hello A", "Hello B", "Hello C"]
    assert status.input_ == '["A", "B", "C"]'


async def test_fan_out_fan_in_sums_all_parallel_results(durable: Running) -> None:
    instance_id = await durable.client.start_new("fan_out", None, 20)
    status = await wait_until_done(durable.client, instance_id)
    assert status.output == sum(n * 2 for n in range(20))


async def test_durable_timer_fires_after_its_due_time(durable: Running) -> None:
    instance_id = await durable.client.start_new("timer")
    status = await wait_until_done(durable.client, instance_id)
    assert status.runtime_status.value == "Completed"
    assert status.output >= 0.3


async def test_sub_orchestrations_return_their_outputs_to_the_parent(durable: Running) -> None:
    instance_id = await durable.client.start_new("parent", "family")
    status = await wait_until_done(durable.client, instance_id)
    assert status.output == {"sequence": ["Hello Ada"], "fan_out": 12}
    child = await durable.client.get_status("family-child")
    assert child.runtime_status.value == "Completed"
    assert child.output == 12


async def test_retry_fails_twice_then_succeeds_on_third_attempt(durable: Running) -> None:
    instance_id = await durable.client.start_new("retrying", "retry-ok")
    status = await wait_until_done(durable.client, instance_id)
    assert status.output == "ok after 3"
    history = (await durable.client.get_status(instance_id, show_history=True)).historyEvents
    kinds = [e["EventType"] for e in history]
    assert kinds.count("TaskFailed") == 2
    assert kinds.count("TimerFired") == 2


async def test_exhausted_retries_raise_a_catchable_exception_in_the_orchestrator(durable: Running) -> None:
    instance_id = await durable.client.start_new("retry_exhausted")
    status = await wait_until_done(durable.client, instance_id)
    assert status.output == {
        "caught": "Activity function 'always_fails' failed: ValueError: disk full ",
        "then": "Hello recovery",
    }
    history = (await durable.client.get_status(instance_id, show_history=True)).historyEvents
    # two attempts, two timers (the retry delay and DTFx's final zero-delay timer)
    assert [e["EventType"] for e in history].count("TimerCreated") == 2


async def test_orchestrator_exception_fails_the_instance_with_its_message(durable: Running) -> None:
    instance_id = await durable.client.start_new("failing")
    status = await wait_until_done(durable.client, instance_id)
    assert status.runtime_status.value == "Failed"
    assert "orchestrator gave up" in status.output


async def test_raised_event_completes_the_waiting_orchestration(durable: Running) -> None:
    instance_id = await durable.client.start_new("approval")
    waiting = await wait_for_status(
        durable.client, instance_id, lambda s: s.custom_status == {"stage": "waiting for approval"}
    )
    assert waiting.runtime_status.value == "Running"
    await durable.client.raise_event(instance_id, "Approve", {"by": "ops"})
    status = await wait_until_done(durable.client, instance_id)
    assert status.output == {"approved": {"by": "ops"}}
    assert status.custom_status == {"stage": "decided"}


async def test_event_beats_timer_and_the_cancelled_timer_never_fires(durable: Running) -> None:
    instance_id = await durable.client.start_new("approval_or_timeout")
    await wait_for_status(durable.client, instance_id, lambda s: s.runtime_status.value == "Running")
    await durable.client.raise_event(instance_id, "Approve", True)
    status = await wait_until_done(durable.client, instance_id)
    assert status.output == "approved"


async def test_raise_event_to_unknown_or_finished_instance_is_refused(durable: Running) -> None:
    with pytest.raises(Exception, match="No instance"):
        await durable.client.raise_event("nobody", "Approve", 1)
    instance_id = await durable.client.start_new("sequence", None, ["x"])
    await wait_until_done(durable.client, instance_id)
    with pytest.raises(Exception, match="is gone"):
        await durable.client.raise_event(instance_id, "Approve", 1)


async def test_terminate_stops_a_waiting_instance_with_the_reason(durable: Running) -> None:
    instance_id = await durable.client.start_new("approval")
    await wait_for_status(durable.client, instance_id, lambda s: s.runtime_status.value == "Running")
    await durable.client.terminate(instance_id, "no longer needed")
    status = await wait_until_done(durable.client, instance_id)
    assert status.runtime_status.value == "Terminated"
    assert status.output == "no longer needed"


async def test_suspended_instance_ignores_events_until_resumed(durable: Running) -> None:
    instance_id = await durable.client.start_new("approval")
    await wait_for_status(durable.client, instance_id, lambda s: s.runtime_status.value == "Running")
    await durable.client.suspend(instance_id, "hold")
    await wait_for_status(durable.client, instance_id, lambda s: s.runtime_status.value == "Suspended")
    await durable.client.raise_event(instance_id, "Approve", "yes")
    await asyncio.sleep(0.3)
    assert (await durable.client.get_status(instance_id)).runtime_status.value == "Suspended"
    await durable.client.resume(instance_id, "go on")
    status = await wait_until_done(durable.client, instance_id)
    assert status.output == {"approved": "yes"}


async def test_purge_deletes_a_finished_instance_and_its_history(durable: Running) -> None:
    instance_id = await durable.client.start_new("sequence", None, ["x"])
    await wait_until_done(durable.client, instance_id)
    result = await durable.client.purge_instance_history(instance_id)
    assert result.instances_deleted == 1
    assert not await durable.client.get_status(instance_id)
    assert (await durable.client.purge_instance_history(instance_id)).instances_deleted == 0


async def test_get_status_with_history_lists_scheduled_and_completed_events(durable: Running) -> None:
    instance_id = await durable.client.start_new("sequence", None, ["A", "B"])
    await wait_until_done(durable.client, instance_id)
    status = await durable.client.get_status(instance_id, show_history=True, show_history_output=True)
    kinds = [e["EventType"] for e in status.historyEvents]
    assert kinds == [
        "ExecutionStarted", "TaskScheduled", "TaskCompleted", "TaskScheduled", "TaskCompleted",
        "ExecutionCompleted",
    ]
    assert [e["Result"] for e in status.historyEvents if e["EventType"] == "TaskCompleted"] == [
        "Hello A", "Hello B",
    ]


async def test_status_queries_filter_by_runtime_status_and_prefix(durable: Running) -> None:
    import azure.durable_functions as df

    done = await durable.client.start_new("sequence", "q-done", ["x"])
    await wait_until_done(durable.client, done)
    waiting = await durable.client.start_new("approval", "q-waiting")
    await wait_for_status(durable.client, waiting, lambda s: s.runtime_status.value == "Running")
    running = await durable.client.get_status_by(runtime_status=[df.OrchestrationRuntimeStatus.Running])
    assert [s.instance_id for s in running] == ["q-waiting"]
    everything = await durable.client.get_status_all()
    assert {s.instance_id for s in everything} == {"q-done", "q-waiting"}


async def test_starting_a_live_instance_id_again_is_refused(durable: Running) -> None:
    await durable.client.start_new("approval", "only-once")
    with pytest.raises(Exception, match="already running"):
        await durable.client.start_new("approval", "only-once")


async def test_unknown_orchestrator_is_a_client_error(durable: Running) -> None:
    with pytest.raises(Exception, match="doesn't exist"):
        await durable.client.start_new("no_such_orchestrator")


async def test_client_binding_works_in_a_non_http_function(durable: Running) -> None:
    kickoff = next(f for f in FUNCTIONS_LIST if f.get_function_name() == "nightly_kickoff")
    await kickoff.get_user_function()(timer_info=None, client=durable.binding)
    status = await wait_until_done(durable.client, "nightly")
    assert status.output == ["Hello night"]


async def test_an_episode_runs_the_activities_it_schedules_on_its_own_host_without_a_claim(
        durable: Running) -> None:
    """Local dispatch: the commit that schedules an activity leases it to the committing host,
    which starts it at once; no claim query takes any call."""
    instance_id = await durable.client.start_new("sequence", None, ["A", "B", "C", "D"])
    status = await wait_until_done(durable.client, instance_id)
    assert status.output == ["Hello A", "Hello B", "Hello C", "Hello D"]
    stats = durable.backend.stats
    assert (stats.activities_dispatched, stats.activities_claimed, stats.activities) == (4, 0, 4)


async def test_local_dispatch_takes_only_free_slots_and_a_claim_runs_the_rest(start_backend: StartBackend) -> None:
    running = await start_backend(activity_concurrency=3)
    instance_id = await running.client.start_new("fan_out", None, 10)
    status = await wait_until_done(running.client, instance_id)
    assert status.output == sum(n * 2 for n in range(10))
    stats = running.backend.stats
    assert stats.activities_dispatched == 3 and stats.activities_claimed == 7 and stats.activities == 10


async def test_without_local_dispatch_every_activity_is_claimed(start_backend: StartBackend) -> None:
    running = await start_backend(local_dispatch=False)
    instance_id = await running.client.start_new("sequence", None, ["A", "B"])
    assert (await wait_until_done(running.client, instance_id)).output == ["Hello A", "Hello B"]
    assert (running.backend.stats.activities_dispatched, running.backend.stats.activities_claimed) == (0, 2)
