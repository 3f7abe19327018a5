"""A lean closed-loop HTTP/1.1 load generator for saturation runs (no think time).

Locust costs far more CPU per request than the bare one-SELECT app it is compared with; on two cores
that would cap the baseline and flatter the ratio. This driver (keep-alive connections, raw asyncio
streams, like `loadtests.bench_http`) drives the app and the bare baseline alike.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import Sequence
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Target:
    label: str
    path: str


@dataclass
class Samples:
    """Latencies (ms) and errors per label over a measured window."""

    seconds: float = 0.0
    latencies: dict[str, list[float]] = field(default_factory=dict)
    errors: dict[str, int] = field(default_factory=dict)

    def add(self, label: str, ms: float, ok: bool) -> None:
        self.latencies.setdefault(label, []).append(ms)
        if not ok:
            self.errors[label] = self.errors.get(label, 0) + 1

    @property
    def total(self) -> int:
        return sum(len(v) for v in self.latencies.values())

    def merged(self) -> list[float]:
        return [ms for values in self.latencies.values() for ms in values]


async def _read_response(reader: asyncio.StreamReader) -> int:
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head[9:12])
    length = 0
    chunked = False
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        key = name.strip().lower()
        if key == b"content-length":
            length = int(value)
        elif key == b"transfer-encoding" and b"chunked" in value.lower():
            chunked = True
    if chunked:
        while True:
            size = int((await reader.readuntil(b"\r\n")).strip().split(b";")[0], 16)
            await reader.readexactly(size + 2)
            if size == 0:
                break
    else:
        await reader.readexactly(length)
    return status


async def _connection(host: str, port: int, targets: Sequence[Target], headers: str, start: float, end: float,
                      samples: Samples, offset: int) -> None:
    reader, writer = await asyncio.open_connection(host, port)
    requests = [(t.label, f"GET {t.path} HTTP/1.1\r\nHost: {host}:{port}\r\n{headers}\r\n".encode()) for t in targets]
    cycle = itertools.islice(itertools.cycle(requests), offset, None)
    try:
        for label, request in cycle:
            begun = time.perf_counter()
            if begun >= end:
                break
            writer.write(request)
            status = await _read_response(reader)
            if begun >= start:
                samples.add(label, (time.perf_counter() - begun) * 1000, 200 <= status < 300)
    finally:
        writer.close()


@dataclass(frozen=True)
class Loop:
    """What one connection requests, in turn, and with which headers (e.g. one user's token)."""

    targets: Sequence[Target]
    headers: dict[str, str] = field(default_factory=dict)


async def drive(base_url: str, loops: Sequence[Loop], *, seconds: float, connections: int,
                warmup: float = 1.0) -> Samples:
    """Run `connections` closed loops (cycling over `loops`) for `warmup + seconds`; sample after warm-up."""
    hostport = base_url.split("://", 1)[1].split("/", 1)[0]
    host, _, port = hostport.partition(":")
    samples = Samples(seconds=seconds)
    now = time.perf_counter()
    start, end = now + warmup, now + warmup + seconds
    jobs = []
    for i in range(connections):
        loop = loops[i % len(loops)]
        header_text = "".join(f"{k}: {v}\r\n" for k, v in loop.headers.items())
        jobs.append(_connection(host, int(port or 80), loop.targets, header_text, start, end, samples, i))
    await asyncio.gather(*jobs)
    return samples


def percentile(values: Sequence[float], p: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(p / 100 * len(ordered)))]
