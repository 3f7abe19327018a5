"""`DurableBackend`: the Functions host + Durable Task extension role, on PostgreSQL.

The same `df.DFApp` orchestrators and activities, and the real `DurableOrchestrationClient`,
run unchanged against it. How it works: docs/durable-backend.md.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import secrets
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from pathlib import Path
from typing import Any
from uuid import UUID, uuid4

from psycopg import AsyncConnection, sql
from psycopg_pool import AsyncConnectionPool
from starlette.types import ASGIApp

from . import parse_cache
from .clock import DatabaseClock
from .history import utc_now
from .instances import InstanceAdmin
from .management import KEY_SEGMENT, build_management_app
from .registry import DurableFunctions
from .store import WorkerStore, channel_name, check_schema_name, connection_kwargs, create_schema
from .workers import ActivityWorker, EpisodeWorker, Wakeup, WorkerStats

log = logging.getLogger("devhost.durable")

HOST_ID_FILE = "durable-host.id"


def load_or_create_host_id(data_dir: Path) -> str:
    """The host identity kept in the data dir (created on first use): a host restarted on the
    same data dir is the same host, and takes its dead previous run's claims back at once."""
    path = data_dir / HOST_ID_FILE
    if path.exists():
        found = path.read_text().strip()
        if found:
            return found
    host_id = f"host-{uuid4().hex}"
    data_dir.mkdir(parents=True, exist_ok=True)
    path.write_text(host_id)
    return host_id


