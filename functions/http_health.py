"""Health: liveness (`/api/health/live`) and readiness with dependency checks (`/api/health`)."""

from __future__ import annotations

import asyncio
import time
from typing import Any, Literal

import azure.durable_functions as df
import httpx
from pydantic import BaseModel

from functions.http_common import Reply, Request, api
from shared.runtime import AppContext
from shared.security import bearer_token

bp = df.Blueprint()
VERSION = "0.1.0"
CHECK_TIMEOUT_S = 2.0


class Check(BaseModel):
    status: Literal["ok", "down", "not_configured", "degraded"]
    latency_ms: float | None = None
    detail: str | None = None


class HealthPublic(BaseModel):
    """What anyone may see: enough for a load balancer's probe, nothing about the internals."""

    status: Literal["healthy", "degraded", "unhealthy"]
    version: str
    checks: dict[str, Check]


class Health(HealthPublic):
    """With a valid token: also the cache, rate limiter and pool counters."""

    details: dict[str, Any] = {}


async def _timed(probe: Any) -> Check:
    started = time.perf_counter()
    try:
        await asyncio.wait_for(probe(), CHECK_TIMEOUT_S)
    except Exception as exc:
        return Check(status="down", latency_ms=round((time.perf_counter() - started) * 1000, 2),
                     detail=type(exc).__name__)
    return Check(status="ok", latency_ms=round((time.perf_counter() - started) * 1000, 2))


async def _database(ctx: AppContext) -> Check:
    async def probe() -> None:
        async with ctx.db.pool.connection(timeout=CHECK_TIMEOUT_S) as conn:
            await conn.execute("SELECT 1")

    return await _timed(probe)


async def _redis(ctx: AppContext) -> Check:
    if ctx.redis is None:
        return Check(status="not_configured", detail="in-process cache and rate limits")
    client = ctx.redis

    async def probe() -> None:
        await client.ping()  # type: ignore[misc]

    check = await _timed(probe)
    return check if check.status == "ok" else check.model_copy(update={"status": "degraded"})


def _pubsub_endpoint(connection_string: str) -> str | None:
    parts = dict(p.split("=", 1) for p in connection_string.split(";") if "=" in p)
    endpoint = parts.get("Endpoint")
    if endpoint and parts.get("Port"):
        endpoint = f"{endpoint.rstrip('/')}:{parts['Port']}"
    return endpoint


async def _pubsub(ctx: AppContext) -> Check:
    connection_string = ctx.settings.WEBPUBSUB_CONNECTION_STRING
    endpoint = _pubsub_endpoint(connection_string) if connection_string else None
    if not endpoint:
        return Check(status="not_configured", detail="real-time updates are off; clients poll")

    async def probe() -> None:
        async with httpx.AsyncClient(timeout=CHECK_TIMEOUT_S) as client:
            await client.head(endpoint)

    check = await _timed(probe)
    # Events wait in the outbox while Web PubSub is down: degraded, not unhealthy.
    return check if check.status == "ok" else check.model_copy(update={"status": "degraded"})


@api(bp, "GET", "/api/health", summary="Readiness: database, Redis and Web PubSub checks (details with a token)",
     tag="operations", response=Health, auth=False)
async def health(request: Request, _: None) -> Reply:
    ctx = request.ctx
    database, redis_check, pubsub = await asyncio.gather(_database(ctx), _redis(ctx), _pubsub(ctx))
    checks = {"database": database, "redis": redis_check, "pubsub": pubsub}
    if database.status == "down":
        status: Literal["healthy", "degraded", "unhealthy"] = "unhealthy"
    elif any(c.status in ("down", "degraded") for c in checks.values()):
        status = "degraded"
    else:
        status = "healthy"
    code = 503 if status == "unhealthy" else 200
    authorization = request.raw.headers.get("authorization")
    if not authorization:
        return Reply(HealthPublic(status=status, version=VERSION, checks=checks), status=code)
    await ctx.sessions.authenticate(bearer_token(authorization), fresh=False)  # a bad token is a 401
    details = {"cache": {"backend": ctx.cache.backend, **ctx.cache.stats.as_dict()},
               "rate_limiter": {"backend": ctx.limiter.backend, "errors": ctx.limiter.errors},
               "db_pool": ctx.db.pool.get_stats()}
    return Reply(Health(status=status, version=VERSION, checks=checks, details=details), status=code)


class Liveness(BaseModel):
    status: Literal["alive"]
    version: str


@api(bp, "GET", "/api/health/live", summary="Liveness: the process answers", tag="operations", response=Liveness,
     auth=False)
async def health_live(request: Request, _: None) -> Liveness:
    return Liveness(status="alive", version=VERSION)
