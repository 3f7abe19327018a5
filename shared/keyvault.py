"""Secrets from Key Vault: fail fast on unresolved references, and JWT signing keys that rotate
without a restart.

In Azure every secret-bearing setting is a Key Vault reference that the platform resolves with
the app's managed identity; when it cannot, the raw ``@Microsoft.KeyVault(`` string becomes the
value, which must never be used (../shared/protocols/KEY_VAULT_AND_BICEP.md). Signing keys are
also read directly with the SDK so a rotated key applies within ``refresh_seconds``.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Mapping
from types import TracebackType
from typing import Any

from azure.core.credentials_async import AsyncTokenCredential
from azure.core.exceptions import AzureError
from azure.identity.aio import DefaultAzureCredential
from azure.keyvault.secrets.aio import SecretClient

from shared.config import DEV_SIGNING_SECRET, KEY_VAULT_PREFIX, check_signing_keys, unresolved_key_vault_references

__all__ = [
    "KEY_VAULT_REFERENCE_PREFIX",
    "KeyVaultSigningKeys",
    "SigningKeysUnavailableError",
    "UnresolvedKeyVaultReferenceError",
    "ensure_no_unresolved_references",
    "parse_signing_keys",
]

logger = logging.getLogger(__name__)

KEY_VAULT_REFERENCE_PREFIX = KEY_VAULT_PREFIX


class UnresolvedKeyVaultReferenceError(RuntimeError):
    """One or more settings still hold a Key Vault reference instead of the secret."""

    def __init__(self, names: list[str]) -> None:
        self.names = names
        super().__init__(
            "Key Vault references were not resolved for: "
            + ", ".join(names)
            + ". The platform could not read these secrets: check that the app's managed identity"
            " has the 'Key Vault Secrets User' role on the vault and that each secret exists"
            " (Function App > Environment variables shows each reference's status;"
            " docs/runbook.md, 'Unresolved Key Vault reference')."
        )


class SigningKeysUnavailableError(RuntimeError):
    """No signing keys could be loaded from Key Vault, and none were loaded before."""


def ensure_no_unresolved_references(env: Mapping[str, str]) -> None:
    """Raise naming every setting whose value is still an unresolved Key Vault reference."""
    names = unresolved_key_vault_references(env)
    if names:
        raise UnresolvedKeyVaultReferenceError(names)


def parse_signing_keys(raw: str) -> dict[str, str]:
    """Parse the secret's JSON ``{"<kid>": "<secret>"}``; ValueError if it is anything else.

    The rules are those of ``JWT_SIGNING_KEYS`` (secrets of at least 32 bytes), and the published
    development key is refused: a vault exists only outside local runs, where it must never be used.
    """
    keys = check_signing_keys(raw, source="signing keys")
    if DEV_SIGNING_SECRET in keys.values():
        raise ValueError("signing keys hold the published development key; generate your own")
    return keys


class KeyVaultSigningKeys:
    """JWT signing keys read from one Key Vault secret, cached and refreshed in the background of
    requests: after ``refresh_seconds`` the next ``get_keys()`` re-reads the secret. A failed
    refresh keeps the last good keys (and logs), so a Key Vault outage never logs users out.

    ``credential`` defaults to ``DefaultAzureCredential`` (the managed identity in Azure).
    ``verify_challenge_resource`` must stay True in Azure; tests against a local vault turn it off.
    ``clock`` is a monotonic clock in seconds, injectable so tests can advance time.
    """

    def __init__(
        self,
        vault_url: str,
        secret_name: str,
        *,
        credential: AsyncTokenCredential | None = None,
        refresh_seconds: float = 300,
        connection_verify: str | bool | None = None,
        verify_challenge_resource: bool = True,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if refresh_seconds <= 0:
            raise ValueError("refresh_seconds must be positive")
        self._vault_url = vault_url
        self._secret_name = secret_name
        self._credential = credential
        self._owns_credential = credential is None
        self._refresh_seconds = refresh_seconds
        self._connection_verify = connection_verify
        self._verify_challenge_resource = verify_challenge_resource
        self._clock = clock
        self._client: SecretClient | None = None
        self._keys: dict[str, str] | None = None
        self._next_refresh_at = 0.0
        self._lock = asyncio.Lock()

    @property
    def secret_name(self) -> str:
        return self._secret_name

    async def get_keys(self) -> dict[str, str]:
        """The current ``{kid: secret}`` map; reads Key Vault at most once per refresh period."""
        keys = self._keys
        if keys is not None and self._clock() < self._next_refresh_at:
            return dict(keys)
        async with self._lock:
            # Another caller may have refreshed while this one waited for the lock.
            keys = self._keys
            if keys is None or self._clock() >= self._next_refresh_at:
                keys = await self._refresh(keys)
            return dict(keys)

    async def _refresh(self, last_good: dict[str, str] | None) -> dict[str, str]:
        try:
            secret = await self._get_client().get_secret(self._secret_name)
            if secret.value is None:
                raise ValueError("secret has no value")
            keys = parse_signing_keys(secret.value)
        except (AzureError, ValueError) as exc:
            if last_good is None:
                raise SigningKeysUnavailableError(
                    f"could not load JWT signing keys from Key Vault secret {self._secret_name!r}: "
                    f"{type(exc).__name__}: {exc}"
                ) from exc
            # Keep serving the last good keys; try again after another period.
            self._next_refresh_at = self._clock() + self._refresh_seconds
            logger.warning(
                "jwt signing keys refresh failed; keeping the last good keys",
                extra={
                    "secret_name": self._secret_name,
                    "error_type": type(exc).__name__,
                    "error": str(exc),
                },
            )
            return last_good
        if last_good is not None and keys.keys() != last_good.keys():
            logger.info(
                "jwt signing keys rotated",
                extra={"secret_name": self._secret_name, "kids": sorted(keys)},
            )
        self._keys = keys
        self._next_refresh_at = self._clock() + self._refresh_seconds
        return keys

    def _get_client(self) -> SecretClient:
        if self._client is None:
            if self._credential is None:
                self._credential = DefaultAzureCredential()
            kwargs: dict[str, Any] = {"verify_challenge_resource": self._verify_challenge_resource}
            if self._connection_verify is not None:
                kwargs["connection_verify"] = self._connection_verify
            self._client = SecretClient(self._vault_url, self._credential, **kwargs)
        return self._client

    async def close(self) -> None:
        """Close the HTTP session, and the credential when this object created it."""
        if self._client is not None:
            await self._client.close()
            self._client = None
        if self._owns_credential and self._credential is not None:
            await self._credential.close()
            self._credential = None

    async def __aenter__(self) -> KeyVaultSigningKeys:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()
