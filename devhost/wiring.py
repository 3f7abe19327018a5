"""Pieces DevHost assembles, also used alone by tests and the HTTP benchmark: the routing plan of
an indexed app, and a uvicorn listener running inside the current event loop."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from collections.abc import Generator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import uvicorn

from devhost.app_index import AppIndex
from devhost.invoker import Invoker
from devhost.routing import Router

__all__ = ["FunctionPlan", "Listener", "bind", "plan_functions"]

logger = logging.getLogger("devhost")


@dataclass(frozen=True)
class FunctionPlan:
    """HTTP functions routed by template, and the timer functions, each with its call plan."""

    router: Router[Invoker]
    timers: list[Invoker]


def plan_functions(index: AppIndex, *, client_binding: str | None, app_dir: Path) -> FunctionPlan:
    """Build the call plans; raises BindingError / RouteTemplateError as the host fails at startup."""
    router: Router[Invoker] = Router()
    timers: list[Invoker] = []
    for entry in index.entries:
        if entry.http is None and entry.timer is None:
            continue
        invoker = Invoker.build(entry, client_binding=client_binding, app_dir=app_dir)
        if entry.http is not None:
            router.add(entry.http.route, entry.http.methods, invoker)
        else:
            timers.append(invoker)
    return FunctionPlan(router, timers)


def bind(host: str, port: int) -> socket.socket:
    """A listening TCP socket (port 0: any free port), bound before anything else starts."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError:
        sock.close()
        raise
    sock.listen(2048)
    sock.setblocking(False)
    return sock


class _Server(uvicorn.Server):
    """uvicorn without its own signal handling: the embedding process owns SIGTERM/SIGINT
    (uvicorn's would re-raise the signal after shutdown, and the exit code would not be 0)."""

    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        yield


class Listener:
    """An ASGI app served by uvicorn on an already bound socket, in the running event loop."""

    def __init__(
        self, app: Any, sock: socket.socket, *, ws: str = "none", access_log: bool = False, grace: float = 10
    ) -> None:
        self.sock = sock
        self.port: int = sock.getsockname()[1]
        config = uvicorn.Config(
            app,
            lifespan="off",
            ws=ws,  # type: ignore[arg-type]
            http="auto",
            log_level="warning",
            access_log=access_log,
            server_header=False,
            proxy_headers=False,
            timeout_graceful_shutdown=max(1, int(grace)),
            backlog=2048,
            # Kestrel (the Functions host) keeps idle connections 130 s; uvicorn's 5 s default equals
            # httpx's client-side expiry and races it (the client reuses a socket the server is closing).
            timeout_keep_alive=130,
        )
        self._grace = grace
        self._server = _Server(config)
        self._task: asyncio.Task[None] | None = None

    async def start(self, deadline_seconds: float = 10) -> None:
        self._task = asyncio.create_task(self._server.serve(sockets=[self.sock]), name=f"uvicorn:{self.port}")
        loop = asyncio.get_running_loop()
        deadline = loop.time() + deadline_seconds
        while not self._server.started:
            if self._task.done():
                self._task.result()
                raise RuntimeError(f"the server on port {self.port} stopped while starting")
            if loop.time() > deadline:
                raise TimeoutError(f"the server on port {self.port} did not start in {deadline_seconds}s")
            await asyncio.sleep(0.01)

    async def stop(self) -> None:
        """Stop accepting, let open responses finish (uvicorn's graceful timeout), return."""
        if self._task is None:
            return
        self._server.should_exit = True
        try:
            await asyncio.wait_for(asyncio.shield(self._task), self._grace + 5)
        except TimeoutError:
            logger.warning("the server on port %d did not stop in time", self.port)
        self._task = None
