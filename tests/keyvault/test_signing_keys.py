"""KeyVaultSigningKeys against a local TLS Key Vault with the official SDK and managed identity."""

from __future__ import annotations

import asyncio
import json
import logging

import pytest
from azure.identity.aio import DefaultAzureCredential
from azure.keyvault.secrets.aio import SecretClient

from shared.config import DEV_SIGNING_SECRET
from shared.keyvault import KeyVaultSigningKeys, SigningKeysUnavailableError

from .conftest import FakeClock, LocalVault

SECRET = "jwt-signing-keys"
FIRST = "first-secret-of-at-least-32-bytes"
SECOND = "second-secret-of-at-least-32-bytes"


def signing_keys(vault: LocalVault, clock: FakeClock, refresh_seconds: float = 300) -> KeyVaultSigningKeys:
    return KeyVaultSigningKeys(
        vault.url,
        SECRET,
        refresh_seconds=refresh_seconds,
        connection_verify=str(vault.ca_path),
        verify_challenge_resource=False,
        clock=clock,
    )


async def rotate_with_sdk(vault: LocalVault, value: str) -> None:
    """Change the secret the way an operator would: the official client's set_secret (PUT)."""
    async with (
        DefaultAzureCredential() as credential,
        SecretClient(
            vault.url, credential, verify_challenge_resource=False, connection_verify=str(vault.ca_path)
        ) as client,
    ):
        await client.set_secret(SECRET, value)


async def test_keys_are_read_through_the_bearer_challenge_with_the_managed_identity(local_vault, clock):
    local_vault.state.set(SECRET, json.dumps({"k1": FIRST}))

    async with signing_keys(local_vault, clock) as keys:
        assert await keys.get_keys() == {"k1": FIRST}

    state = local_vault.state
    assert state.unauthenticated_requests == 1  # the challenge round trip came first
    assert len(state.token_requests) == 1
    assert state.token_requests[0]["resource"] == "https://vault.azure.net"
    assert state.token_requests[0]["api-version"] == "2019-08-01"


async def test_keys_are_cached_until_the_refresh_period_ends(local_vault, clock):
    local_vault.state.set(SECRET, json.dumps({"k1": FIRST}))

    async with signing_keys(local_vault, clock, refresh_seconds=300) as keys:
        await keys.get_keys()
        clock.advance(299)
        await keys.get_keys()
        assert local_vault.state.secret_reads == 1
        clock.advance(1)
        await keys.get_keys()
        assert local_vault.state.secret_reads == 2


async def test_rotated_secret_applies_after_the_refresh_period_without_restart(local_vault, clock):
    local_vault.state.set(SECRET, json.dumps({"k1": FIRST}))

    async with signing_keys(local_vault, clock, refresh_seconds=300) as keys:
        assert await keys.get_keys() == {"k1": FIRST}
        await rotate_with_sdk(local_vault, json.dumps({"k1": FIRST, "k2": SECOND}))
        assert await keys.get_keys() == {"k1": FIRST}  # still cached

        clock.advance(300)

        assert await keys.get_keys() == {"k1": FIRST, "k2": SECOND}


async def test_refresh_failure_keeps_the_last_good_keys_and_logs(local_vault, clock, caplog):
    local_vault.state.set(SECRET, json.dumps({"k1": FIRST}))

    async with signing_keys(local_vault, clock, refresh_seconds=60) as keys:
        await keys.get_keys()
        local_vault.state.fail_reads_with = 403
        clock.advance(60)
        with caplog.at_level(logging.WARNING, logger="shared.keyvault"):
            assert await keys.get_keys() == {"k1": FIRST}
        assert any("keeping the last good keys" in r.getMessage() for r in caplog.records)

        local_vault.state.fail_reads_with = None
        local_vault.state.set(SECRET, json.dumps({"k2": SECOND}))
        clock.advance(60)
        assert await keys.get_keys() == {"k2": SECOND}


async def test_malformed_rotated_secret_keeps_the_last_good_keys(local_vault, clock):
    local_vault.state.set(SECRET, json.dumps({"k1": FIRST}))

    async with signing_keys(local_vault, clock, refresh_seconds=60) as keys:
        await keys.get_keys()
        local_vault.state.set(SECRET, "not json at all")
        clock.advance(60)

        assert await keys.get_keys() == {"k1": FIRST}


async def test_missing_secret_on_first_load_is_a_clear_error(local_vault, clock):
    async with signing_keys(local_vault, clock) as keys:
        with pytest.raises(SigningKeysUnavailableError, match="jwt-signing-keys"):
            await keys.get_keys()


async def test_concurrent_callers_share_one_vault_read(local_vault, clock):
    local_vault.state.set(SECRET, json.dumps({"k1": FIRST}))

    async with signing_keys(local_vault, clock) as keys:
        results = await asyncio.gather(*(keys.get_keys() for _ in range(20)))

    assert all(r == {"k1": FIRST} for r in results)
    assert local_vault.state.secret_reads == 1


async def test_returned_keys_cannot_corrupt_the_cache(local_vault, clock):
    local_vault.state.set(SECRET, json.dumps({"k1": FIRST}))

    async with signing_keys(local_vault, clock) as keys:
        (await keys.get_keys())["k1"] = "tampered"

        assert await keys.get_keys() == {"k1": FIRST}


async def test_rotated_secret_with_a_short_or_published_key_keeps_the_last_good_keys(local_vault, clock):
    good = {"k1": FIRST}
    local_vault.state.set(SECRET, json.dumps(good))

    async with signing_keys(local_vault, clock, refresh_seconds=60) as keys:
        await keys.get_keys()
        for bad in ({"k2": "short-secret"}, {"dev-1": DEV_SIGNING_SECRET}):
            local_vault.state.set(SECRET, json.dumps(bad))
            clock.advance(60)
            assert await keys.get_keys() == good


async def test_a_short_key_on_first_load_is_a_clear_error(local_vault, clock):
    local_vault.state.set(SECRET, json.dumps({"k1": "short-secret"}))
    async with signing_keys(local_vault, clock) as keys:
        with pytest.raises(SigningKeysUnavailableError, match="at least 32 bytes"):
            await keys.get_keys()
