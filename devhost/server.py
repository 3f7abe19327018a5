"""DevHost: runs the function app locally the way the Functions host does in Azure.

Start order: listeners bound -> database (DATABASE_URL or embedded) -> Web PubSub emulator settings
-> migrations + demo login -> import the app and index it -> Durable backend -> HTTP and emulator
servers -> timers -> banner. Stop order (SIGTERM/SIGINT): refuse new requests and drain running
ones (bounded) -> stop timers -> stop HTTP -> stop the Durable backend (running activities are
released for another worker) -> close the emulator -> stop embedded Postgres if started here.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import signal
import socket
import sys
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from devhost.app_index import AppIndex, AppLoadError, index_functions, load_app, read_host_settings
from devhost.asgi import MANAGEMENT_PREFIX, FunctionsHttpApp
from devhost.banner import Banner, llm_provider, load_demo_login, redis_label, save_demo_login
from devhost.invoker import BindingError
from devhost.postgres import EmbeddedPostgres, EmbeddedPostgresError
from devhost.timers import TimerScheduler
from devhost.wiring import Listener, bind, plan_functions

__all__ = ["DevHost", "HostStartError", "ServeOptions", "serve"]

logger = logging.getLogger("devhost")

DEFAULT_TASK_HUB = "TestHubName"  # the Durable extension's default hub name outside Azure


class HostStartError(RuntimeError):
    """devhost cannot start the app (bad app dir, missing backend, unsupported binding, ...)."""


@dataclass
class ServeOptions:
    host: str = "127.0.0.1"
    port: int = 7071
    pubsub_port: int = 7072
    data_dir: Path = Path(".devhost")
    app_dir: Path = Path(".")
    grace_seconds: float = 10.0
    migrate: bool = True
    access_log: bool = False
    activity_concurrency: int = 8
    local_model: bool = False  #: serve the tiny local model (devhost/local_model.py) and use it for both agents
    #: A Web PubSub emulator already running (`python -m devhost.pubsub`) to use instead of starting
    #: one: how several hosts share one (its key is read from `<data_dir>/pubsub.key`).
    pubsub_url: str | None = None
    #: How long a Durable claim outlives a host that stopped renewing it (a killed host's work is
    #: taken over by the others after this); renewed by a heartbeat every 30% of it. A host
    #: restarted on the same data dir takes its own dead run's claims back at once.
    lease_seconds: float = 5.0


def _bind(host: str, port: int) -> socket.socket:
    try:
        return bind(host, port)
    except OSError as exc:
        raise HostStartError(f"cannot listen on {host}:{port}: {exc.strerror}") from exc


def function_executor() -> ThreadPoolExecutor:
    """The thread pool of sync functions, sized as the Python worker sizes it."""
    threads = int(os.environ.get("PYTHON_THREADPOOL_THREAD_COUNT", min(32, (os.cpu_count() or 1) + 4)))
    return ThreadPoolExecutor(max_workers=threads, thread_name_prefix="devhost-fn")


def _client_host(host: str) -> str:
    """How this machine reaches a server bound to `host` (wildcards mean loopback)."""
    return "127.0.0.1" if host in ("0.0.0.0", "::", "") else host


async def _close_durable_client_session() -> None:
    """The durable SDK keeps one global aiohttp session for its client calls and, having no
    shutdown hook in the worker, never closes it; close it so that exit is clean."""
    from azure.durable_functions.models.utils import http_utils

    close = getattr(http_utils, "_close_session", None)
    if close is not None:
        await close()


def _api_root(path_prefix: str) -> str:
    """Where the API lives: under the route prefix, or under /api when the prefix is empty (this
    project's host.json sets "" so that the dashboard can live at /, and its routes start with api/)."""
    return path_prefix or "/api"


def _load_local_settings(app_dir: Path) -> None:
    """`Values` of local.settings.json become environment variables, as Core Tools does; variables
    already set win."""
    path = app_dir / "local.settings.json"
    if not path.exists():
        return
    values = json.loads(path.read_text(encoding="utf-8")).get("Values") or {}
    for key, value in values.items():
        os.environ.setdefault(str(key), str(value))


async def _close_app_context() -> None:
    """Close the app's pool and clients if the app built them (only apps with `shared.runtime` do)."""
    runtime = sys.modules.get("shared.runtime")
    reset = getattr(runtime, "reset_context", None)
    if reset is not None:
        try:
            await reset()
        except Exception:
            logger.exception("closing the app's context failed")


@dataclass
class DevHost:
    """One running devhost; `start()` then `stop()` (or `run()` which waits for a signal)."""

    options: ServeOptions
    index: AppIndex | None = None
    port: int = 0
    pubsub_port: int | None = None
    database_url: str = ""
    banner: Banner | None = None
    timers: TimerScheduler | None = None
    http_app: FunctionsHttpApp | None = None
    _embedded: EmbeddedPostgres | None = None
    _emulator: Any = None
    _backend: Any = None
    _http: Listener | None = None
    _pubsub: Listener | None = None
    _executor: ThreadPoolExecutor | None = None
    _local_model: Any = None
    _stopped: bool = False

    @property
    def base_url(self) -> str:
        return f"http://{_client_host(self.options.host)}:{self.port}"

    async def start(self) -> None:
        options = self.options
        app_dir = options.app_dir.resolve()
        if not (app_dir / "function_app.py").exists():
            raise HostStartError(f"{app_dir} has no function_app.py (use --app-dir)")
        if str(app_dir) not in sys.path:
            sys.path.insert(0, str(app_dir))
        _load_local_settings(app_dir)
        if options.local_model:
            await self._start_local_model()
        http_sock = _bind(options.host, options.port)
        self.port = http_sock.getsockname()[1]
        settings = read_host_settings(app_dir)
        database_label = await self._start_database()
        pubsub_sock = self._prepare_pubsub(settings.path_prefix)
        demo = await self._prepare_database()
        self.index = index_functions(load_app(app_dir))
        for entry in self.index.unserved:
            logger.warning("function %s: devhost does not fire %s triggers", entry.name, entry.trigger_type)
        client_binding = await self._start_durable(
            settings.hub_name or DEFAULT_TASK_HUB, settings.function_timeout
        )
        try:
            plan = plan_functions(self.index, client_binding=client_binding, app_dir=app_dir)
        except (BindingError, ValueError) as exc:
            raise HostStartError(str(exc)) from exc
        self._executor = function_executor()
        self.http_app = FunctionsHttpApp(
            router=plan.router,
            path_prefix=settings.path_prefix,
            executor=self._executor,
            management_app=getattr(self._backend, "management_app", None),
        )
        grace, access_log = options.grace_seconds, options.access_log
        self._http = Listener(self.http_app, http_sock, access_log=access_log, grace=grace)
        await self._http.start()
        if pubsub_sock is not None:
            from devhost.pubsub import WS_IMPLEMENTATION

            self._pubsub = Listener(self._emulator.app, pubsub_sock, ws=WS_IMPLEMENTATION, grace=grace)
            await self._pubsub.start()
        self.timers = TimerScheduler(plan.timers, self._executor)
        self.timers.start()
        self.banner = self._banner(settings.path_prefix, database_label, demo)
        print(self.banner.render(), flush=True)

    async def _start_local_model(self) -> None:
        """Start llama.cpp with the tiny model and point the app's settings at it (they win over any set)."""
        from devhost.local_model import LocalModel, LocalModelError

        model = LocalModel(log=self.options.data_dir / "local-model.log")
        try:
            await asyncio.to_thread(model.start)
        except LocalModelError as exc:
            raise HostStartError(str(exc)) from exc
        self._local_model = model
        os.environ.update(model.settings())
        try:
            from shared.config import get_settings

            get_settings.cache_clear()
        except ImportError:
            pass

    async def _start_database(self) -> str:
        url = os.environ.get("DATABASE_URL")
        if url:
            self.database_url = url
            return "external (DATABASE_URL)"
        self._embedded = EmbeddedPostgres(self.options.data_dir / "pg")
        self.database_url = await asyncio.to_thread(self._embedded.start)
        os.environ["DATABASE_URL"] = self.database_url
        return f"embedded at {self._embedded.data_dir} ({self._embedded.display_dsn()}, password in the data dir)"

    def _prepare_pubsub(self, path_prefix: str) -> socket.socket | None:
        """Bind the emulator's port and point WEBPUBSUB_CONNECTION_STRING at it, unless one is set
        or `pubsub_url` names an emulator running on its own (then point the variable at that)."""
        if os.environ.get("WEBPUBSUB_CONNECTION_STRING"):
            return None
        from devhost.pubsub import PubSubEmulator
        from devhost.pubsub.keys import load_or_create_access_key, read_access_key

        if self.options.pubsub_url:
            access_key = read_access_key(self.options.data_dir)
            if access_key is None:
                raise HostStartError(
                    f"--pubsub-url given but {self.options.data_dir / 'pubsub.key'} does not exist: start "
                    f"`python -m devhost.pubsub --data-dir {self.options.data_dir}` first (it creates the key), "
                    "or set WEBPUBSUB_CONNECTION_STRING"
                )
            endpoint = self.options.pubsub_url.rstrip("/")
            os.environ["WEBPUBSUB_CONNECTION_STRING"] = f"Endpoint={endpoint};AccessKey={access_key};Version=1.0;"
            return None
        access_key = load_or_create_access_key(self.options.data_dir)
        sock = _bind(self.options.host, self.options.pubsub_port)
        self.pubsub_port = sock.getsockname()[1]
        upstream = f"{self.base_url}{_api_root(path_prefix)}/realtime/events"
        self._emulator = PubSubEmulator(access_key, hub_names=None, upstream_url=upstream)
        endpoint_host = "localhost" if self.options.host in ("0.0.0.0", "::", "") else self.options.host
        connection_string = self._emulator.connection_string(endpoint_host, self.pubsub_port)
        os.environ["WEBPUBSUB_CONNECTION_STRING"] = connection_string
        return sock

    async def _prepare_database(self) -> tuple[str, str, bool] | None:
        """Migrate and create the demo login (fresh database); return (email, password, is_new)."""
        data_dir = self.options.data_dir
        if self.options.migrate:
            from shared.bootstrap import prepare_database

            created = await prepare_database(self.database_url)
            if created is not None:
                save_demo_login(data_dir, self.database_url, created.email, created.password)
                return created.email, created.password, True
        remembered = load_demo_login(data_dir, self.database_url)
        return (*remembered, False) if remembered else None

    async def _start_durable(self, task_hub: str, function_timeout: float | None) -> str | None:
        """Start the Durable backend when the app uses Durable Functions; return the client binding."""
        assert self.index is not None
        if not self.index.uses_durable:
            return None
        try:
            from devhost.durable import DurableBackend, DurableFunctions
        except ImportError as exc:
            message = f"the app uses Durable Functions; devhost.durable is unavailable: {exc}"
            raise HostStartError(message) from exc
        from devhost.durable.backend import load_or_create_host_id
        from devhost.durable.management import load_or_create_system_key

        functions = DurableFunctions.from_functions(list(self.index.functions))
        self._backend = DurableBackend(
            self.database_url,
            functions,
            task_hub=task_hub,
            schema="durable",
            activity_concurrency=self.options.activity_concurrency,
            lease_seconds=self.options.lease_seconds,
            host_id=load_or_create_host_id(self.options.data_dir),
            function_timeout=function_timeout,
            system_key=load_or_create_system_key(self.options.data_dir),
        )
        await self._backend.start()
        rpc_base_url = f"http://{_client_host(self.options.host)}:{self.port}{MANAGEMENT_PREFIX}/"
        binding: str = self._backend.client_binding(rpc_base_url)
        return binding

    def _banner(self, path_prefix: str, database: str, demo: tuple[str, str, bool] | None) -> Banner:
        assert self.index is not None
        if self._emulator is not None:
            pubsub = f"emulator ws://{_client_host(self.options.host)}:{self.pubsub_port} (hubs: any)"
        elif self.options.pubsub_url:
            pubsub = f"shared emulator at {self.options.pubsub_url} (--pubsub-url)"
        else:
            pubsub = "external (WEBPUBSUB_CONNECTION_STRING)"
        durable = "off (no Durable functions)"
        if self._backend is not None:
            found = self._backend.functions
            durable = (
                f"on Postgres, schema durable, hub {self._backend.task_hub} "
                f"({len(found.orchestrators)} orchestrators, {len(found.activities)} activities), "
                f"leases {self._backend.lease_seconds:g} s"
            )
        return Banner(
            api_url=f"{self.base_url}{_api_root(path_prefix)}",
            dashboard_url=f"{self.base_url}/",
            pubsub=pubsub,
            database=database,
            redis=redis_label(bool(os.environ.get("REDIS_URL"))),
            llm=llm_provider(self._local_model.url if self._local_model is not None else None),
            durable=durable,
            functions=f"{len(self.index.http)} HTTP, {len(self.index.timers)} timer, "
            f"{len(self.index.entries) - len(self.index.http) - len(self.index.timers)} other",
            demo_login=(demo[0], demo[1]) if demo else None,
            demo_is_new=bool(demo and demo[2]),
        )

    async def stop(self) -> None:
        """Drain and stop everything this host started; safe to call twice.

        Each step is bounded, so a stuck component can delay the exit but never hang it.
        """
        if self._stopped:
            return
        self._stopped = True
        grace = self.options.grace_seconds
        if self.http_app is not None:
            self.http_app.begin_drain()
            if not await self.http_app.wait_idle(grace):
                logger.warning("%d request(s) still running after %.1fs", self.http_app.in_flight, grace)
        steps: list[tuple[str, Callable[[], Awaitable[object]]]] = []
        if self.timers is not None:
            steps.append(("timers", lambda: self.timers.stop(grace)))  # type: ignore[union-attr]
        if self._http is not None:
            steps.append(("http listener", self._http.stop))
        if self._backend is not None:
            steps.append(("durable backend", lambda: self._backend.stop(grace)))  # type: ignore[union-attr]
            steps.append(("durable client session", _close_durable_client_session))
        steps.append(("app context", _close_app_context))
        if self._emulator is not None:
            steps.append(("web pubsub emulator", self._emulator.close))
        if self._pubsub is not None:
            steps.append(("web pubsub listener", self._pubsub.stop))
        for name, step in steps:
            try:
                await asyncio.wait_for(step(), grace + 5)
                logger.info("stopped %s", name)
            except TimeoutError:
                logger.error("stopping %s took longer than %.0fs; going on", name, grace + 5)
            except Exception:
                logger.exception("stopping %s failed; going on", name)
        if self._executor is not None:
            self._executor.shutdown(wait=False, cancel_futures=True)
        if self._embedded is not None:
            await asyncio.to_thread(self._embedded.stop)
        if self._local_model is not None:
            await asyncio.to_thread(self._local_model.stop)

    async def run(self) -> None:
        """Start, wait for SIGTERM or SIGINT, stop."""
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()

        def first_signal() -> None:
            stop.set()
            for sig in (signal.SIGTERM, signal.SIGINT):
                loop.add_signal_handler(sig, second_signal)

        def second_signal() -> None:
            logger.warning("second signal: exiting without waiting")
            os._exit(1)

        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, first_signal)
        try:
            await self.start()
            await stop.wait()
            logger.info("stopping: draining requests (up to %.0fs)", self.options.grace_seconds)
        finally:
            await self.stop()


def serve(options: ServeOptions) -> int:
    """Run a devhost in this process until a signal; the exit code."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)  # one line per client call is noise here
    try:
        import uvloop

        loop_factory: Any = uvloop.new_event_loop
    except ImportError:
        loop_factory = None
    with asyncio.Runner(loop_factory=loop_factory) as runner:
        try:
            runner.run(DevHost(options).run())
        except (HostStartError, AppLoadError, EmbeddedPostgresError) as exc:
            logger.error("devhost cannot start: %s", exc)
            return 2
    return 0
