"""The bare baselines of `make bench`, each served in a child process on loopback.

- `http`: a minimal ASGI app on the same server stack as devhost (uvicorn, uvloop, httptools) with a
  psycopg pool of the app's size: `GET /select1` runs `SELECT 1`; `GET /team/{id}?company=C` runs the
  team-detail SELECT the API runs (members, tasks and costs as JSON, one round trip) and returns it.
- `ws`: a minimal websocket broadcaster: clients connect to `/g<N>` and receive every frame a
  publisher sends to `/publish` as `{"group": "g<N>", ...}`: no auth, no protocol, no persistence.

    python -m loadtests.baseline http --dsn DSN      # prints the port, serves until SIGTERM
    python -m loadtests.baseline ws
"""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
import sys
from typing import Any
from urllib.parse import parse_qs

import websockets
from psycopg.rows import dict_row
from psycopg_pool import AsyncConnectionPool
from starlette.types import Receive, Scope, Send

from devhost.wiring import Listener, bind
from shared.db.repositories.teams import GET_TEAM_DETAIL


def http_app(pool: AsyncConnectionPool[Any]) -> Any:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        await receive()
        path: str = scope["path"]
        status = 200
        async with pool.connection() as conn:
            if path.startswith("/team/"):
                company = parse_qs(scope["query_string"].decode()).get("company", [""])[0]
                cur = await conn.cursor(row_factory=dict_row).execute(
                    GET_TEAM_DETAIL, {"id": path.removeprefix("/team/"), "company_id": company})
                row = await cur.fetchone()
                body = json.dumps(row, default=str).encode() if row else b"{}"
                status = 200 if row else 404
            else:
                cur2 = await conn.execute("SELECT 1")
                body = str((await cur2.fetchone() or (0,))[0]).encode()
        headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    return app


async def serve_http(dsn: str, pool_size: int) -> None:
    pool: AsyncConnectionPool[Any] = AsyncConnectionPool(
        dsn, min_size=pool_size, max_size=pool_size, open=False, kwargs={"autocommit": True, "prepare_threshold": 5})
    await pool.open(wait=True)
    listener = Listener(http_app(pool), bind("127.0.0.1", 0), grace=1)
    await listener.start()
    print(listener.port, flush=True)
    await _until_sigterm()
    await listener.stop()
    await pool.close()


async def serve_ws() -> None:
    groups: dict[str, set[Any]] = {}

    async def handler(ws: Any) -> None:
        path = ws.request.path.lstrip("/")
        if path == "publish":
            async for frame in ws:
                group = json.loads(frame)["group"]
                websockets.broadcast(groups.get(group, set()), frame)
            return
        members = groups.setdefault(path, set())
        members.add(ws)
        try:
            await ws.wait_closed()
        finally:
            members.discard(ws)

    async with websockets.serve(handler, "127.0.0.1", 0, ping_interval=None, max_queue=None) as server:
        port = next(iter(server.sockets)).getsockname()[1]
        print(port, flush=True)
        await _until_sigterm()


async def _until_sigterm() -> None:
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    await stop.wait()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m loadtests.baseline", description=__doc__.split("\n")[0])
    parser.add_argument("kind", choices=["http", "ws"])
    parser.add_argument("--dsn", help="database of the http baseline")
    parser.add_argument("--pool-size", type=int, default=10, help="the app's DB_POOL_MAX_SIZE")
    args = parser.parse_args(argv)
    import uvloop

    coro = serve_http(args.dsn, args.pool_size) if args.kind == "http" else serve_ws()
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        runner.run(coro)
    return 0


if __name__ == "__main__":
    sys.exit(main())
