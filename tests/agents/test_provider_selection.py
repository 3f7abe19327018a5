"""Which provider runs, with which models, and that choosing one stays cheap."""

from __future__ import annotations

import subprocess
import sys
from decimal import Decimal

import pytest

from shared.agents import build_provider, default_models, resolve_provider_name
from shared.agents.anthropic_provider import AnthropicProvider
from shared.agents.offline import OfflineProvider
from shared.agents.openai_provider import OpenAIProvider
from shared.agents.roles import agent_models, build_agent_providers, price_table, unpriced_server_models
from shared.domain.costs import PriceTable


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


def settings(**values: str):
    from shared.config import Settings

    base = {"LLM_PROVIDER": "auto", "ANTHROPIC_API_KEY": "", "OPENAI_API_KEY": "", "OPENAI_BASE_URL": ""}
    return Settings.model_validate({**base, **values})


def test_manager_and_worker_may_use_different_providers_and_each_gets_its_own():
    chosen = settings(LLM_MANAGER="anthropic:claude-sonnet-4-5", LLM_WORKER="openai:gpt-4.1-mini",
                      ANTHROPIC_API_KEY="sk-ant", OPENAI_API_KEY="sk-oai")

    manager, worker = agent_models(chosen)
    agents = build_agent_providers(chosen)

    assert (manager.provider, manager.model, worker.provider, worker.model) == (
        "anthropic", "claude-sonnet-4-5", "openai", "gpt-4.1-mini")
    assert isinstance(agents.manager, AnthropicProvider) and isinstance(agents.worker, OpenAIProvider)
    assert (agents.manager_model, agents.worker_model) == ("claude-sonnet-4-5", "gpt-4.1-mini")


def test_a_provider_without_a_model_takes_its_default_for_the_role():
    manager, worker = agent_models(settings(LLM_MANAGER="offline", LLM_WORKER="anthropic", ANTHROPIC_API_KEY="k"))
    assert (manager.model, worker.model) == ("offline-manager", "claude-haiku-4-5")


def test_an_unknown_model_on_an_official_api_is_refused_at_start_with_the_known_ones():
    from shared.config import Settings

    with pytest.raises(ValueError) as caught:
        Settings.model_validate({"LLM_WORKER": "openai:gpt-9-turbo", "OPENAI_API_KEY": "sk-oai"})

    message = str(caught.value)
    assert "LLM_WORKER" in message and "gpt-9-turbo" in message
    assert "claude-sonnet-4-5" in message and "gpt-4.1-mini" in message, "the known models are listed"


def test_a_dated_snapshot_of_a_known_model_is_accepted():
    manager, _ = agent_models(settings(LLM_MANAGER="anthropic:claude-sonnet-4-5-20250929", ANTHROPIC_API_KEY="k"))
    assert manager.model == "claude-sonnet-4-5-20250929"


def test_a_model_on_a_compatible_server_is_priced_by_settings_and_flagged_when_free():
    local = settings(LLM_PROVIDER="openai", OPENAI_BASE_URL="http://127.0.0.1:8080/v1",
                     LLM_MODEL_MANAGER="smollm2", LLM_MODEL_WORKER="smollm2")
    priced = settings(LLM_PROVIDER="openai", OPENAI_BASE_URL="http://127.0.0.1:8080/v1",
                      LLM_MODEL_MANAGER="smollm2", LLM_MODEL_WORKER="smollm2",
                      LLM_PRICE_INPUT_PER_MTOK="0.10", LLM_PRICE_OUTPUT_PER_MTOK="0.30")

    assert all(c.compatible_server for c in agent_models(local))
    assert price_table(local).cost("smollm2", 1_000_000, 1_000_000) == Decimal(0)
    assert unpriced_server_models(local) == ["smollm2", "smollm2"]
    assert price_table(priced).cost("smollm2", 1_000_000, 1_000_000) == Decimal("0.40000000")
    assert unpriced_server_models(priced) == []
    assert price_table(priced).cost("gpt-4.1", 1_000_000, 0) == Decimal("2.00000000"), "official prices stay"


def test_the_worst_case_cost_of_a_call_is_its_input_plus_max_tokens_of_output():
    table = PriceTable()
    worst = table.worst_case_cost("claude-haiku-4-5", input_tokens=1_000_000, max_tokens=200_000)
    assert worst == Decimal("2.00000000")
