"""Which provider and model each agent role uses, from the settings, and the providers built for them.

The manager (plans, reviews, summaries) and the workers may use different providers:
`LLM_MANAGER=anthropic:claude-sonnet-4-5`, `LLM_WORKER=openai:gpt-4.1-mini`. Without them, both follow
`LLM_PROVIDER` (`auto` by default) with `LLM_MODEL_MANAGER` / `LLM_MODEL_WORKER` or the provider's
defaults. A model on Anthropic's or OpenAI's own API must have a price (refused at start otherwise,
with the known names); a model on an OpenAI-compatible server (`OPENAI_BASE_URL`) is priced by
`LLM_PRICE_INPUT_PER_MTOK` / `LLM_PRICE_OUTPUT_PER_MTOK`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from shared.agents.llm import (
    PROVIDER_NAMES,
    CallLimits,
    LLMProvider,
    build_provider,
    default_models,
    resolve_provider_name,
)
from shared.domain.costs import FREE, ModelPrice, PriceTable

if TYPE_CHECKING:
    from shared.config import Settings


@dataclass(frozen=True)
class ModelChoice:
    """One agent role's provider (resolved: anthropic, openai or offline) and model."""

    role: str  #: "manager" or "worker"
    provider: str
    model: str
    compatible_server: bool = False  #: openai pointed at OPENAI_BASE_URL: priced by settings

    def describe(self) -> str:
        where = " on the OpenAI-compatible server" if self.compatible_server else ""
        return f"{self.provider}:{self.model}{where}"


def parse_spec(spec: str) -> tuple[str, str | None]:
    """`provider[:model]` → (provider, model or None); the model may itself contain colons (Ollama tags)."""
    provider, _, model = spec.strip().partition(":")
    provider = provider.strip().lower()
    if provider not in (*PROVIDER_NAMES, "auto"):
        raise ValueError(f"{spec!r}: the provider must be one of auto, {', '.join(PROVIDER_NAMES)}")
    return provider, (model.strip() or None)


def _choice(settings: Settings, role: str, spec: str | None, model_override: str | None, index: int) -> ModelChoice:
    requested, model = parse_spec(spec) if spec else (settings.LLM_PROVIDER, None)
    provider = resolve_provider_name(requested, anthropic_api_key=settings.ANTHROPIC_API_KEY,
                                     openai_api_key=settings.OPENAI_API_KEY)
    if model is None:
        model = (model_override if spec is None else None) or default_models(provider)[index]
    compatible = provider == "openai" and bool(settings.OPENAI_BASE_URL)
    if provider in ("anthropic", "openai") and not compatible:
        try:
            PriceTable.require_known(model)
        except ValueError as exc:
            name = "LLM_MANAGER" if role == "manager" else "LLM_WORKER"
            raise ValueError(f"{name} ({role}): {exc}") from None
    return ModelChoice(role=role, provider=provider, model=model, compatible_server=compatible)


def agent_models(settings: Settings) -> tuple[ModelChoice, ModelChoice]:
    """(manager, worker) choices; ValueError for an unknown provider or an unpriced official model."""
    manager = _choice(settings, "manager", settings.LLM_MANAGER, settings.LLM_MODEL_MANAGER, 0)
    worker = _choice(settings, "worker", settings.LLM_WORKER, settings.LLM_MODEL_WORKER, 1)
    return manager, worker


def server_price(settings: Settings) -> ModelPrice:
    return ModelPrice(settings.LLM_PRICE_INPUT_PER_MTOK, settings.LLM_PRICE_OUTPUT_PER_MTOK)


def price_table(settings: Settings) -> PriceTable:
    """The official prices plus, for models on an OpenAI-compatible server, the settings' price."""
    price = server_price(settings)
    return PriceTable({c.model: price for c in agent_models(settings) if c.compatible_server})


def unpriced_server_models(settings: Settings) -> list[str]:
    """Models on a compatible server with no price set (billed at $0, tokens still recorded)."""
    if server_price(settings) != FREE:
        return []
    return [c.model for c in agent_models(settings) if c.compatible_server]


def call_limits(settings: Settings) -> CallLimits:
    return CallLimits(stall_timeout_s=settings.LLM_STALL_TIMEOUT_SECONDS,
                      call_timeout_s=settings.LLM_CALL_TIMEOUT_SECONDS)


def build_agent_provider(settings: Settings, choice: ModelChoice, prices: PriceTable) -> LLMProvider:
    return build_provider(
        choice.provider,
        anthropic_api_key=settings.ANTHROPIC_API_KEY,
        openai_api_key=settings.OPENAI_API_KEY,
        openai_base_url=settings.OPENAI_BASE_URL,
        openai_compatible=choice.compatible_server,
        structured_output=settings.OPENAI_STRUCTURED_OUTPUT,
        fit_strings_to_max_tokens=settings.LLM_SCHEMA_FITS_MAX_TOKENS,
        prices=prices,
        offline_latency_ms=settings.OFFLINE_LLM_LATENCY_MS,
        limits=call_limits(settings),
    )


@dataclass(frozen=True)
class AgentProviders:
    """The provider and model of each role, built once per worker process."""

    manager: LLMProvider
    manager_model: str
    worker: LLMProvider
    worker_model: str
    prices: PriceTable


def build_agent_providers(settings: Settings) -> AgentProviders:
    manager, worker = agent_models(settings)
    prices = price_table(settings)
    manager_provider = build_agent_provider(settings, manager, prices)
    same = (manager.provider, manager.compatible_server) == (worker.provider, worker.compatible_server)
    worker_provider = manager_provider if same else build_agent_provider(settings, worker, prices)
    return AgentProviders(manager_provider, manager.model, worker_provider, worker.model, prices)


@dataclass(frozen=True)
class AgentBudgets:
    """Per-call limits every agent call gets: its input token budget, an output ceiling, the plan size."""

    context_tokens: int = 30_000
    max_output_tokens: int | None = None  #: a ceiling on each agent's own max_tokens default
    max_tasks: int = 12
    max_criteria: int = 10

    def max_tokens(self, agent_default: int) -> int:
        return agent_default if self.max_output_tokens is None else min(agent_default, self.max_output_tokens)

    @classmethod
    def from_settings(cls, settings: Settings) -> AgentBudgets:
        return cls(context_tokens=settings.LLM_CONTEXT_BUDGET_TOKENS,
                   max_output_tokens=settings.LLM_MAX_OUTPUT_TOKENS, max_tasks=settings.TEAM_MAX_TASKS,
                   max_criteria=settings.TEAM_MAX_CRITERIA)
