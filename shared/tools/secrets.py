"""Where a tool server's header secrets (an API key, a bearer token) live: never in clear in our tables.

`tool_servers.secret_ref` holds either

- `db:<Fernet token>`: the headers encrypted with TOOL_SECRETS_KEY (local runs; any deployment that
  sets the key, itself a Key Vault reference in Azure), or
- `kv:<secret name>`: one secret per server in the tools vault (Azure: TOOL_VAULT_URL, a vault
  of its own where the app's identity is Secrets Officer), read at call time (docs/security.md,
  "Tool server secrets").

Nothing here logs a value; errors name the server's secret, never its content.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any, Protocol
from uuid import UUID

from cryptography.fernet import Fernet, InvalidToken

if TYPE_CHECKING:
    from azure.identity.aio import DefaultAzureCredential
    from azure.keyvault.secrets.aio import SecretClient


class SecretUnavailable(Exception):
    """A server's stored headers cannot be read (wrong key, missing Key Vault secret)."""


class SecretStore(Protocol):
    async def put(self, server_id: UUID, headers: dict[str, str]) -> str:
        """Store `headers`; the reference to keep in `tool_servers.secret_ref`."""
        ...

    async def get(self, ref: str) -> dict[str, str]: ...

    async def delete(self, ref: str) -> None: ...


def _decode(raw: str | bytes) -> dict[str, str]:
    value = json.loads(raw)
    if not isinstance(value, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in value.items()):
        raise SecretUnavailable("the stored headers are not a JSON object of strings")
    return value


class FernetSecretStore:
    """Headers encrypted (AES-128-CBC + HMAC-SHA256, `cryptography`'s Fernet) into the reference itself."""

    prefix = "db:"

    def __init__(self, key: str) -> None:
        self._fernet = Fernet(key.encode())

    async def put(self, server_id: UUID, headers: dict[str, str]) -> str:
        return self.prefix + self._fernet.encrypt(json.dumps(headers).encode()).decode()

    async def get(self, ref: str) -> dict[str, str]:
        if not ref.startswith(self.prefix):
            raise SecretUnavailable("this secret is not stored in the database")
        try:
            return _decode(self._fernet.decrypt(ref[len(self.prefix):].encode()))
        except InvalidToken:
            raise SecretUnavailable("the headers cannot be decrypted with TOOL_SECRETS_KEY (was it rotated?)") from None

    async def delete(self, ref: str) -> None:
        return None  # the ciphertext goes with the row


class KeyVaultSecretStore:
    """One Key Vault secret per server (`tool-server-<id>`), read and written with the app's identity.

    The identity needs "Key Vault Secrets Officer" on that vault (set, get, delete): infra gives it on the
    tools vault only (infra/modules/roles.bicep), never on the app vault.
    """

    prefix = "kv:"

    def __init__(self, vault_url: str, *, connection_verify: str | bool | None = None,
                 verify_challenge_resource: bool = True) -> None:
        self.vault_url = vault_url
        self._verify = connection_verify
        self._verify_challenge_resource = verify_challenge_resource

    def _client(self) -> tuple[DefaultAzureCredential, SecretClient]:
        """A credential and client per use: secrets are read at call time, rarely."""
        from azure.identity.aio import DefaultAzureCredential
        from azure.keyvault.secrets.aio import SecretClient

        kwargs: dict[str, Any] = {"verify_challenge_resource": self._verify_challenge_resource}
        if self._verify is not None:
            kwargs["connection_verify"] = self._verify
        credential = DefaultAzureCredential()
        return credential, SecretClient(self.vault_url, credential, **kwargs)

    @staticmethod
    def secret_name(server_id: UUID) -> str:
        return f"tool-server-{server_id}"

    async def put(self, server_id: UUID, headers: dict[str, str]) -> str:
        name = self.secret_name(server_id)
        credential, client = self._client()
        async with credential, client:
            await client.set_secret(name, json.dumps(headers), content_type="application/json")
        return self.prefix + name

    async def get(self, ref: str) -> dict[str, str]:
        from azure.core.exceptions import AzureError

        if not ref.startswith(self.prefix):
            raise SecretUnavailable("this secret is not stored in Key Vault")
        name = ref[len(self.prefix):]
        credential, client = self._client()
        try:
            async with credential, client:
                secret = await client.get_secret(name)
        except AzureError as exc:
            raise SecretUnavailable(f"Key Vault secret {name!r} cannot be read ({type(exc).__name__})") from None
        return _decode(secret.value or "{}")

    async def delete(self, ref: str) -> None:
        from azure.core.exceptions import AzureError, ResourceNotFoundError

        if not ref.startswith(self.prefix):
            return
        credential, client = self._client()
        try:
            async with credential, client:
                await client.delete_secret(ref[len(self.prefix):])
        except ResourceNotFoundError:
            return
        except AzureError:
            raise SecretUnavailable(f"Key Vault secret {ref[len(self.prefix):]!r} could not be deleted") from None


class CombinedSecretStore:
    """Writes with `primary`; reads and deletes whichever store a reference names (a deployment that
    moves to Key Vault still reads the servers registered before)."""

    def __init__(self, primary: SecretStore, *others: SecretStore) -> None:
        self.primary = primary
        self.stores = (primary, *others)

    def _for(self, ref: str) -> SecretStore:
        for store in self.stores:
            if ref.startswith(getattr(store, "prefix", "")):
                return store
        raise SecretUnavailable("no secret store holds this reference")

    async def put(self, server_id: UUID, headers: dict[str, str]) -> str:
        return await self.primary.put(server_id, headers)

    async def get(self, ref: str) -> dict[str, str]:
        return await self._for(ref).get(ref)

    async def delete(self, ref: str) -> None:
        await self._for(ref).delete(ref)
