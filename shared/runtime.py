"""The per-process application context: clients built once, lazily, inside the running event loop."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from datetime import timedelta

import redis.asyncio as aioredis

from shared.cache import LocalQueryCache, QueryCache, RateLimiter, RedisQueryCache
from shared.config import Settings, get_settings
from shared.db.database import Changes, Database, make_pool
from shared.security import KeySource, TokenService
from shared.services import OrchestrationSettings, Services, ToolSettings
from shared.services.sessions import SessionService
from shared.telemetry import configure_logging, configure_telemetry

log = logging.getLogger(__name__)


@dataclass
class AppContext:
    settings: Settings
    db: Database
    services: Services
    cache: QueryCache
    limiter: RateLimiter
    tokens: TokenService
    sessions: SessionService
    redis: aioredis.Redis | None

    async def close(self) -> None:
        from shared.realtime import realtime_of

        realtime = realtime_of(self.db)
        if realtime is not None:
            await realtime.aclose()
        await self.db.pool.close()
        if self.redis is not None:
            await self.redis.aclose()


_context: AppContext | None = None
_lock: asyncio.Lock | None = None


def _key_source(settings: Settings) -> KeySource:
    if settings.KEY_VAULT_URL:
        from shared.keyvault import KeyVaultSigningKeys

        vault = KeyVaultSigningKeys(settings.KEY_VAULT_URL, settings.JWT_KEYS_SECRET_NAME)
        return vault.get_keys
    keys = settings.signing_keys

    async def from_settings() -> dict[str, str]:
        return keys

    return from_settings


def tool_settings(settings: Settings) -> ToolSettings:
    """How tool servers are reached, bounded, and where their header secrets live."""
    from shared.domain.tools import AddressPolicy, ToolLimits
    from shared.tools.mcp_client import ToolTimeouts
    from shared.tools.secrets import CombinedSecretStore, FernetSecretStore, KeyVaultSecretStore, SecretStore

    stores: list[SecretStore] = []
    if settings.TOOL_VAULT_URL:  # Azure: a secret per server in the tools vault
        stores.append(KeyVaultSecretStore(settings.TOOL_VAULT_URL))
    key = settings.tool_secrets_key
    if key:
        stores.append(FernetSecretStore(key))
    return ToolSettings(
        policy=AddressPolicy.for_environment(settings.ENVIRONMENT),
        timeouts=ToolTimeouts(connect_seconds=settings.TOOL_CONNECT_TIMEOUT_SECONDS,
                              read_seconds=settings.TOOL_READ_TIMEOUT_SECONDS),
        limits=ToolLimits(max_calls_per_task=settings.TOOL_MAX_CALLS_PER_TASK,
                          max_seconds_per_task=settings.TOOL_MAX_SECONDS_PER_TASK,
                          result_prompt_chars=settings.TOOL_RESULT_PROMPT_CHARS,
                          result_store_chars=settings.TOOL_RESULT_STORE_CHARS),
        secrets=CombinedSecretStore(*stores) if stores else None,
    )


def model_names(settings: Settings) -> tuple[str, str]:
    """Manager and worker model names for new teams."""
    from shared.agents.llm import default_models, resolve_provider_name

    provider = resolve_provider_name(
        settings.LLM_PROVIDER, anthropic_api_key=settings.ANTHROPIC_API_KEY, openai_api_key=settings.OPENAI_API_KEY
    )
    manager, worker = default_models(provider)
    return settings.LLM_MODEL_MANAGER or manager, settings.LLM_MODEL_WORKER or worker


async def build_context(settings: Settings) -> AppContext:
    configure_logging(settings.LOG_LEVEL)
    if settings.APPLICATIONINSIGHTS_CONNECTION_STRING:
        from azure.identity import ManagedIdentityCredential

        # Application Insights accepts telemetry only when signed in with the app's identity.
        configure_telemetry(settings.APPLICATIONINSIGHTS_CONNECTION_STRING, credential=ManagedIdentityCredential())
    pool = make_pool(settings.database_url, min_size=settings.DB_POOL_MIN_SIZE, max_size=settings.DB_POOL_MAX_SIZE)
    await pool.open(wait=False)
    db = Database(pool)
    client: aioredis.Redis | None = None
    cache: QueryCache
    if settings.REDIS_URL:
        client = aioredis.Redis.from_url(
            settings.REDIS_URL, socket_connect_timeout=0.5, socket_timeout=0.5, health_check_interval=30
        )
        cache = RedisQueryCache(client, ttl_seconds=settings.CACHE_TTL_SECONDS)
    else:
        cache = LocalQueryCache(ttl_seconds=settings.CACHE_TTL_SECONDS)

    async def invalidate(changes: Changes) -> None:
        # Every data change writes audit rows too, so the audit scope follows both kinds.
        for company_id in changes.companies:
            await cache.invalidate(company_id)
        for company_id in changes.companies | changes.audit_companies:
            await cache.invalidate(company_id, scope="audit")

    db.listeners.append(invalidate)
    # After each commit that wrote team events, the outbox publisher sends them in the background.
    from shared.realtime import attach_realtime

    attach_realtime(db, settings)
    manager_model, worker_model = model_names(settings)
    tokens = TokenService(_key_source(settings), active_kid=settings.active_kid,
                          ttl=timedelta(minutes=settings.JWT_TTL_MINUTES))
    sessions = SessionService(db, tokens, cache_seconds=settings.AUTH_CACHE_SECONDS,
                              max_session=timedelta(hours=settings.SESSION_MAX_HOURS))
    return AppContext(
        settings=settings,
        db=db,
        services=Services.build(db, manager_model=manager_model, worker_model=worker_model,
                                orchestration=OrchestrationSettings(
                                    max_parallel=settings.TEAM_MAX_PARALLEL,
                                    escalation_timeout_hours=settings.ESCALATION_TIMEOUT_HOURS,
                                    tool_approval_timeout_hours=settings.tool_approval_timeout_hours),
                                tools=tool_settings(settings)),
        cache=cache,
        limiter=RateLimiter(client),
        tokens=tokens,
        sessions=sessions,
        redis=client,
    )


async def get_context() -> AppContext:
    global _context, _lock
    if _context is not None:
        return _context
    if _lock is None:
        _lock = asyncio.Lock()
    async with _lock:
        if _context is None:
            _context = await build_context(get_settings())
    return _context


async def reset_context() -> None:
    """Close and forget the context (tests, and hosts shutting down)."""
    global _context, _lock
    if _context is not None:
        await _context.close()
    _context = None
    _lock = None
