"""Query cache and rate limits: Redis when configured, in-process otherwise, never an outage.

Cache keys carry the company's generation; a write bumps it, so invalidation is O(1) and a reader
never sees data older than the last committed write of its company. Redis errors count as misses
(and are counted), so an outage degrades to the database rather than to an error.
"""

from __future__ import annotations

import logging
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Protocol
from uuid import UUID

import redis.asyncio as aioredis
from redis.exceptions import RedisError

log = logging.getLogger(__name__)

# One round trip: the generation, and the value stored under it.
_GET_SCRIPT = """
local gen = redis.call('GET', KEYS[1]) or '0'
return {gen, redis.call('GET', ARGV[1] .. gen .. ':' .. ARGV[2])}
"""


@dataclass
class CacheStats:
    hits: int = 0
    misses: int = 0
    errors: int = 0
    invalidations: int = 0

    @property
    def hit_rate(self) -> float:
        total = self.hits + self.misses
        return self.hits / total if total else 0.0

    def as_dict(self) -> dict[str, Any]:
        return {"hits": self.hits, "misses": self.misses, "errors": self.errors,
                "invalidations": self.invalidations, "hit_rate": round(self.hit_rate, 4)}


class QueryCache(Protocol):
    backend: str
    stats: CacheStats

    async def get_or_load(self, company_id: UUID, key: str, loader: Callable[[], Awaitable[bytes]], *,
                          scope: str = "data") -> bytes: ...

    async def invalidate(self, company_id: UUID, *, scope: str = "data") -> None: ...


def _gen_key(company_id: UUID, scope: str) -> str:
    return f"gp:gen:{scope}:{company_id}"


def _value_prefix(company_id: UUID, scope: str) -> str:
    return f"gp:q:{scope}:{company_id}:"


class RedisQueryCache:
    backend = "redis"

    def __init__(self, client: aioredis.Redis, *, ttl_seconds: int = 30) -> None:
        self.client = client
        self.ttl = ttl_seconds
        self.stats = CacheStats()
        self._script = client.register_script(_GET_SCRIPT)

    async def get_or_load(self, company_id: UUID, key: str, loader: Callable[[], Awaitable[bytes]], *,
                          scope: str = "data") -> bytes:
        prefix = _value_prefix(company_id, scope)
        generation: bytes | None = None
        try:
            generation, cached = await self._script(keys=[_gen_key(company_id, scope)], args=[prefix, key])
        except RedisError as exc:
            self.stats.errors += 1
            log.warning("cache read failed, serving from the database: %s", exc)
            cached = None
        if cached is not None:
            self.stats.hits += 1
            return bytes(cached)
        self.stats.misses += 1
        value = await loader()
        if generation is not None:
            try:
                await self.client.set(f"{prefix}{generation.decode()}:{key}", value, ex=self.ttl)
            except RedisError as exc:
                self.stats.errors += 1
                log.warning("cache write failed: %s", exc)
        return value

    async def invalidate(self, company_id: UUID, *, scope: str = "data") -> None:
        self.stats.invalidations += 1
        try:
            await self.client.incr(_gen_key(company_id, scope))
        except RedisError as exc:
            # Entries expire within the TTL; log loudly because readers may see stale data until then.
            self.stats.errors += 1
            log.error("cache invalidation failed for company %s: %s", company_id, exc)


@dataclass
class _Entry:
    expires: float
    value: bytes


@dataclass
class LocalQueryCache:
    """In-process TTL cache for a single host (no REDIS_URL).

    One entry per key, bounded in count and bytes. Bumping a company's generation drops that
    company's entries of the scope at once (they could never be read again), so a busy company's
    writes do not fill memory with dead entries until the LRU bound is reached, and every entry
    present belongs to the current generation.
    """

    ttl_seconds: int = 30
    max_entries: int = 10_000
    max_bytes: int = 32 * 1024 * 1024
    backend: str = "in-process"
    stats: CacheStats = field(default_factory=CacheStats)
    _generations: dict[tuple[str, UUID], int] = field(default_factory=dict)
    _entries: OrderedDict[tuple[str, UUID, str], _Entry] = field(default_factory=OrderedDict)
    _keys: dict[tuple[str, UUID], set[str]] = field(default_factory=dict)
    _bytes: int = 0

    @property
    def size_bytes(self) -> int:
        return self._bytes

    def __len__(self) -> int:
        return len(self._entries)

    async def get_or_load(self, company_id: UUID, key: str, loader: Callable[[], Awaitable[bytes]], *,
                          scope: str = "data") -> bytes:
        generation = self._generations.get((scope, company_id), 0)
        full_key = (scope, company_id, key)
        entry = self._entries.get(full_key)
        now = time.monotonic()
        if entry is not None and entry.expires > now:
            self.stats.hits += 1
            self._entries.move_to_end(full_key)
            return entry.value
        self.stats.misses += 1
        value = await loader()
        if self._generations.get((scope, company_id), 0) == generation:  # no write while loading
            self._store(full_key, _Entry(now + self.ttl_seconds, value))
        return value

    async def invalidate(self, company_id: UUID, *, scope: str = "data") -> None:
        self.stats.invalidations += 1
        self._generations[(scope, company_id)] = self._generations.get((scope, company_id), 0) + 1
        for key in self._keys.pop((scope, company_id), set()):
            self._drop((scope, company_id, key))

    def _store(self, full_key: tuple[str, UUID, str], entry: _Entry) -> None:
        if len(entry.value) > self.max_bytes:
            return
        self._drop(full_key)
        self._entries[full_key] = entry
        self._keys.setdefault(full_key[:2], set()).add(full_key[2])
        self._bytes += len(entry.value)
        while len(self._entries) > self.max_entries or self._bytes > self.max_bytes:
            self._drop(next(iter(self._entries)))

    def _drop(self, full_key: tuple[str, UUID, str]) -> None:
        entry = self._entries.pop(full_key, None)
        if entry is None:
            return
        self._bytes -= len(entry.value)
        keys = self._keys.get(full_key[:2])
        if keys is not None:
            keys.discard(full_key[2])
            if not keys:
                del self._keys[full_key[:2]]


class RateLimiter:
    """Fixed-window counters: Redis when available, in-process as the fallback (never fails open to an error)."""

    def __init__(self, client: aioredis.Redis | None) -> None:
        self.client = client
        self.backend = "redis" if client is not None else "in-process"
        self._local: dict[str, tuple[int, int]] = {}
        self.errors = 0

    async def hit(self, bucket: str, *, limit: int, window_seconds: int = 60) -> int | None:
        """Count one hit; return seconds to wait when over the limit, else None."""
        now = int(time.time())
        window = now // window_seconds
        retry_after = window_seconds - now % window_seconds
        key = f"gp:rl:{bucket}:{window}"
        if self.client is not None:
            try:
                async with self.client.pipeline(transaction=False) as pipe:
                    pipe.incr(key)
                    pipe.expire(key, window_seconds + 1)
                    count, _ = await pipe.execute()
                return retry_after if int(count) > limit else None
            except RedisError as exc:
                self.errors += 1
                log.warning("rate limiter falling back to in-process counters: %s", exc)
        seen_window, count = self._local.get(bucket, (window, 0))
        count = count + 1 if seen_window == window else 1
        self._local[bucket] = (window, count)
        if len(self._local) > 50_000:
            self._local = {k: v for k, v in self._local.items() if v[0] == window}
        return retry_after if count > limit else None
