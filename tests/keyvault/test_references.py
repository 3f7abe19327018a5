"""Unresolved Key Vault references are a startup error naming each setting; signing-key JSON."""

from __future__ import annotations

import json

import pytest

from shared.config import DEV_SIGNING_SECRET
from shared.keyvault import (
    UnresolvedKeyVaultReferenceError,
    ensure_no_unresolved_references,
    parse_signing_keys,
)


def test_resolved_settings_pass():
    ensure_no_unresolved_references({"DATABASE_URL": "postgresql://db/app", "ENVIRONMENT": "prod"})


def test_every_unresolved_setting_is_named_in_the_error():
    env = {
        "REDIS_URL": "@Microsoft.KeyVault(SecretUri=https://kv.vault.azure.net/secrets/redis-url/)",
        "ENVIRONMENT": "prod",
        "DATABASE_URL": "@Microsoft.KeyVault(VaultName=kv;SecretName=database-url)",
    }

    with pytest.raises(UnresolvedKeyVaultReferenceError) as caught:
        ensure_no_unresolved_references(env)

    assert caught.value.names == ["DATABASE_URL", "REDIS_URL"]
    assert "DATABASE_URL, REDIS_URL" in str(caught.value)
    assert "Key Vault Secrets User" in str(caught.value)
    assert "ENVIRONMENT" not in str(caught.value)


def test_reference_text_elsewhere_in_a_value_is_not_mistaken_for_a_reference():
    ensure_no_unresolved_references({"NOTE": "see @Microsoft.KeyVault( docs"})


A32 = "a" * 32
B32 = "b" * 32


def test_signing_keys_parse_from_a_kid_to_secret_object():
    assert parse_signing_keys(json.dumps({"k1": A32, "k2": B32})) == {"k1": A32, "k2": B32}


@pytest.mark.parametrize("raw", ["[]", "{}", '{"k1": 5}', '{"k1": ""}', json.dumps({"": A32}), "nope"])
def test_signing_keys_reject_anything_but_a_non_empty_object_of_strings(raw):
    with pytest.raises(ValueError):
        parse_signing_keys(raw)


def test_key_vault_signing_keys_follow_the_32_byte_rule_of_the_environment():
    with pytest.raises(ValueError, match="at least 32 bytes"):
        parse_signing_keys(json.dumps({"k1": A32, "k2": "b" * 31}))
    # Bytes, not characters: 11 three-byte characters are 33 bytes.
    assert parse_signing_keys(json.dumps({"k1": "€" * 11})) == {"k1": "€" * 11}


def test_key_vault_signing_keys_refuse_the_published_development_key():
    with pytest.raises(ValueError, match="development key"):
        parse_signing_keys(json.dumps({"k1": A32, "dev-1": DEV_SIGNING_SECRET}))
