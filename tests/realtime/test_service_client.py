"""The Web PubSub service client's transport: aiohttp's per-request environment lookups (proxy
variables, ~/.netrc read in a thread) happen only when a proxy is configured."""

from __future__ import annotations

import pytest

from shared.realtime.service import ConnectionInfo

CONNECTION = "Endpoint=http://127.0.0.1;Port=8080;AccessKey=" + "k" * 44 + ";Version=1.0;"


def _trusts_env(monkeypatch: pytest.MonkeyPatch, **env: str) -> bool:
    for name in ("HTTPS_PROXY", "HTTP_PROXY", "ALL_PROXY", "https_proxy", "http_proxy", "all_proxy"):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    client = ConnectionInfo.parse(CONNECTION).client("hub")
    return bool(client._client._pipeline._transport._use_env_settings)  # type: ignore[attr-defined]


def test_without_a_proxy_the_client_skips_the_per_request_environment_lookups(monkeypatch: pytest.MonkeyPatch) -> None:
    assert _trusts_env(monkeypatch) is False


def test_a_proxy_in_the_environment_is_still_honoured(monkeypatch: pytest.MonkeyPatch) -> None:
    assert _trusts_env(monkeypatch, HTTPS_PROXY="http://proxy.internal:3128") is True
