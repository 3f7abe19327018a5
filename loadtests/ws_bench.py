"""WebSocket fan-out: the Web PubSub emulator (its own benchmark) beside the bare broadcaster.

Both get the same shape of load: N clients over G groups, each group sent `rounds` timestamped
messages at a steady rate; latency is send to receive on loopback, RSS is the server's.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from typing import Any

import websockets

from loadtests.bench_pubsub import run as run_emulator
from loadtests.driver import percentile
from loadtests.processes import child, rss_mib


async def _listen(url: str, latencies: list[float], opened: list[int], stop: asyncio.Event) -> None:
    async with websockets.connect(url, ping_interval=None, max_queue=None, open_timeout=20) as ws:
        opened[0] += 1

        async def read() -> None:
            async for frame in ws:
                latencies.append((time.monotonic_ns() - json.loads(frame)["t"]) / 1e6)

        reader = asyncio.ensure_future(read())
        await stop.wait()
        reader.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await reader


async def bare_broadcaster(clients: int, groups: int, rounds: int, interval: float) -> dict[str, float]:
    latencies: list[float] = []
    stop = asyncio.Event()
    opened = [0]
    async with child("-m", "loadtests.baseline", "ws") as server:
        await asyncio.sleep(0.3)
        base_rss = rss_mib(server.pid)
        tasks = []
        for i in range(clients):
            url = f"ws://127.0.0.1:{server.port}/g{i % groups}"
            tasks.append(asyncio.create_task(_listen(url, latencies, opened, stop)))
            if i % 50 == 49:
                await asyncio.sleep(0)
        deadline = time.monotonic() + 30
        while opened[0] < clients and time.monotonic() < deadline:  # noqa: ASYNC110
            await asyncio.sleep(0.05)
        await asyncio.sleep(1.0)
        idle_rss = rss_mib(server.pid)
        sent = 0
        async with websockets.connect(f"ws://127.0.0.1:{server.port}/publish", ping_interval=None) as publisher:
            start = time.monotonic() + 0.2
            slots = sorted((start + r * interval + g * interval / groups, g) for r in range(rounds)
                           for g in range(groups))
            for at, g in slots:
                await asyncio.sleep(max(0.0, at - time.monotonic()))
                await publisher.send(json.dumps({"group": f"g{g}", "t": time.monotonic_ns()}))
                sent += 1
        expected = sent * clients // groups
        settle = time.monotonic() + 5
        while len(latencies) < expected and time.monotonic() < settle:  # noqa: ASYNC110
            await asyncio.sleep(0.05)
        stop.set()
        await asyncio.wait(tasks, timeout=10)
    return {"clients": opened[0], "lost": expected - len(latencies), "p50_ms": percentile(latencies, 50),
            "p95_ms": percentile(latencies, 95), "p99_ms": percentile(latencies, 99),
            "rss_per_idle_connection_kib": (idle_rss - base_rss) * 1024 / max(1, clients),
            "rss_idle_mib": idle_rss}


async def compare(clients: int, groups: int, rounds: int, interval: float = 0.2) -> dict[str, dict[str, Any]]:
    emulator = await run_emulator(clients, groups, rounds, "json", interval)
    bare = await bare_broadcaster(clients, groups, rounds, interval)
    return {"emulator": emulator, "bare": bare}
