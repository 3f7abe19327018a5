"""Micro benchmark: requests/s of a trivial HTTP function through devhost vs a bare ASGI app.

    python -m loadtests.bench_http [--seconds 3] [--connections 32] [--select DSN]

Each server runs in its own subprocess (uvicorn, same settings) on loopback; a small keep-alive
HTTP/1.1 load generator in this process drives it for a fixed time. With `--select DSN` both the
function and the bare app run one `SELECT 1` per request through a psycopg pool, which is the shape
of the API's read endpoints. Prints requests/s of each and the ratio devhost / bare.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import azure.functions as func
from starlette.types import Receive, Scope, Send

from devhost.app_index import index_functions
from devhost.asgi import FunctionsHttpApp
from devhost.server import function_executor
from devhost.wiring import Listener, bind, plan_functions

__all__ = ["BenchResult", "main", "measure"]

PATH = "/api/ping/42"


@contextlib.asynccontextmanager
async def _pool(dsn: str | None) -> AsyncIterator[Any]:
    if dsn is None:
        yield None
        return
    from psycopg_pool import AsyncConnectionPool

    pool: AsyncConnectionPool[Any] = AsyncConnectionPool(dsn, min_size=4, max_size=4, open=False)
    await pool.open(wait=True)
    try:
        yield pool
    finally:
        await pool.close()


async def _select(pool: Any) -> bytes:
    async with pool.connection() as conn:
        row = await (await conn.execute("SELECT 1")).fetchone()
    return str(row[0]).encode()


def _function_app(pool: Any) -> Any:
    app = func.FunctionApp(http_auth_level=func.AuthLevel.ANONYMOUS)

    @app.route(route="ping/{id}", methods=["GET"])
    async def ping(req: func.HttpRequest) -> func.HttpResponse:
        body = await _select(pool) if pool is not None else b"pong"
        return func.HttpResponse(body, mimetype="text/plain")

    return app


def _bare_app(pool: Any) -> Any:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        await receive()
        body = await _select(pool) if pool is not None else b"pong"
        headers = [(b"content-type", b"text/plain"), (b"content-length", str(len(body)).encode())]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    return app


async def _serve(kind: str, dsn: str | None) -> None:
    """Child process: serve `kind` on a free port, print it, run until SIGTERM."""
    async with _pool(dsn) as pool:
        if kind == "devhost":
            index = index_functions(_function_app(pool))
            plan = plan_functions(index, client_binding=None, app_dir=Path.cwd())
            app: Any = FunctionsHttpApp(router=plan.router, path_prefix="/api", executor=function_executor())
        else:
            app = _bare_app(pool)
        listener = Listener(app, bind("127.0.0.1", 0), grace=1)
        await listener.start()
        print(listener.port, flush=True)
        stop = asyncio.Event()
        asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
        await stop.wait()
        await listener.stop()


async def _connection(port: int, end: float, counts: list[int], errors: list[int]) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    request = f"GET {PATH} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\r\n".encode()
    loop = asyncio.get_running_loop()
    try:
        while loop.time() < end:
            writer.write(request)
            head = await reader.readuntil(b"\r\n\r\n")
            length = 0
            for line in head.split(b"\r\n")[1:]:
                name, _, value = line.partition(b":")
                if name.strip().lower() == b"content-length":
                    length = int(value)
            await reader.readexactly(length)
            if not head.startswith(b"HTTP/1.1 200"):
                errors[0] += 1
            counts[0] += 1
    finally:
        writer.close()


@dataclass(frozen=True)
class BenchResult:
    kind: str
    requests: int
    errors: int
    seconds: float

    @property
    def per_second(self) -> float:
        return self.requests / self.seconds


async def measure(kind: str, *, seconds: float, connections: int, dsn: str | None) -> BenchResult:
    """Start a `kind` server subprocess, drive it for `seconds` (after a short warm-up), stop it."""
    select = ["--select", dsn] if dsn else []
    argv = [sys.executable, "-m", "loadtests.bench_http", "--serve", kind, *select]
    child = await asyncio.create_subprocess_exec(*argv, stdout=asyncio.subprocess.PIPE)
    assert child.stdout is not None
    try:
        port = int(await asyncio.wait_for(child.stdout.readline(), 30))
        loop = asyncio.get_running_loop()
        warm = [0], [0]
        await asyncio.gather(*(_connection(port, loop.time() + 0.5, *warm) for _ in range(connections)))
        counts, errors = [0], [0]
        started = loop.time()
        end = started + seconds
        await asyncio.gather(*(_connection(port, end, counts, errors) for _ in range(connections)))
        return BenchResult(kind, counts[0], errors[0], loop.time() - started)
    finally:
        child.send_signal(signal.SIGTERM)
        try:
            await asyncio.wait_for(child.wait(), 10)
        except TimeoutError:
            child.kill()
            await child.wait()


async def _compare(seconds: float, connections: int, dsn: str | None) -> list[BenchResult]:
    kinds = ("bare", "devhost")
    return [await measure(kind, seconds=seconds, connections=connections, dsn=dsn) for kind in kinds]


def _run(coro: Any) -> Any:
    try:
        import uvloop

        loop_factory: Any = uvloop.new_event_loop
    except ImportError:
        loop_factory = None
    with asyncio.Runner(loop_factory=loop_factory) as runner:
        return runner.run(coro)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m loadtests.bench_http", description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=3.0, help="measured time per server")
    parser.add_argument("--connections", type=int, default=32, help="concurrent keep-alive connections")
    parser.add_argument("--select", metavar="DSN", help="run one SELECT 1 per request on this database")
    parser.add_argument("--serve", choices=["bare", "devhost"], help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.serve:
        _run(_serve(args.serve, args.select))
        return 0
    bare, devhost = _run(_compare(args.seconds, args.connections, args.select))
    shape = "one SELECT per request" if args.select else "trivial response"
    print(f"GET {PATH} ({shape}), {args.connections} connections, {args.seconds:.0f}s each")
    for result in (bare, devhost):
        counts = f"{result.requests} requests, {result.errors} errors"
        print(f"  {result.kind:<8} {result.per_second:9.0f} req/s  ({counts})")
    print(f"  ratio    {devhost.per_second / bare.per_second:9.2f}  (devhost / bare)")
    return 0 if bare.errors == devhost.errors == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
