"""Settings from the environment, validated once (Key Vault references are resolved by the platform)."""

from __future__ import annotations

import json
from decimal import Decimal
from functools import lru_cache
from typing import Literal

from pydantic import Field, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

KEY_VAULT_PREFIX = "@Microsoft.KeyVault("

#: Settings that carry secrets: in Azure each is a Key Vault reference.
SECRET_SETTINGS = (
    "DATABASE_URL",
    "REDIS_URL",
    "JWT_SIGNING_KEYS",
    "WEBPUBSUB_CONNECTION_STRING",
    "ANTHROPIC_API_KEY",
    "OPENAI_API_KEY",
    "APPLICATIONINSIGHTS_CONNECTION_STRING",
)

_DEV_SIGNING_KEYS = '{"dev-1": "ghost-pirates-local-development-signing-key-change-me"}'


class ConfigError(RuntimeError):
    pass


class Settings(BaseSettings):
    model_config = SettingsConfigDict(case_sensitive=True, extra="ignore")

    ENVIRONMENT: Literal["local", "test", "dev", "staging", "prod"] = "local"
    DATABASE_URL: str = "postgresql://postgres@127.0.0.1:5432/ghost_pirates"
    DB_POOL_MIN_SIZE: int = Field(default=1, ge=0, le=100)
    DB_POOL_MAX_SIZE: int = Field(default=10, ge=1, le=200)
    REDIS_URL: str | None = None
    JWT_SIGNING_KEYS: str = _DEV_SIGNING_KEYS
    JWT_ACTIVE_KID: str | None = None
    JWT_TTL_MINUTES: int = Field(default=60 * 12, ge=1, le=60 * 24 * 30)
    KEY_VAULT_URL: str | None = None
    JWT_KEYS_SECRET_NAME: str = "jwt-signing-keys"
    WEBPUBSUB_CONNECTION_STRING: str | None = None
    WEBPUBSUB_HUB: str = Field(default="ghost_pirates", pattern=r"^[A-Za-z0-9_]+$")
    LLM_PROVIDER: Literal["auto", "anthropic", "openai", "offline"] = "auto"
    ANTHROPIC_API_KEY: str | None = None
    OPENAI_API_KEY: str | None = None
    OPENAI_BASE_URL: str | None = None
    LLM_MODEL_MANAGER: str | None = None
    LLM_MODEL_WORKER: str | None = None
    #: Provider and model per agent, `provider[:model]` (e.g. `anthropic:claude-sonnet-4-5`); they win
    #: over LLM_PROVIDER / LLM_MODEL_* for their agent.
    LLM_MANAGER: str | None = None
    LLM_WORKER: str | None = None
    LLM_STALL_TIMEOUT_SECONDS: float = Field(default=60.0, gt=0, le=3600)
    LLM_CALL_TIMEOUT_SECONDS: float = Field(default=900.0, gt=0, le=6 * 3600)
    #: USD per million tokens of models on an OpenAI-compatible server (OPENAI_BASE_URL).
    LLM_PRICE_INPUT_PER_MTOK: Decimal = Field(default=Decimal(0), ge=0, le=1000)
    LLM_PRICE_OUTPUT_PER_MTOK: Decimal = Field(default=Decimal(0), ge=0, le=1000)
    #: `prompt` for a compatible server without response_format json_schema: the schema goes in the prompt.
    OPENAI_STRUCTURED_OUTPUT: Literal["json_schema", "prompt"] = "json_schema"
    #: On a compatible server, lower every string's maxLength in the request's schema so that the whole
    #: answer fits max_tokens (for small models that would otherwise write until cut off).
    LLM_SCHEMA_FITS_MAX_TOKENS: bool = False
    #: The most acceptance criteria a planned task may have (1–10).
    TEAM_MAX_CRITERIA: int = Field(default=10, ge=1, le=10)
    #: Input tokens one agent call may use; longer dependency outputs are cut, visibly.
    LLM_CONTEXT_BUDGET_TOKENS: int = Field(default=30_000, ge=500, le=2_000_000)
    #: A ceiling on every call's max_tokens (each agent has its own default below it).
    LLM_MAX_OUTPUT_TOKENS: int | None = Field(default=None, ge=64, le=200_000)
    #: The most tasks a plan may have (2–12).
    TEAM_MAX_TASKS: int = Field(default=12, ge=2, le=12)
    OFFLINE_LLM_LATENCY_MS: int = Field(default=0, ge=0, le=600_000)
    TEAM_MAX_PARALLEL: int = Field(default=3, ge=1, le=32)
    ESCALATION_TIMEOUT_HOURS: float = Field(default=24.0, gt=0)
    CORS_ALLOWED_ORIGINS: str = ""
    RATE_LIMIT_LOGIN_PER_MINUTE: int = Field(default=10, ge=1)
    RATE_LIMIT_WRITES_PER_MINUTE: int = Field(default=120, ge=1)
    CACHE_TTL_SECONDS: int = Field(default=120, ge=1)
    LOG_LEVEL: str = "INFO"
    APPLICATIONINSIGHTS_CONNECTION_STRING: str | None = None

    @model_validator(mode="before")
    @classmethod
    def _no_unresolved_key_vault_references(cls, data: object) -> object:
        if isinstance(data, dict):
            bad = sorted(k for k, v in data.items() if isinstance(v, str) and v.startswith(KEY_VAULT_PREFIX))
            if bad:
                raise ConfigError(
                    "unresolved Key Vault reference in setting(s) "
                    + ", ".join(bad)
                    + ": the platform could not read the secret (check the identity's access)"
                )
        return data

    @field_validator("REDIS_URL", "WEBPUBSUB_CONNECTION_STRING", "ANTHROPIC_API_KEY", "OPENAI_API_KEY",
                     "OPENAI_BASE_URL", "KEY_VAULT_URL", "APPLICATIONINSIGHTS_CONNECTION_STRING",
                     "JWT_ACTIVE_KID", "LLM_MODEL_MANAGER", "LLM_MODEL_WORKER", "LLM_MANAGER", "LLM_WORKER",
                     "LLM_MAX_OUTPUT_TOKENS", mode="before")
    @classmethod
    def _blank_is_unset(cls, value: object) -> object:
        return None if isinstance(value, str) and not value.strip() else value

    @field_validator("JWT_SIGNING_KEYS")
    @classmethod
    def _signing_keys_are_a_json_object(cls, value: str) -> str:
        try:
            keys = json.loads(value)
        except json.JSONDecodeError as exc:
            raise ValueError("JWT_SIGNING_KEYS must be a JSON object {kid: secret}") from exc
        if not isinstance(keys, dict) or not keys or not all(
            isinstance(k, str) and isinstance(v, str) and len(v) >= 32 for k, v in keys.items()
        ):
            raise ValueError("JWT_SIGNING_KEYS must map key ids to secrets of at least 32 characters")
        return value

    @model_validator(mode="after")
    def _agent_models_are_known(self) -> Settings:
        # Refuse at start a model with no price on an official API, naming the known ones.
        from shared.agents.roles import agent_models

        agent_models(self)
        return self

    @property
    def database_url(self) -> str:
        return self.DATABASE_URL

    @property
    def signing_keys(self) -> dict[str, str]:
        keys: dict[str, str] = json.loads(self.JWT_SIGNING_KEYS)
        return keys

    @property
    def active_kid(self) -> str:
        keys = self.signing_keys
        if self.JWT_ACTIVE_KID:
            if self.JWT_ACTIVE_KID not in keys:
                raise ConfigError("JWT_ACTIVE_KID names a key that is not in JWT_SIGNING_KEYS")
            return self.JWT_ACTIVE_KID
        return sorted(keys)[-1]

    @property
    def cors_origins(self) -> list[str]:
        return [o.strip() for o in self.CORS_ALLOWED_ORIGINS.split(",") if o.strip()]


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    try:
        return Settings()
    except ConfigError:
        raise
    except ValueError as exc:  # pydantic's ValidationError: name the settings, hide the values
        raise ConfigError(f"invalid settings: {exc}") from None
