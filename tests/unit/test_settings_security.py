"""Settings refuse development defaults outside ENVIRONMENT=local/test, naming the setting."""

from __future__ import annotations

import json

import pytest

from shared.config import DEV_SIGNING_SECRET, ConfigError, Settings, get_settings

OWN_KEYS = json.dumps({"k1": "x" * 48})


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch):
    for name in ("ENVIRONMENT", "JWT_SIGNING_KEYS", "KEY_VAULT_URL", "TRUSTED_PROXY_HOPS", "JWT_ACTIVE_KID"):
        monkeypatch.delenv(name, raising=False)
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


@pytest.mark.parametrize("environment", ["dev", "staging", "prod"])
def test_unset_signing_keys_refuse_to_start_outside_local(monkeypatch, environment):
    monkeypatch.setenv("ENVIRONMENT", environment)
    monkeypatch.setenv("TRUSTED_PROXY_HOPS", "1")
    with pytest.raises(ConfigError, match="JWT_SIGNING_KEYS is unset"):
        get_settings()


def test_the_published_development_key_refuses_to_start_outside_local(monkeypatch):
    monkeypatch.setenv("ENVIRONMENT", "prod")
    monkeypatch.setenv("TRUSTED_PROXY_HOPS", "1")
    monkeypatch.setenv("JWT_SIGNING_KEYS", json.dumps({"k1": "y" * 40, "dev-1": DEV_SIGNING_SECRET}))
    with pytest.raises(ConfigError, match="JWT_SIGNING_KEYS holds the published development key"):
        get_settings()


def test_zero_trusted_proxy_hops_refuses_to_start_outside_local(monkeypatch):
    monkeypatch.setenv("ENVIRONMENT", "staging")
    monkeypatch.setenv("JWT_SIGNING_KEYS", OWN_KEYS)
    with pytest.raises(ConfigError, match="TRUSTED_PROXY_HOPS"):
        get_settings()


def test_own_keys_behind_the_front_end_start_outside_local(monkeypatch):
    monkeypatch.setenv("ENVIRONMENT", "prod")
    monkeypatch.setenv("JWT_SIGNING_KEYS", OWN_KEYS)
    monkeypatch.setenv("TRUSTED_PROXY_HOPS", "1")
    settings = get_settings()
    assert settings.signing_keys == {"k1": "x" * 48} and settings.active_kid == "k1"


def test_key_vault_alone_is_enough_outside_local(monkeypatch):
    monkeypatch.setenv("ENVIRONMENT", "prod")
    monkeypatch.setenv("KEY_VAULT_URL", "https://vault.example/")
    monkeypatch.setenv("TRUSTED_PROXY_HOPS", "1")
    monkeypatch.setenv("JWT_ACTIVE_KID", "k7")
    assert get_settings().active_kid == "k7"  # checked against the vault's keys at run time


@pytest.mark.parametrize("environment", ["local", "test"])
def test_local_and_test_runs_sign_with_the_development_key(monkeypatch, environment):
    monkeypatch.setenv("ENVIRONMENT", environment)
    assert get_settings().signing_keys == {"dev-1": DEV_SIGNING_SECRET}


def test_short_signing_secrets_are_refused_by_bytes_and_the_value_is_not_echoed(monkeypatch):
    monkeypatch.setenv("JWT_SIGNING_KEYS", json.dumps({"k1": "s3cr3t-but-short"}))
    with pytest.raises(ConfigError, match="at least 32 bytes") as caught:
        get_settings()
    assert "s3cr3t-but-short" not in str(caught.value)


def test_default_token_lifetime_is_an_hour():
    assert Settings().JWT_TTL_MINUTES == 60


def test_every_setting_is_in_the_example_settings_and_the_example_starts_locally(monkeypatch):
    from pathlib import Path

    values = json.loads((Path(__file__).parents[2] / "local.settings.example.json").read_text())["Values"]
    assert set(Settings.model_fields) <= set(values)
    for name in Settings.model_fields:
        monkeypatch.setenv(name, values[name])
    settings = get_settings()
    assert settings.ENVIRONMENT == "local" and settings.signing_keys == {"dev-1": DEV_SIGNING_SECRET}
