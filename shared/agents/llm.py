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
from collections.abc import Awaitable, Callable
from contextvars import ContextVar
from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING, Any, Literal, Protocol

from pydantic import BaseModel

from shared.domain.costs import OFFICIAL, ModelPrice, PriceTable
from shared.domain.failures import ClassifiedFailure, FailureType

if TYPE_CHECKING:
    from collections.abc import Sequence

    import httpx2  # the HTTP client both SDKs (openai 3, anthropic 2) are built on

_WIRE_UNSAFE = re.compile(r"[^A-Za-z0-9_-]")

ProviderName = Literal["anthropic", "openai", "offline"]
PROVIDER_NAMES: tuple[ProviderName, ...] = ("anthropic", "openai", "offline")
#: How an OpenAI-compatible server is asked for JSON: `json_schema` (response_format, constrained
#: decoding) or `prompt` (the schema pasted into the system prompt, for servers without json_schema).
StructuredOutput = Literal["json_schema", "prompt"]

#: Called with each piece of text as the model writes it (a streaming call's deltas).
OnDelta = Callable[[str], Awaitable[None]]

#: The cost row (call id) of the LLM call being made, set by the metering wrapper around the inner
#: provider's `complete`. A provider whose API takes a client request id sends it (OpenAI's
#: `X-Client-Request-Id`), so a call is one id in our cost rows, our logs and the provider's records.
CALL_ID: ContextVar[str | None] = ContextVar("gp_llm_call_id", default=None)


class LiveCall(Protocol):
    """Where one call's deltas go (e.g. `llm.delta` messages); closed when the call ends."""

    async def __call__(self, text: str) -> None: ...

    async def aclose(self) -> None: ...


class LiveOutput(Protocol):
    """Opens a `LiveCall` per LLM call, so that every call gets its own id and `index` from 0."""

    def open_call(self) -> LiveCall: ...

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
    """One LLM call as billed: the caller records every completion it is given.

    `price` is the price the provider was configured with for this model (a compatible server's
    model is priced by settings); without one the official table applies.
    """

    text: str
    parsed: BaseModel | None
    input_tokens: int
    output_tokens: int
    model: str
    provider: str
    latency_ms: float
    price: ModelPrice | None = None
    #: When the model asked for tools instead of answering: the calls (then `parsed` is None).
    tool_calls: tuple[ToolCallRequest, ...] = ()

    @property
    def cost_usd(self) -> Decimal:
        price = self.price or OFFICIAL.price_for(self.model)
        return price.cost(self.input_tokens, self.output_tokens)


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
        max_tokens: int,
        temperature: float = 0.2,
        on_delta: OnDelta | None = None,
        tools: Sequence[ToolSpec] = (),
    ) -> Completion:
        """One streamed call, never generating more than `max_tokens`.

        With a schema, `parsed` is a validated instance or `ProviderOutputInvalid` (carrying the
        completion and its real usage) is raised. `on_delta` receives the text as it is written.
        With `tools`, the model may answer with `tool_calls` instead (then `parsed` is None); a
        provider that cannot use tools has `supports_tools = False` and is never given any.
        """
        ...

    async def count_tokens(self, messages: list[Message], *, model: str, schema: type[BaseModel] | None = None) -> int:
        """Input tokens of a request: the provider's own count where it has one, else an estimate."""
        ...


@dataclass(frozen=True)
class CallLimits:
    """Timeouts of one streamed call: progress (no token for this long) and an overall ceiling."""

    stall_timeout_s: float = 60.0
    call_timeout_s: float = 900.0
    connect_timeout_s: float = 10.0

    def http_timeout(self) -> httpx2.Timeout:
        import httpx2

        # The SDK's own timeouts are a backstop a little beyond ours, which give the precise reason.
        return httpx2.Timeout(self.call_timeout_s + 5, connect=self.connect_timeout_s, read=self.stall_timeout_s + 5)


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
    openai_compatible: bool | None = None,
    structured_output: StructuredOutput = "json_schema",
    fit_strings_to_max_tokens: bool = False,
    prices: PriceTable = OFFICIAL,
    offline_latency_ms: int = 0,
    limits: CallLimits | None = None,
    http_client: httpx2.AsyncClient | None = None,
) -> LLMProvider:
    """Build one provider (once per worker process and agent role); `auto` is resolved here too.

    `openai_compatible` (default: whether `openai_base_url` is set) marks a server that is not
    OpenAI's own API: its models are priced by `prices.server_models`, and `structured_output` says
    whether it takes `json_schema`, `fit_strings_to_max_tokens` whether its schemas bound every string
    so that an answer fits `max_tokens` (structured.fit_strings_to_tokens). SDK modules are imported
    here, not at module import, so importing the agents stays cheap.
    """
    limits = limits or CallLimits()
    resolved = resolve_provider_name(name, anthropic_api_key=anthropic_api_key, openai_api_key=openai_api_key)
    if resolved == "anthropic":
        if not anthropic_api_key:
            raise ValueError("LLM provider anthropic needs ANTHROPIC_API_KEY")
        from shared.agents.anthropic_provider import AnthropicProvider

        return AnthropicProvider(
            api_key=anthropic_api_key, base_url=anthropic_base_url, limits=limits, prices=prices,
            http_client=http_client,
        )
    if resolved == "openai":
        if not openai_api_key and not openai_base_url:
            raise ValueError(
                "LLM provider openai needs OPENAI_API_KEY (or OPENAI_BASE_URL for a local server)"
            )
        from shared.agents.openai_provider import OpenAIProvider

        compatible = bool(openai_base_url) if openai_compatible is None else openai_compatible
        return OpenAIProvider(
            api_key=openai_api_key, base_url=openai_base_url, limits=limits, prices=prices,
            compatible=compatible, structured_output=structured_output if compatible else "json_schema",
            fit_strings_to_max_tokens=fit_strings_to_max_tokens and compatible, http_client=http_client,
        )
    from shared.agents.offline import OfflineProvider

    return OfflineProvider(latency_ms=offline_latency_ms)


def elapsed_ms(started: float) -> float:
    """Milliseconds since a `time.perf_counter()` reading."""
    return (time.perf_counter() - started) * 1000.0
