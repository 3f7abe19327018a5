"""Settings from the environment, validated once (Key Vault references are resolved by the platform)."""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from collections.abc import Mapping
from functools import lru_cache
from typing import Literal

from pydantic import Field, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

KEY_VAULT_PREFIX = "@Microsoft.KeyVault("


def unresolved_key_vault_references(values: Mapping[str, object]) -> list[str]:
    """The settings whose value is still a Key Vault reference (the platform could not read the
    secret, so the raw `@Microsoft.KeyVault(` text became the value): the one place this rule lives."""
    return sorted(k for k, v in values.items() if isinstance(v, str) and v.lstrip().startswith(KEY_VAULT_PREFIX))

#: Settings that carry secrets: in Azure each is a Key Vault reference.
SECRET_SETTINGS = (
    "DATABASE_URL",
    "REDIS_URL",
    "JWT_SIGNING_KEYS",
    "WEBPUBSUB_CONNECTION_STRING",
    "ANTHROPIC_API_KEY",
    "OPENAI_API_KEY",
    "APPLICATIONINSIGHTS_CONNECTION_STRING",
    "TOOL_SECRETS_KEY",
)

#: The published development key: what local runs and tests sign with when JWT_SIGNING_KEYS is unset.
#: Anyone can read it in this repository, so it is refused everywhere else (environment and Key Vault).
DEV_SIGNING_SECRET = "ghost-pirates-local-development-signing-key-change-me"
_DEV_SIGNING_KEYS = json.dumps({"dev-1": DEV_SIGNING_SECRET})
#: Environments where development defaults (the published signing key, socket-peer rate limits) are allowed.
DEVELOPMENT_ENVIRONMENTS = ("local", "test")
#: Local runs and tests encrypt tool servers' header secrets with a key made from this published
#: passphrase when TOOL_SECRETS_KEY is unset; anyone can read it here, so it is refused elsewhere.
DEV_TOOL_SECRETS_PASSPHRASE = "ghost-pirates-local-development-tool-secrets-change-me"
#: The ≥ 32-byte rule for signing secrets (RFC 7518 §3.2: an HS256 key at least as long as the hash).
MIN_SIGNING_SECRET_BYTES = 32


class ConfigError(RuntimeError):
    pass


