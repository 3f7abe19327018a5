"""Run a `PubSubEmulator` under uvicorn inside the current event loop (tests, benchmarks, devhost)."""

from __future__ import annotations

import asyncio
import socket

import uvicorn

from devhost.pubsub.emulator import PubSubEmulator

# uvicorn's sans-I/O WebSocket protocol keeps no keepalive task per socket: the lightest option for
# many idle clients. The devhost can pass the same value when it runs the emulator itself.
WS_IMPLEMENTATION = "websockets-sansio"


class EmulatorServer:
    """An emulator listening on a loopback port; `start()` returns once it accepts connections."""

    def __init__(self, emulator: PubSubEmulator, *, host: str = "127.0.0.1", port: int = 0) -> None:
        self.emulator = emulator
        self.host = host
        self.port = port
        self._server: uvicorn.Server | None = None
        self._task: asyncio.Task[None] | None = None

    @property
    def connection_string(self) -> str:
        return self.emulator.connection_string(self.host, self.port)

    async def start(self, startup_seconds: float = 10.0) -> int:
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind((self.host, self.port))
        self.port = listener.getsockname()[1]
        config = uvicorn.Config(
            self.emulator.app, ws=WS_IMPLEMENTATION, lifespan="off", log_level="warning",
            ws_ping_interval=None, timeout_graceful_shutdown=2, backlog=4096,
        )
        self._server = uvicorn.Server(config)
        self._task = asyncio.get_running_loop().create_task(self._server.serve(sockets=[listener]))
        deadline = asyncio.get_running_loop().time() + startup_seconds
        while not self._server.started:
            if self._task.done():
                self._task.result()
            if asyncio.get_running_loop().time() > deadline:
                raise TimeoutError("the Web PubSub emulator did not start in time")
            await asyncio.sleep(0.01)
        return self.port

    async def stop(self) -> None:
        """Close client sockets cleanly, then shut uvicorn down."""
        await self.emulator.close()
        if self._server is not None and self._task is not None:
            self._server.should_exit = True
            await asyncio.wait_for(self._task, timeout=10)