class DurableBackend:
    """Runs orchestrator episodes and activities of `functions` from tables in `schema`.

    Several backends (processes) may share one database; work is leased, so a killed process
    loses nothing and its claims are taken over once `lease_seconds` have passed. Leases are
    short and renewed by a heartbeat every `heartbeat_seconds` (default: 30% of the lease) while
    their work runs. `host_id` is this host's identity (devhost keeps it in its data dir): a
    backend starting with the identity of a dead previous run takes that run's claims back at
    once. Without one, each backend is a new host. Every commit is fenced by the claim's lease
    token, so a host that lost a lease (paused, partitioned) cannot commit over its successor.

    An episode that fails (raises while deciding or committing) is retried after
    `episode_retry_seconds`, doubling up to `lease_seconds`; after `max_episode_attempts` failed
    attempts its instance fails with the last error. `function_timeout` (seconds, host.json's
    `functionTimeout`; None = unbounded) bounds every activity call. All times come from the
    database's clock; `process_clock` is this process's (injectable to test clock skew).

    With `local_dispatch` (the default) an episode's commit leases the activity calls it schedules
    to this host, as far as it has free activity slots, and they start at once: no claim round
    trip, no lane to wake (the real host's orchestrations dispatch to the local worker the same
    way). The rest, and every retry after a lost lease, go through the claim as before.
    """

    def __init__(
        self,
        dsn: str,
        functions: DurableFunctions,
        *,
        task_hub: str = "ghostpirates",
        schema: str = "durable",
        activity_concurrency: int = 8,
        lease_seconds: float = 5,
        heartbeat_seconds: float | None = None,
        host_id: str | None = None,
        episode_lanes: int = 2,
        episode_batch: int = 16,
        poll_interval: float = 0.5,
        replay_inline_max_events: int = 200,
        max_episode_attempts: int = 5,
        episode_retry_seconds: float = 1.0,
        function_timeout: float | None = None,
        process_clock: Callable[[], datetime] = utc_now,
        system_key: str | None = None,
        local_dispatch: bool = True,
    ) -> None:
        if max_episode_attempts < 1:
            raise ValueError("max_episode_attempts must be at least 1")
        if function_timeout is not None and function_timeout <= 0:
            raise ValueError("function_timeout must be positive (None for no limit)")
        heartbeat = lease_seconds * 0.3 if heartbeat_seconds is None else heartbeat_seconds
        if not 0 < heartbeat < lease_seconds:
            raise ValueError("heartbeat_seconds must be positive and shorter than lease_seconds")
        self.dsn = dsn
        self.functions = functions
        self.task_hub = task_hub
        self.schema = check_schema_name(schema)
        self.activity_concurrency = activity_concurrency
        self.lease_seconds = lease_seconds
        self.heartbeat_seconds = heartbeat
        self.host_id = host_id or f"host-{uuid4().hex}"
        #: this run (a restarted host is a new run): whose worker caches the histories it wrote
        self.run_id = uuid4()
        self.episode_lanes = episode_lanes
        self.episode_batch = episode_batch
        self.poll_interval = poll_interval
        self.replay_inline_max_events = replay_inline_max_events
        self.max_episode_attempts = max_episode_attempts
        self.episode_retry_seconds = episode_retry_seconds
        self.function_timeout = function_timeout
        self.local_dispatch = local_dispatch
        self.clock = DatabaseClock(process_clock)
        self.stats = WorkerStats()
        self._pool: AsyncConnectionPool[AsyncConnection[Any]] | None = None
        self._store: WorkerStore | None = None
        self._listener: AsyncConnection[Any] | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._service_tasks: list[asyncio.Task[None]] = []
        self._held: set[UUID] = set()
        self._own_pids: set[int] = set()
        self._episodes_wake = Wakeup()
        self._activities_wake = Wakeup()
        self._replay_executor: ThreadPoolExecutor | None = None
        self._episodes: EpisodeWorker | None = None
        self._activities: ActivityWorker | None = None
        #: What the management API demands (`code=`, `x-functions-key`, or in the rpc path).
        self.system_key = system_key or secrets.token_urlsafe(32)
        self.management_app: ASGIApp = build_management_app(self.admin, functions, system_key=self.system_key)

    def admin(self) -> InstanceAdmin:
        """Management operations without HTTP (start, status, events, terminate, purge)."""
        if self._pool is None:
            raise RuntimeError("DurableBackend.start() has not been awaited")
        return InstanceAdmin(self._pool, on_message=self._episodes_wake.wake_one, now=self.clock.now)

    async def start(self) -> None:
        """Create the schema if needed, then start listening and the worker loops."""
        parse_cache.install()
        await create_schema(self.dsn, self.schema)
        self._pool = AsyncConnectionPool(
            self.dsn,
            min_size=2,
            max_size=4 + self.episode_lanes * 4,
            kwargs=connection_kwargs(self.schema),
            configure=self._remember_pid,
            open=False,
            timeout=30,
        )
        await self._pool.open(wait=True)
        store = WorkerStore(self._pool, self.lease_seconds, self.clock, owner=self.host_id,
                            holder=self.run_id, counters=self.stats)
        self._store = store
        await store.next_due()  # calibrates the clock before anything is stamped
        instances, activities = await store.reclaim_own()
        if instances or activities:
            log.info("durable host %s took back %d episode and %d activity claims of its previous run",
                     self.host_id, instances, activities)
        self._replay_executor = ThreadPoolExecutor(1, thread_name_prefix="durable-replay")
        self._episodes = EpisodeWorker(
            store, self.functions.orchestrators, self._replay_executor, self.stats, self._held,
            batch=self.episode_batch, poll_interval=self.poll_interval,
            inline_max_events=self.replay_inline_max_events,
            max_attempts=self.max_episode_attempts, retry_seconds=self.episode_retry_seconds,
        )
        self._activities = ActivityWorker(
            store, self.functions.activities, self._activity_pool, self.stats, self._held,
            concurrency=self.activity_concurrency, poll_interval=self.poll_interval,
            function_timeout=self.function_timeout,
        )
        self._episodes.on_scheduled = self._activities_wake.wake
        if self.local_dispatch:
            self._episodes.reserve_local = self._activities.reserve
            self._episodes.adopt_local = self._activities.adopt
        self._episodes.on_messages = self._episodes_wake.wake
        self._activities.on_recorded = self._completions_recorded
        self._listener = await AsyncConnection.connect(self.dsn, autocommit=True)
        await self._listener.execute(
            sql.SQL("LISTEN {}").format(sql.Identifier(channel_name(self.schema)))
        )
        spawn = asyncio.create_task
        self._service_tasks = [
            spawn(self._listen(), name="durable listen"),
            spawn(self._renew_leases(), name="durable leases"),
            spawn(self._activities.record_completions(), name="durable completions"),
        ]
        self._tasks = [
            spawn(self._episodes.run(self._episodes_wake.new(), self._episodes_wake), name=f"durable episodes {n}")
            for n in range(self.episode_lanes)
        ]
        activity_wake = self._activities_wake.new()
        self._tasks.append(spawn(self._activities.run(activity_wake), name="durable activities"))

    async def stop(self, grace: float = 10) -> None:
        """Stop claiming, let running work finish within `grace`, release what is left."""
        episodes, activities = self._episodes, self._activities
        if episodes is None or activities is None:
            return
        loop = asyncio.get_running_loop()
        deadline = loop.time() + grace
        episodes.stopping = activities.stopping = True
        self._episodes_wake.wake()
        self._activities_wake.wake()
        activities.slot_free.set()
        _, late = await asyncio.wait(self._tasks, timeout=max(0.1, deadline - loop.time()))
        running = list(activities.running)
        if running:
            await asyncio.wait(running, timeout=max(0.0, deadline - loop.time()))
        for task in [*late, *activities.running]:
            task.cancel()
        await asyncio.gather(*late, *running, return_exceptions=True)
        await activities.drain()
        if self._held and self._store is not None:
            with contextlib.suppress(Exception):
                await self._store.release(list(self._held))
        for task in self._service_tasks:
            task.cancel()
        await asyncio.gather(*self._service_tasks, return_exceptions=True)
        if self._listener is not None:
            await self._listener.close()
        if self._pool is not None:
            await self._pool.close()
        if self._replay_executor is not None:
            self._replay_executor.shutdown(wait=False, cancel_futures=True)
        activities.shutdown()
        self._episodes = self._activities = None

    def client_binding(self, rpc_base_url: str) -> str:
        """The JSON a `durable_client_input` parameter receives (protocol §5), with the system key:
        `code=` on the webhook URLs as the Functions host writes them, and a path segment in
        `rpcBaseUrl`, to which the SDK only appends paths (management.py)."""
        base = rpc_base_url if rpc_base_url.endswith("/") else rpc_base_url + "/"
        query = f"taskHub={self.task_hub}&connection=Storage&code={self.system_key}"
        instance = f"{base}instances/INSTANCEID"
        create = f"{base}orchestrators/{{functionName}}[/{{instanceId}}]"
        return json.dumps(
            {
                "taskHubName": self.task_hub,
                "creationUrls": {
                    "createNewInstancePostUri": f"{create}?{query}",
                    "createAndWaitOnNewInstancePostUri": (
                        f"{create}?timeout={{timeoutInSeconds}}&pollingInterval={{intervalInSeconds}}&{query}"
                    ),
                },
                "managementUrls": {
                    "id": "INSTANCEID",
                    "statusQueryGetUri": f"{instance}?{query}",
                    "sendEventPostUri": f"{instance}/raiseEvent/{{eventName}}?{query}",
                    "terminatePostUri": f"{instance}/terminate?reason={{text}}&{query}",
                    "rewindPostUri": f"{instance}/rewind?reason={{text}}&{query}",
                    "purgeHistoryDeleteUri": f"{instance}?{query}",
                    "restartPostUri": f"{instance}/restart?{query}",
                    "suspendPostUri": f"{instance}/suspend?reason={{text}}&{query}",
                    "resumePostUri": f"{instance}/resume?reason={{text}}&{query}",
                },
                "rpcBaseUrl": f"{base}{KEY_SEGMENT}/{self.system_key}/",
                "requiredQueryStringParameters": query,
            }
        )

    def _completions_recorded(self, count: int) -> None:
        """Wake one episode lane for what one batch can claim, every lane for more."""
        (self._episodes_wake.wake_one if count <= self.episode_batch else self._episodes_wake.wake)()

    def _activity_pool(self) -> ThreadPoolExecutor:
        return ThreadPoolExecutor(self.activity_concurrency, thread_name_prefix="durable-activity")

    async def _remember_pid(self, conn: AsyncConnection[Any]) -> None:
        self._own_pids.add(conn.info.backend_pid)

    async def _listen(self) -> None:
        """Wake the loops on NOTIFY; if the connection drops, the loops still poll."""
        assert self._listener is not None
        try:
            async for note in self._listener.notifies():
                if note.pid in self._own_pids:  # woken locally already, without the round trip
                    continue
                (self._activities_wake if note.payload == "a" else self._episodes_wake).wake()
        except Exception:
            log.exception("durable LISTEN connection lost; falling back to polling")

    async def _renew_leases(self) -> None:
        """The heartbeat: keep this worker's claims alive while their work runs (LLM calls can
        be slow); a host that stops beating loses them within `lease_seconds`."""
        while True:
            await asyncio.sleep(self.heartbeat_seconds)
            await self.heartbeat()

    async def heartbeat(self) -> None:
        """Renew the leases of every claim held now (one round trip; nothing when idle)."""
        if self._held and self._store is not None:
            try:
                await self._store.renew(list(self._held))
            except Exception:
                log.exception("renewing durable leases failed")
