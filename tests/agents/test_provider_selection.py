"""Which provider runs, with which models, and that choosing one stays cheap."""

from __future__ import annotations

import subprocess
import sys

import pytest

from shared.agents import build_provider, default_models, resolve_provider_name
from shared.agents.anthropic_provider import AnthropicProvider
from shared.agents.offline import OfflineProvider
from shared.agents.openai_provider import OpenAIProvider


@pytest.mark.parametrize(
    ("anthropic_key", "openai_key", "expected"),
    [
        ("sk-ant", "sk-oai", "anthropic"),
        (None, "sk-oai", "openai"),
        ("", "", "offline"),
        (None, None, "offline"),
    ],
)
def test_auto_prefers_anthropic_then_openai_then_offline(anthropic_key, openai_key, expected):
    assert (
        resolve_provider_name("auto", anthropic_api_key=anthropic_key, openai_api_key=openai_key) == expected
    )


def test_an_explicit_name_wins_over_the_keys_present():
    assert resolve_provider_name("offline", anthropic_api_key="sk-ant", openai_api_key=None) == "offline"
    with pytest.raises(ValueError, match="unknown LLM provider"):
        resolve_provider_name("cohere", anthropic_api_key=None, openai_api_key=None)


def test_build_provider_returns_the_resolved_provider():
    assert isinstance(build_provider("auto", anthropic_api_key="sk-ant"), AnthropicProvider)
    assert isinstance(build_provider("auto", openai_api_key="sk-oai"), OpenAIProvider)
    assert isinstance(build_provider("openai", openai_base_url="http://127.0.0.1:11434/v1"), OpenAIProvider)
    offline = build_provider("auto", offline_latency_ms=25)
    assert isinstance(offline, OfflineProvider) and offline.latency_ms == 25


def test_a_named_provider_without_its_key_is_a_configuration_error():
    with pytest.raises(ValueError, match="ANTHROPIC_API_KEY"):
        build_provider("anthropic")
    with pytest.raises(ValueError, match="OPENAI_API_KEY"):
        build_provider("openai")


def test_default_models_are_priced_manager_then_worker():
    assert default_models("anthropic") == ("claude-sonnet-4-5", "claude-haiku-4-5")
    assert default_models("openai") == ("gpt-4.1", "gpt-4.1-mini")
    assert default_models("offline") == ("offline-manager", "offline-worker")
    with pytest.raises(ValueError):
        default_models("auto")


def test_importing_the_agents_loads_no_sdk():
    code = "import sys, shared.agents; print(sorted(m for m in ('anthropic', 'openai') if m in sys.modules))"
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=30, check=True
    )
    assert result.stdout.strip() == "[]"
