"""Load benchmark of the emulator: `python -m loadtests.bench_pubsub --clients 1000 --groups 100`.

Starts the emulator in a child process (so its memory is measured alone), connects N clients spread
over G groups, sends timestamped messages to every group through the service REST SDK (from a
third process, as the app would), and prints send→receive latency percentiles, lost messages, each
process's CPU and the emulator's RSS per idle connection.
Loopback only; every phase has a deadline, so a run ends within about a minute.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import socket
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import websockets
from azure.messaging.webpubsubservice.aio import WebPubSubServiceClient

HUB = "bench"
ACCESS_KEY = "bench-access-key-0123456789abcdefghijklmnop"
SUBPROTOCOLS = {
    "raw": None, "json": "json.webpubsub.azure.v1", "reliable": "json.reliable.webpubsub.azure.v1",
}


@dataclass
class Tally:
    latencies_ms: list[float] = field(default_factory=list)
    received: int = 0
    errors: int = 0


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process, from /proc (ticks → seconds)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError("VmRSS not found")


async def _wait_listening(port: int, deadline: float) -> None:
    while True:
        try:
            _, writer = await asyncio.open_connection("127.0.0.1", port)
        except OSError:
            if time.monotonic() > deadline:
                raise TimeoutError("emulator did not start") from None
            await asyncio.sleep(0.05)
        else:
            writer.close()
            await writer.wait_closed()
            return


async def _client(url: str, protocol: str, tally: Tally, ready: asyncio.Event, stop: asyncio.Event,
                  opened: list[int]) -> None:
    subprotocol = SUBPROTOCOLS[protocol]
    async with websockets.connect(
        url, subprotocols=[subprotocol] if subprotocol else None, open_timeout=20, ping_interval=None,  # type: ignore[list-item]
        max_queue=None,
    ) as ws:
        opened[0] += 1
        if opened[0] >= opened[1]:
            ready.set()
        reader = asyncio.ensure_future(_read(ws, protocol, tally))
        await stop.wait()
        reader.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await reader


async def _read(ws: websockets.ClientConnection, protocol: str, tally: Tally) -> None:
    async for frame in ws:
        now = time.monotonic_ns()
        message = json.loads(frame)
        if protocol != "raw":
            if message.get("type") != "message":
                continue
            if "sequenceId" in message:
                await ws.send(json.dumps({"type": "sequenceAck", "sequenceId": message["sequenceId"]}))
            message = message["data"]
        tally.latencies_ms.append((now - message["t"]) / 1e6)
        tally.received += 1


async def run(clients: int, groups: int, rounds: int, protocol: str, interval: float) -> dict[str, float]:
    port = _free_port()
    deadline = time.monotonic() + 55
    # Started before the event loop has work to do; a child process keeps the emulator's RSS separate.
    child = subprocess.Popen(  # noqa: ASYNC220 - fixed argv: this interpreter and our module
        [sys.executable, "-m", "devhost.pubsub", "--port", str(port), "--access-key", ACCESS_KEY,
         "--hub", HUB],
        stdout=subprocess.DEVNULL, env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    tally = Tally()
    stop = asyncio.Event()
    tasks: list[asyncio.Task[None]] = []
    try:
        await _wait_listening(port, deadline)
        await asyncio.sleep(0.3)
        baseline = _rss_kib(child.pid)
        connection_string = f"Endpoint=http://127.0.0.1:{port};AccessKey={ACCESS_KEY};Version=1.0;"
        async with WebPubSubServiceClient.from_connection_string(connection_string, hub=HUB) as service:
            urls = [(await service.get_client_access_token(groups=[f"g{g}"]))["url"] for g in range(groups)]
            ready = asyncio.Event()
            opened = [0, clients]
            started = time.monotonic()
            for i in range(clients):
                url = urls[i % groups]
                tasks.append(asyncio.create_task(_client(url, protocol, tally, ready, stop, opened)))
                if i % 50 == 49:
                    await asyncio.sleep(0)  # let handshakes progress instead of queueing them all
            async with asyncio.timeout(max(1.0, deadline - time.monotonic() - 25)):
                await ready.wait()
            connect_seconds = time.monotonic() - started
            await asyncio.sleep(1.0)
            idle = _rss_kib(child.pid)

            # The sends come from their own process, as they do from the app in production: the SDK's
            # per-request cost (~1 ms of CPU) would otherwise share this process with the 1,000
            # receivers and the measured latency would be the load generator's queueing.
            cpu_before = (_cpu_seconds(child.pid), _cpu_seconds(os.getpid()))
            sent, publisher_cpu, send_seconds = await _publish_from_child(connection_string, groups, rounds,
                                                                          interval, deadline)
            expected = sent * clients // groups
            settle = time.monotonic() + 5
            while tally.received < expected and time.monotonic() < settle:  # noqa: ASYNC110
                await asyncio.sleep(0.05)
            emulator_cpu = _cpu_seconds(child.pid) - cpu_before[0]
            bench_cpu = _cpu_seconds(os.getpid()) - cpu_before[1]
    finally:
        stop.set()
        if tasks:
            await asyncio.wait(tasks, timeout=10)
        child.terminate()
        try:
            child.wait(timeout=10)
        except subprocess.TimeoutExpired:
            child.kill()
    latencies = sorted(tally.latencies_ms)

    def pct(p: float) -> float:
        if not latencies:
            return float("nan")
        return latencies[min(len(latencies) - 1, int(p / 100 * len(latencies)))]

    return {
        "clients": clients, "groups": groups, "connect_seconds": connect_seconds,
        "messages_expected": expected, "messages_received": tally.received,
        "lost": expected - tally.received, "p50_ms": pct(50), "p95_ms": pct(95), "p99_ms": pct(99),
        "mean_ms": statistics.fmean(latencies) if latencies else float("nan"),
        "sends_per_second": sent_rate(expected, clients, groups, send_seconds),
        "emulator_cpu_percent": 100 * emulator_cpu / send_seconds,
        "bench_client_cpu_percent": 100 * bench_cpu / send_seconds,
        "publisher_cpu_percent": 100 * publisher_cpu / send_seconds,
        "rss_baseline_mib": baseline / 1024, "rss_idle_mib": idle / 1024,
        "rss_per_idle_connection_kib": (idle - baseline) / clients,
    }


async def _publish_from_child(connection_string: str, groups: int, rounds: int, interval: float,
                              deadline: float) -> tuple[int, float, float]:
    """Run the sends in `python -m loadtests.bench_pubsub --publisher`; (sent, its CPU s, send s)."""
    remaining = max(1, int(deadline - time.monotonic() - 10))
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "loadtests.bench_pubsub", "--publisher", connection_string, "--groups", str(groups),
        "--rounds", str(rounds), "--interval", str(interval), "--seconds", str(remaining),
        stdout=asyncio.subprocess.PIPE,
    )
    out, _ = await process.communicate()
    if process.returncode != 0:
        raise RuntimeError(f"publisher exited {process.returncode}")
    sent, cpu, seconds = out.decode().split()[-3:]
    return int(sent), float(cpu), float(seconds)


async def publish(connection_string: str, groups: int, rounds: int, interval: float, seconds: float) -> None:
    """Each group gets `rounds` timestamped messages, one every `interval` seconds, the groups' slots
    spread evenly over the interval: a steady rate of groups/interval sends per second. Prints
    "sent cpu_seconds send_seconds" (CLOCK_MONOTONIC stamps compare across processes)."""
    deadline = time.monotonic() + seconds
    sent = [0]
    async with WebPubSubServiceClient.from_connection_string(connection_string, hub=HUB) as service:
        await service.send_to_group("warm-up", {"t": time.monotonic_ns()})
        send_start = time.monotonic() + 0.2
        cpu_before = _cpu_seconds(os.getpid())

        async def one_group(group: int) -> None:
            for round_index in range(rounds):
                slot = send_start + round_index * interval + group * interval / groups
                await asyncio.sleep(max(0.0, slot - time.monotonic()))
                if time.monotonic() > deadline:
                    return
                await service.send_to_group(f"g{group}", {"t": time.monotonic_ns(), "r": round_index})
                sent[0] += 1

        await asyncio.gather(*(one_group(g) for g in range(groups)))
        print(sent[0], _cpu_seconds(os.getpid()) - cpu_before, time.monotonic() - send_start)


def sent_rate(expected: int, clients: int, groups: int, seconds: float) -> float:
    return expected * groups / clients / seconds if seconds > 0 else 0.0


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m loadtests.bench_pubsub", description=__doc__)
    parser.add_argument("--clients", type=int, default=1000)
    parser.add_argument("--groups", type=int, default=100)
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--interval", type=float, default=0.2, help="seconds between send rounds")
    parser.add_argument("--protocol", choices=sorted(SUBPROTOCOLS), default="json")
    parser.add_argument("--publisher", metavar="CONNECTION_STRING", help=argparse.SUPPRESS)
    parser.add_argument("--seconds", type=float, default=30, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.publisher:
        asyncio.run(publish(args.publisher, args.groups, args.rounds, args.interval, args.seconds))
        return
    result = asyncio.run(run(args.clients, args.groups, args.rounds, args.protocol, args.interval))
    for key, value in result.items():
        print(f"{key:>30}: {value:.2f}" if isinstance(value, float) else f"{key:>30}: {value}")


if __name__ == "__main__":
    main()