class Settings(BaseSettings):
    model_config = SettingsConfigDict(case_sensitive=True, extra="ignore")

    ENVIRONMENT: Literal["local", "test", "dev", "staging", "prod"] = "local"
    DATABASE_URL: str = "postgresql://postgres@127.0.0.1:5432/ghost_pirates"
    DB_POOL_MIN_SIZE: int = Field(default=1, ge=0, le=100)
    DB_POOL_MAX_SIZE: int = Field(default=10, ge=1, le=200)
    REDIS_URL: str | None = None
    #: Unset means the published development key, which only ENVIRONMENT=local/test accept.
    JWT_SIGNING_KEYS: str | None = None
    JWT_ACTIVE_KID: str | None = None
    #: Access token lifetime; the dashboard renews its token while open (POST /api/auth/refresh).
    JWT_TTL_MINUTES: int = Field(default=60, ge=1, le=60 * 24)
    #: Renewal ends this long after the password was last typed: then the user logs in again.
    SESSION_MAX_HOURS: float = Field(default=24, gt=0, le=24 * 30)
    #: How long a read request may trust a cached "this user exists with this token version" (writes
    #: always read the row). Revocation reaches other instances within this time.
    AUTH_CACHE_SECONDS: float = Field(default=10, ge=0, le=300)
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
    OFFLINE_LLM_LATENCY_MS: int = Field(default=0, ge=0, le=600_000)
    TEAM_MAX_PARALLEL: int = Field(default=3, ge=1, le=32)
    ESCALATION_TIMEOUT_HOURS: float = Field(default=24.0, gt=0)
    CORS_ALLOWED_ORIGINS: str = ""
    RATE_LIMIT_LOGIN_PER_MINUTE: int = Field(default=10, ge=1)
    #: Login attempts per client address and minute; unset is 3x the per-email limit (an office
    #: behind one NAT shares an address, so it is higher than the per-email limit).
    RATE_LIMIT_LOGIN_PER_ADDRESS_PER_MINUTE: int | None = Field(default=None, ge=1)
    #: How many proxies in front of the app append to X-Forwarded-For: 0 keys rate limits on the
    #: socket peer the host reports (devhost); 1 on the address the Functions front end appended (Azure).
    TRUSTED_PROXY_HOPS: int = Field(default=0, ge=0, le=5)
    RATE_LIMIT_WRITES_PER_MINUTE: int = Field(default=120, ge=1)
    CACHE_TTL_SECONDS: int = Field(default=120, ge=1)
    LOG_LEVEL: str = "INFO"
    APPLICATIONINSIGHTS_CONNECTION_STRING: str | None = None
    #: Tools (docs/agents.md "Tools"): per task at most this many calls and this much time in tools.
    TOOL_MAX_CALLS_PER_TASK: int = Field(default=20, ge=0, le=1000)
    TOOL_MAX_SECONDS_PER_TASK: float = Field(default=300.0, gt=0, le=86_400)
    TOOL_CONNECT_TIMEOUT_SECONDS: float = Field(default=5.0, gt=0, le=120)
    TOOL_READ_TIMEOUT_SECONDS: float = Field(default=60.0, gt=0, le=3600)
    #: A result is shown to the model up to this many characters, and stored up to TOOL_RESULT_STORE_CHARS.
    TOOL_RESULT_PROMPT_CHARS: int = Field(default=4000, ge=100, le=1_000_000)
    TOOL_RESULT_STORE_CHARS: int = Field(default=100_000, ge=1000, le=10_000_000)
    #: How long a tool call waits for a person's approval before it is denied; unset: ESCALATION_TIMEOUT_HOURS.
    TOOL_APPROVAL_TIMEOUT_HOURS: float | None = Field(default=None, gt=0)
    #: Fernet key (urlsafe base64 of 32 bytes) that encrypts tool servers' header secrets in the
    #: database; with KEY_VAULT_URL each server's headers are a Key Vault secret instead.
    TOOL_SECRETS_KEY: str | None = None
    #: Azure: the tools vault (infra: keyvault-tools), where each tool server's headers are one secret.
    TOOL_VAULT_URL: str | None = None

    @model_validator(mode="before")
    @classmethod
    def _no_unresolved_key_vault_references(cls, data: object) -> object:
        if isinstance(data, dict):
            bad = unresolved_key_vault_references(data)
            if bad:
                raise ConfigError(
                    "unresolved Key Vault reference in setting(s) "
                    + ", ".join(bad)
                    + ": the platform could not read the secret (check the identity's access)"
                )
        return data

    @field_validator("REDIS_URL", "WEBPUBSUB_CONNECTION_STRING", "ANTHROPIC_API_KEY", "OPENAI_API_KEY",
                     "OPENAI_BASE_URL", "KEY_VAULT_URL", "APPLICATIONINSIGHTS_CONNECTION_STRING",
                     "JWT_ACTIVE_KID", "LLM_MODEL_MANAGER", "LLM_MODEL_WORKER",
                     "RATE_LIMIT_LOGIN_PER_ADDRESS_PER_MINUTE", "TOOL_SECRETS_KEY", "TOOL_APPROVAL_TIMEOUT_HOURS",
                     "TOOL_VAULT_URL",
                     mode="before")
    @classmethod
    def _blank_is_unset(cls, value: object) -> object:
        return None if isinstance(value, str) and not value.strip() else value

    @field_validator("JWT_SIGNING_KEYS", mode="before")
    @classmethod
    def _blank_keys_are_unset(cls, value: object) -> object:
        return None if isinstance(value, str) and not value.strip() else value

    @field_validator("JWT_SIGNING_KEYS")
    @classmethod
    def _signing_keys_are_a_json_object(cls, value: str | None) -> str | None:
        if value is not None:
            check_signing_keys(value, source="JWT_SIGNING_KEYS")
        return value

    @field_validator("TOOL_SECRETS_KEY")
    @classmethod
    def _tool_secrets_key_is_a_fernet_key(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                raw = base64.urlsafe_b64decode(value.encode())
            except (ValueError, binascii.Error):
                raw = b""
            if len(raw) != 32:
                raise ValueError("TOOL_SECRETS_KEY must be urlsafe base64 of 32 bytes (Fernet.generate_key())")
        return value

    @model_validator(mode="after")
    def _no_development_defaults_outside_local(self) -> Settings:
        if self.ENVIRONMENT in DEVELOPMENT_ENVIRONMENTS:
            return self
        where = f"ENVIRONMENT={self.ENVIRONMENT}"
        if self.JWT_SIGNING_KEYS is None and not self.KEY_VAULT_URL:
            raise ConfigError(
                f"JWT_SIGNING_KEYS is unset ({where}): set it (or KEY_VAULT_URL) to your own keys; the"
                " published development key is accepted only with ENVIRONMENT=local or test"
            )
        if self.JWT_SIGNING_KEYS is not None and DEV_SIGNING_SECRET in json.loads(self.JWT_SIGNING_KEYS).values():
            raise ConfigError(
                f"JWT_SIGNING_KEYS holds the published development key ({where}): anyone could forge"
                " tokens with it; generate your own (docs/runbook.md)"
            )
        if dev_tool_secrets_key() == self.TOOL_SECRETS_KEY:
            raise ConfigError(
                f"TOOL_SECRETS_KEY is the published development key ({where}): generate your own"
                " (docs/security.md, \"Tool server secrets\")"
            )
        if self.TRUSTED_PROXY_HOPS == 0:
            raise ConfigError(
                f"TRUSTED_PROXY_HOPS is 0 ({where}): behind the Functions front end set it to 1, or rate"
                " limits cannot tell clients apart (docs/security.md)"
            )
        return self

    @property
    def database_url(self) -> str:
        return self.DATABASE_URL

    @property
    def signing_keys(self) -> dict[str, str]:
        """The keys of JWT_SIGNING_KEYS; unset is the development key (validation allowed it)."""
        keys: dict[str, str] = json.loads(self.JWT_SIGNING_KEYS or _DEV_SIGNING_KEYS)
        return keys

    @property
    def active_kid(self) -> str | None:
        if self.KEY_VAULT_URL:  # the vault's keys are known only at run time; TokenService checks then
            return self.JWT_ACTIVE_KID
        keys = self.signing_keys
        if self.JWT_ACTIVE_KID:
            if self.JWT_ACTIVE_KID not in keys:
                raise ConfigError("JWT_ACTIVE_KID names a key that is not in JWT_SIGNING_KEYS")
            return self.JWT_ACTIVE_KID
        return sorted(keys)[-1]

    @property
    def login_limit_per_address(self) -> int:
        return self.RATE_LIMIT_LOGIN_PER_ADDRESS_PER_MINUTE or 3 * self.RATE_LIMIT_LOGIN_PER_MINUTE

    @property
    def tool_approval_timeout_hours(self) -> float:
        return self.TOOL_APPROVAL_TIMEOUT_HOURS or self.ESCALATION_TIMEOUT_HOURS

    @property
    def tool_secrets_key(self) -> str | None:
        """The key that encrypts tool header secrets; the published one only in local runs and tests."""
        if self.TOOL_SECRETS_KEY:
            return self.TOOL_SECRETS_KEY
        if self.ENVIRONMENT in DEVELOPMENT_ENVIRONMENTS:
            return dev_tool_secrets_key()
        return None

    @property
    def cors_origins(self) -> list[str]:
        return [o.strip() for o in self.CORS_ALLOWED_ORIGINS.split(",") if o.strip()]


def check_signing_keys(raw: str, *, source: str) -> dict[str, str]:
    """Parse `{kid: secret}`; ValueError unless every secret has at least 32 bytes (env and Key Vault alike)."""
    try:
        keys = json.loads(raw)
    except json.JSONDecodeError as exc:
        where = f"line {exc.lineno}, column {exc.colno}"
        raise ValueError(f"{source} must be a JSON object {{kid: secret}} ({where})") from None
    if not isinstance(keys, dict) or not keys:
        raise ValueError(f"{source} must be a non-empty JSON object {{kid: secret}}")
    for kid, secret in keys.items():
        if not kid or not isinstance(secret, str) or len(secret.encode()) < MIN_SIGNING_SECRET_BYTES:
            raise ValueError(
                f"{source}: key {kid!r} must map a non-empty kid to a secret of at least"
                f" {MIN_SIGNING_SECRET_BYTES} bytes"
            )
    return keys


def dev_tool_secrets_key() -> str:
    """The published development Fernet key (urlsafe base64 of SHA-256 of the passphrase)."""
    digest = hashlib.sha256(DEV_TOOL_SECRETS_PASSPHRASE.encode()).digest()
    return base64.urlsafe_b64encode(digest).decode()


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    try:
        return Settings()
    except ConfigError:
        raise
    except ValidationError as exc:  # name the settings and the rule, never the values (they may be secrets)
        problems = "; ".join(
            f"{'.'.join(str(part) for part in error['loc']) or 'settings'}: {error['msg']}"
            for error in exc.errors(include_url=False, include_input=False, include_context=False)
        )
        raise ConfigError(f"invalid settings: {problems}") from None
