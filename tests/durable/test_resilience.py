"""Sharing work between backends, surviving SIGKILL, and refusing non-deterministic replays."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import time
from collections import Counter

import azure.durable_functions as df
import psycopg
import pytest

from .conftest import Running, StartBackend, completed_ids, stop, wait_for_status, wait_until_done
from .sample_app import DRIFTED


def count_replayed_episodes(dsn: str) -> int:
    with psycopg.connect(dsn) as conn:
        row = conn.execute(
            "SELECT count(*) FROM durable.history WHERE event LIKE '{\"EventType\":12,%%'"
        ).fetchone()
    assert row is not None
    return int(row[0])


async def test_two_backends_share_work_without_duplicating_an_episode(
    start_backend: StartBackend, empty_database_url: str
) -> None:
    first = await start_backend(episode_batch=2, activity_concurrency=2)
    second = await start_backend(episode_batch=2, activity_concurrency=2)
    ids = [await first.client.start_new("sequence", f"shared-{n}", ["a", "b", "c"]) for n in range(30)]
    for instance_id in ids:
        status = await wait_until_done(first.client, instance_id)
        assert status.output == ["Hello a", "Hello b", "Hello c"]
    assert first.backend.stats.episodes > 0 and second.backend.stats.episodes > 0
    assert first.backend.stats.activities > 0 and second.backend.stats.activities > 0
    total = first.backend.stats.episodes + second.backend.stats.episodes
    assert total == count_replayed_episodes(empty_database_url)
    for instance_id in ids:
        history = (await second.client.get_status(instance_id, show_history=True)).historyEvents
        assert len(completed_ids(history)) == 3 == len(set(completed_ids(history)))


async def kill_mid_run(dsn: str, lease_seconds: float, host_id: str, instances: int) -> list[str]:
    """A backend process runs `instances` x 6 slow steps and is SIGKILLed once some, but not all,
    activity work has been recorded; returns the instance ids."""
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "tests.durable.run_backend", dsn, str(lease_seconds), host_id,
        stdout=asyncio.subprocess.PIPE, cwd=os.getcwd(),
    )
    try:
        async with asyncio.timeout(20):
            line = (await process.stdout.readline()).decode().split()  # type: ignore[union-attr]
        assert line[0] == "READY", line
        doomed = df.DurableOrchestrationClient(await start_binding_for(line[1]))
        ids = [await doomed.start_new("slow_steps", f"crash-{n}", 6) for n in range(instances)]
        async with asyncio.timeout(15):
            while True:
                done = 0
                for instance_id in ids:
                    status = await doomed.get_status(instance_id, show_history=True)
                    done += len(completed_ids(status.historyEvents))
                if done >= 6:
                    break
                await asyncio.sleep(0.01)
    finally:
        process.send_signal(signal.SIGKILL)
        await process.wait()
    assert done < instances * 6
    return ids


async def assert_all_completed_once(running: Running, ids: list[str], timeout: float) -> None:
    for instance_id in ids:
        status = await wait_until_done(running.client, instance_id, timeout=timeout)
        assert status.runtime_status.value == "Completed"
        assert status.output == 0.3
        history = (await running.client.get_status(instance_id, show_history=True)).historyEvents
        assert sorted(Counter(completed_ids(history)).values()) == [1] * 6


@pytest.mark.slow  # a backend subprocess, SIGKILLed mid-run
async def test_sigkilled_backend_loses_nothing_and_a_fresh_one_finishes_every_instance(
    start_backend: StartBackend, empty_database_url: str
) -> None:
    ids = await kill_mid_run(empty_database_url, 1, "doomed-host", 8)
    fresh = await start_backend(lease_seconds=1, host_id="another-host")
    await assert_all_completed_once(fresh, ids, timeout=30)


@pytest.mark.slow  # a backend subprocess, SIGKILLed mid-run
async def test_a_sigkilled_host_restarted_with_its_identity_finishes_its_work_without_waiting_for_leases(
    start_backend: StartBackend, empty_database_url: str
) -> None:
    ids = await kill_mid_run(empty_database_url, 60, "restarted-host", 4)
    started = time.monotonic()
    restarted = await start_backend(lease_seconds=60, host_id="restarted-host")
    await assert_all_completed_once(restarted, ids, timeout=20)
    assert time.monotonic() - started < 20  # its dead run's 60 s leases were taken back at start


async def start_binding_for(rpc_base_url: str) -> str:
    """A client binding for an API served by another process (same shape as client_binding)."""
    import json

    return json.dumps(
        {"taskHubName": "ghostpirates", "creationUrls": {}, "managementUrls": {}, "rpcBaseUrl": rpc_base_url}
    )


async def test_replay_with_changed_orchestrator_code_fails_as_non_deterministic(
    start_backend: StartBackend,
) -> None:
    original = await start_backend()
    instance_id = await original.client.start_new("drifting", "drift-1")
    await wait_for_status(
        original.client, instance_id, lambda s: len(completed_ids(s.historyEvents)) == 1
    )
    await stop(original)
    changed: Running = await start_backend(DRIFTED)
    await changed.client.raise_event(instance_id, "Go", None)
    status = await wait_until_done(changed.client, instance_id)
    assert status.runtime_status.value == "Failed"
    assert status.output.startswith("Non-deterministic orchestrator 'drifting': action #0 was CallActivity")
    assert "'greet' when first run but is CallActivity 'double' on replay" in status.output
    history = (await changed.client.get_status(instance_id, show_history=True)).historyEvents
    assert [e["Name"] for e in history if e["EventType"] == "TaskScheduled"] == ["greet"]
