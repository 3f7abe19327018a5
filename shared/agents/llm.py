"""The one LLM interface the agents use, the provider choice, and the errors that carry costs.

Error tree (all are `ClassifiedFailure`, so `str(exc)` keeps the `[type]` prefix that survives the
Durable boundary):

    ClassifiedFailure                 provider errors mapped to a FailureType (docs/agents.md)
    ├── ProviderOutputInvalid         one call answered, but not with what the schema asks; carries
    │                                 the `completion` so its tokens are still paid for
    └── AgentFailed                   an agent gave up; carries every `completions` made so far
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING, Any, Literal, Protocol

import httpx
from pydantic import BaseModel

from shared.domain.costs import compute_cost
from shared.domain.failures import ClassifiedFailure, FailureType

if TYPE_CHECKING:
    from collections.abc import Sequence

_WIRE_UNSAFE = re.compile(r"[^A-Za-z0-9_-]")

ProviderName = Literal["anthropic", "openai", "offline"]
PROVIDER_NAMES: tuple[ProviderName, ...] = ("anthropic", "openai", "offline")

#: (manager model, worker model) per provider: the manager plans and reviews, so it gets the
#: stronger model; workers do the volume, so they get the cheaper one.
DEFAULT_MODELS: dict[str, tuple[str, str]] = {
    "anthropic": ("claude-sonnet-4-5", "claude-haiku-4-5"),
    "openai": ("gpt-4.1", "gpt-4.1-mini"),
    "offline": ("offline-manager", "offline-worker"),
}


@dataclass(frozen=True)
class ToolSpec:
    """A tool the model may call: `name` is `<server>.<tool>`; `input_schema` its JSON Schema."""

    name: str
    description: str
    input_schema: dict[str, Any]

    @property
    def wire_name(self) -> str:
        """The name sent to a provider (OpenAI and Anthropic allow `[A-Za-z0-9_-]{1,64}`, no dots)."""
        return wire_name(self.name)


def wire_name(name: str) -> str:
    return _WIRE_UNSAFE.sub("_", name.replace(".", "__", 1))[:64]


@dataclass(frozen=True)
class ToolCallRequest:
    """One tool call the model asked for: its own id for the call, the tool, the arguments."""

    id: str
    name: str
    arguments: dict[str, Any]


@dataclass(frozen=True)
class Message:
    """A chat message. An assistant message may carry the tool calls it asked for; a `tool` message
    is one call's result (`tool_call_id` names the call, `name` the tool)."""

    role: Literal["system", "user", "assistant", "tool"]
    content: str
    tool_calls: tuple[ToolCallRequest, ...] = ()
    tool_call_id: str | None = None
    name: str | None = None


@dataclass(frozen=True)
class Completion:
    """One LLM call as billed: the caller records `cost_usd` for every completion it is given."""

    text: str
    parsed: BaseModel | None
    input_tokens: int
    output_tokens: int
    model: str
    provider: str
    latency_ms: float
    #: When the model asked for tools instead of answering: the calls (then `parsed` is None).
    tool_calls: tuple[ToolCallRequest, ...] = ()

    @property
    def cost_usd(self) -> Decimal:
        return compute_cost(self.model, self.input_tokens, self.output_tokens)


class ProviderOutputInvalid(ClassifiedFailure):
    """The provider answered, but the text does not parse or validate against the schema."""

    def __init__(self, message: str, *, completion: Completion) -> None:
        super().__init__(FailureType.INVALID_OUTPUT, message)
        self.completion = completion


class AgentFailed(ClassifiedFailure):
    """An agent call failed; `completions` lists the calls already made (and billed) before it did."""

    def __init__(
        self,
        failure_type: FailureType,
        message: str,
        *,
        completions: Sequence[Completion] = (),
        retry_after: float | None = None,
    ) -> None:
        super().__init__(failure_type, message, retry_after=retry_after)
        self.completions = list(completions)


class LLMProvider(Protocol):
    name: str

    async def complete(
        self,
        messages: list[Message],
        *,
        model: str,
        schema: type[BaseModel] | None = None,
        max_tokens: int = 2048,
        temperature: float = 0.2,
        tools: Sequence[ToolSpec] = (),
    ) -> Completion:
        """One call. With a schema, `parsed` is a validated instance or `ProviderOutputInvalid` is raised.

        With `tools`, the model may answer with `tool_calls` instead (then `parsed` is None); a
        provider that cannot use tools has `supports_tools = False` and is never given any.
        """
        ...


def supports_tools(provider: object) -> bool:
    """Whether a provider implements tool use (the `tools` argument of `complete`)."""
    return bool(getattr(provider, "supports_tools", False))


def default_models(provider_name: str) -> tuple[str, str]:
    """(manager model, worker model) for a provider name as returned by `resolve_provider_name`."""
    try:
        return DEFAULT_MODELS[provider_name]
    except KeyError:
        raise ValueError(f"unknown LLM provider {provider_name!r}") from None


def resolve_provider_name(
    requested: str, *, anthropic_api_key: str | None, openai_api_key: str | None
) -> str:
    """`auto` picks Anthropic if its key is set, else OpenAI, else offline; other names pass through."""
    if requested == "auto":
        if anthropic_api_key:
            return "anthropic"
        if openai_api_key:
            return "openai"
        return "offline"
    if requested not in PROVIDER_NAMES:
        raise ValueError(f"unknown LLM provider {requested!r}; expected auto or one of {PROVIDER_NAMES}")
    return requested


def build_provider(
    name: str,
    *,
    anthropic_api_key: str | None = None,
    openai_api_key: str | None = None,
    openai_base_url: str | None = None,
    anthropic_base_url: str | None = None,
    offline_latency_ms: int = 0,
    timeout_s: float = 60,
    http_client: httpx.AsyncClient | None = None,
) -> LLMProvider:
    """Build the provider once per worker process; `auto` is resolved here too.

    SDK modules are imported here, not at module import, so importing the agents stays cheap.
    """
    resolved = resolve_provider_name(name, anthropic_api_key=anthropic_api_key, openai_api_key=openai_api_key)
    if resolved == "anthropic":
        if not anthropic_api_key:
            raise ValueError("LLM provider anthropic needs ANTHROPIC_API_KEY")
        from shared.agents.anthropic_provider import AnthropicProvider

        return AnthropicProvider(
            api_key=anthropic_api_key,
            base_url=anthropic_base_url,
            timeout_s=timeout_s,
            http_client=http_client,
        )
    if resolved == "openai":
        if not openai_api_key and not openai_base_url:
            raise ValueError(
                "LLM provider openai needs OPENAI_API_KEY (or OPENAI_BASE_URL for a local server)"
            )
        from shared.agents.openai_provider import OpenAIProvider

        return OpenAIProvider(
            api_key=openai_api_key, base_url=openai_base_url, timeout_s=timeout_s, http_client=http_client
        )
    from shared.agents.offline import OfflineProvider

    return OfflineProvider(latency_ms=offline_latency_ms)


def elapsed_ms(started: float) -> float:
    """Milliseconds since a `time.perf_counter()` reading."""
    return (time.perf_counter() - started) * 1000.0
