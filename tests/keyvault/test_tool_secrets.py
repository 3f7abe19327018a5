"""Where tool servers' header secrets live: a Key Vault secret per server (the official SDK against the
local TLS vault, managed identity), or Fernet ciphertext in the row; never in clear."""

from __future__ import annotations

import json
import uuid

import pytest
from cryptography.fernet import Fernet

from shared.tools.secrets import CombinedSecretStore, FernetSecretStore, KeyVaultSecretStore, SecretUnavailable

from .conftest import LocalVault

HEADERS = {"x-api-key": "tool-server-key-0042", "authorization": "Bearer abc"}


def vault_store(vault: LocalVault) -> KeyVaultSecretStore:
    return KeyVaultSecretStore(vault.url, connection_verify=str(vault.ca_path), verify_challenge_resource=False)


async def test_each_server_gets_a_key_vault_secret_that_is_read_back_and_deleted_with_it(local_vault: LocalVault):
    store = vault_store(local_vault)
    server_id = uuid.uuid4()
    ref = await store.put(server_id, HEADERS)
    assert ref == f"kv:tool-server-{server_id}" and "tool-server-key" not in ref
    assert json.loads(local_vault.state.secrets[f"tool-server-{server_id}"][1]) == HEADERS
    assert await store.get(ref) == HEADERS
    await store.delete(ref)
    assert f"tool-server-{server_id}" not in local_vault.state.secrets
    with pytest.raises(SecretUnavailable, match="cannot be read") as missing:
        await store.get(ref)
    assert "tool-server-key" not in str(missing.value)
    await store.delete(ref)  # already gone: nothing to do


async def test_database_secrets_are_fernet_ciphertext_and_a_rotated_key_says_so():
    key = Fernet.generate_key().decode()
    store = FernetSecretStore(key)
    ref = await store.put(uuid.uuid4(), HEADERS)
    assert ref.startswith("db:") and "tool-server-key" not in ref
    assert await store.get(ref) == HEADERS
    with pytest.raises(SecretUnavailable, match="TOOL_SECRETS_KEY"):
        await FernetSecretStore(Fernet.generate_key().decode()).get(ref)


async def test_a_deployment_that_moves_to_key_vault_still_reads_the_servers_registered_before(
        local_vault: LocalVault):
    old = FernetSecretStore(Fernet.generate_key().decode())
    before = await old.put(uuid.uuid4(), HEADERS)
    combined = CombinedSecretStore(vault_store(local_vault), old)
    after = await combined.put(uuid.uuid4(), {"x-api-key": "new"})
    assert after.startswith("kv:") and await combined.get(after) == {"x-api-key": "new"}
    assert await combined.get(before) == HEADERS
    with pytest.raises(SecretUnavailable):
        await combined.get("elsewhere:x")
