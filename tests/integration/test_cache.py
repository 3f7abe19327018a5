"""The query cache and rate limiter on a real Redis, in-process, and during a Redis outage."""

from __future__ import annotations

import uuid

import pytest
import redis.asyncio as aioredis

from shared.cache import LocalQueryCache, RateLimiter, RedisQueryCache


def loader(values: list[bytes]):
    calls = {"n": 0}

    async def load() -> bytes:
        calls["n"] += 1
        return values[min(calls["n"], len(values)) - 1]

    return load, calls


@pytest.fixture
async def redis_client(redis_url):
    client = aioredis.Redis.from_url(redis_url)
    yield client
    await client.aclose()


@pytest.mark.redis
async def test_redis_cache_hits_until_the_company_generation_is_bumped(redis_client):
    cache = RedisQueryCache(redis_client, ttl_seconds=30)
    company, other = uuid.uuid4(), uuid.uuid4()
    load, calls = loader([b"v1", b"v2"])

    assert await cache.get_or_load(company, "team:1", load) == b"v1"
    assert await cache.get_or_load(company, "team:1", load) == b"v1"
    await cache.invalidate(other)
    assert await cache.get_or_load(company, "team:1", load) == b"v1"
    await cache.invalidate(company)
    assert await cache.get_or_load(company, "team:1", load) == b"v2"
    assert calls["n"] == 2
    assert (cache.stats.hits, cache.stats.misses) == (2, 2)


async def test_redis_outage_degrades_to_the_loader_never_to_an_error():
    dead = aioredis.Redis(host="127.0.0.1", port=1, socket_connect_timeout=0.2, socket_timeout=0.2)
    cache = RedisQueryCache(dead)
    load, calls = loader([b"fresh"])
    assert await cache.get_or_load(uuid.uuid4(), "k", load) == b"fresh"
    await cache.invalidate(uuid.uuid4())
    assert calls["n"] == 1 and cache.stats.errors >= 2
    limiter = RateLimiter(dead)
    assert await limiter.hit("bucket", limit=1) is None
    assert await limiter.hit("bucket", limit=1) is not None
    assert limiter.errors == 2
    await dead.aclose()


async def test_in_process_cache_expires_and_invalidates():
    cache = LocalQueryCache(ttl_seconds=30)
    company = uuid.uuid4()
    load, calls = loader([b"a", b"b"])
    assert await cache.get_or_load(company, "k", load) == b"a"
    assert await cache.get_or_load(company, "k", load) == b"a"
    await cache.invalidate(company)
    assert await cache.get_or_load(company, "k", load) == b"b"
    assert calls["n"] == 2
    assert cache.stats.hit_rate == pytest.approx(1 / 3)


@pytest.mark.redis
async def test_rate_limit_counts_per_bucket_in_redis(redis_client):
    limiter = RateLimiter(redis_client)
    bucket = f"test:{uuid.uuid4()}"
    results = [await limiter.hit(bucket, limit=3) for _ in range(4)]
    assert results[:3] == [None, None, None] and results[3] is not None and results[3] >= 1
    assert await limiter.hit(f"{bucket}:other", limit=3) is None


async def test_audit_and_data_scopes_are_invalidated_separately():
    cache = LocalQueryCache(ttl_seconds=30)
    company = uuid.uuid4()
    data, data_calls = loader([b"teams-1", b"teams-2"])
    audit, audit_calls = loader([b"audit-1", b"audit-2"])
    await cache.get_or_load(company, "teams", data)
    await cache.get_or_load(company, "audit", audit, scope="audit")
    await cache.invalidate(company, scope="audit")
    assert await cache.get_or_load(company, "teams", data) == b"teams-1"
    assert await cache.get_or_load(company, "audit", audit, scope="audit") == b"audit-2"
    assert (data_calls["n"], audit_calls["n"]) == (1, 2)


async def test_in_process_cache_drops_a_companys_entries_when_its_generation_moves():
    cache = LocalQueryCache(ttl_seconds=30)
    busy, quiet = uuid.uuid4(), uuid.uuid4()
    for i in range(50):
        await cache.get_or_load(busy, f"team:{i}", _value(b"x" * 100))
    await cache.get_or_load(quiet, "teams", _value(b"y" * 100))
    await cache.get_or_load(busy, "audit", _value(b"z"), scope="audit")
    assert len(cache) == 52
    await cache.invalidate(busy)
    assert len(cache) == 2 and cache.size_bytes == 101
    for _ in range(20):  # a write between every read: never more than one entry per key
        await cache.get_or_load(busy, "team:1", _value(b"v" * 10))
        await cache.invalidate(busy)
    assert len(cache) == 2


async def test_in_process_cache_is_bounded_in_bytes_and_evicts_least_recently_used():
    cache = LocalQueryCache(ttl_seconds=30, max_bytes=1000)
    company = uuid.uuid4()
    for i in range(5):
        await cache.get_or_load(company, f"k{i}", _value(b"a" * 300))
    assert cache.size_bytes <= 1000 and len(cache) == 3
    load, calls = loader([b"fresh"])
    assert await cache.get_or_load(company, "k0", load) == b"fresh"  # k0 was evicted
    assert await cache.get_or_load(company, "k4", load) == b"a" * 300  # k4 is still there
    assert calls["n"] == 1
    await cache.get_or_load(company, "huge", _value(b"h" * 2000))
    assert cache.size_bytes <= 1000


def _value(data: bytes):
    async def load() -> bytes:
        return data
    return load
