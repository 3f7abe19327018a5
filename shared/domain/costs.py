"""LLM prices in one place, and the cost of a call computed from them.

Two kinds of price: the official Anthropic and OpenAI models (`PRICES`, matched by name or by a dated
snapshot's prefix), and models served by an OpenAI-compatible server, whose price is whatever the
settings say (`LLM_PRICE_INPUT_PER_MTOK` / `LLM_PRICE_OUTPUT_PER_MTOK`, default 0). A `PriceTable`
holds both; `compute_cost` with no table uses the official prices alone.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from decimal import ROUND_CEILING, ROUND_HALF_UP, Decimal

_MILLION = Decimal(1_000_000)
_CENT_MILLIONTH = Decimal("0.00000001")  #: the precision of `cost_tracking.cost_usd`


@dataclass(frozen=True)
class ModelPrice:
    input_per_million: Decimal
    output_per_million: Decimal

    def cost(self, input_tokens: int, output_tokens: int) -> Decimal:
        """Cost in USD, rounded to 1e-8."""
        if input_tokens < 0 or output_tokens < 0:
            raise ValueError("token counts cannot be negative")
        raw = (input_tokens * self.input_per_million + output_tokens * self.output_per_million) / _MILLION
        return raw.quantize(_CENT_MILLIONTH, rounding=ROUND_HALF_UP)


#: USD per million tokens of the official APIs. An unknown model on those APIs is refused at start
#: (`PriceTable.require_known`); the fallback below only guards a price lookup that slipped past it.
PRICES: dict[str, ModelPrice] = {
    "claude-opus-4-5": ModelPrice(Decimal("5.00"), Decimal("25.00")),
    "claude-sonnet-4-5": ModelPrice(Decimal("3.00"), Decimal("15.00")),
    "claude-haiku-4-5": ModelPrice(Decimal("1.00"), Decimal("5.00")),
    "gpt-4.1": ModelPrice(Decimal("2.00"), Decimal("8.00")),
    "gpt-4.1-mini": ModelPrice(Decimal("0.40"), Decimal("1.60")),
    "gpt-4o": ModelPrice(Decimal("2.50"), Decimal("10.00")),
    "gpt-4o-mini": ModelPrice(Decimal("0.15"), Decimal("0.60")),
    # The offline provider is priced like a small model so budgets and charts behave realistically.
    "offline-manager": ModelPrice(Decimal("3.00"), Decimal("15.00")),
    "offline-worker": ModelPrice(Decimal("1.00"), Decimal("5.00")),
}

FREE = ModelPrice(Decimal(0), Decimal(0))
_FALLBACK = max(PRICES.values(), key=lambda p: p.input_per_million + p.output_per_million)


def official_price(model: str) -> ModelPrice | None:
    """The official price of `model`, matching a dated snapshot by the longest known prefix."""
    if model in PRICES:
        return PRICES[model]
    # Providers report dated snapshots ("claude-sonnet-4-5-20250929"): match the longest known prefix.
    matches = [name for name in PRICES if model.startswith(name)]
    return PRICES[max(matches, key=len)] if matches else None


class UnknownModel(ValueError):
    """A model on an official API that has no price: refused at start, with the known names."""

    def __init__(self, model: str) -> None:
        known = ", ".join(sorted(name for name in PRICES if not name.startswith("offline-")))
        super().__init__(f"unknown model {model!r}: no price is known for it; known models: {known}")
        self.model = model


@dataclass(frozen=True)
class PriceTable:
    """Official prices plus the models of OpenAI-compatible servers, priced by settings.

    `server_models` maps a model name, as the app requests it from a compatible server, to its price.
    Those names win over the official table: a local server may serve a model named `gpt-4o` for free.
    """

    server_models: Mapping[str, ModelPrice] = field(default_factory=dict)

    def price_for(self, model: str) -> ModelPrice:
        """The price of one model; an unknown one costs the most expensive known price (never free)."""
        if model in self.server_models:
            return self.server_models[model]
        return official_price(model) or _FALLBACK

    def cost(self, model: str, input_tokens: int, output_tokens: int) -> Decimal:
        """Cost in USD of one call, rounded to 1e-8 (the precision of `cost_tracking.cost_usd`)."""
        return self.price_for(model).cost(input_tokens, output_tokens)

    def worst_case_cost(self, model: str, *, input_tokens: int, max_tokens: int) -> Decimal:
        """Upper bound of a call's cost before it is made (its input plus `max_tokens` of output), rounded
        up to 1e-8: what the budget reserves for it."""
        if input_tokens < 0 or max_tokens < 0:
            raise ValueError("token counts cannot be negative")
        price = self.price_for(model)
        raw = (input_tokens * price.input_per_million + max_tokens * price.output_per_million) / _MILLION
        return raw.quantize(_CENT_MILLIONTH, rounding=ROUND_CEILING)

    @staticmethod
    def require_known(model: str) -> ModelPrice:
        """The official price of a model on Anthropic's or OpenAI's own API; UnknownModel if none."""
        price = official_price(model)
        if price is None:
            raise UnknownModel(model)
        return price

    def with_server_models(self, models: Mapping[str, ModelPrice]) -> PriceTable:
        return PriceTable({**self.server_models, **models})


OFFICIAL = PriceTable()


def price_for(model: str) -> ModelPrice:
    """The official price of `model` (see `PriceTable.price_for` for server-priced models)."""
    return OFFICIAL.price_for(model)


def compute_cost(model: str, input_tokens: int, output_tokens: int, *, prices: PriceTable = OFFICIAL) -> Decimal:
    """Cost in USD, rounded to 1e-8 (the precision of `cost_tracking.cost_usd`)."""
    return prices.cost(model, input_tokens, output_tokens)


#: Tokens a provider may add around the messages: the chat template's role markers and, with tool use,
#: Anthropic's tool-use system prompt (a few hundred tokens).
INPUT_OVERHEAD_TOKENS = 1024
PER_MESSAGE_OVERHEAD_TOKENS = 16


def input_token_bound(texts: Iterable[str], *, messages: int) -> int:
    """An upper bound of a call's input tokens, without a tokenizer.

    Byte-level BPE and byte-fallback SentencePiece tokenizers (every provider we use) never make more
    tokens than the text has UTF-8 bytes, so bytes plus the template overheads bound the count. It
    over-reserves (English runs ~4 bytes a token); the reservation is released when the call settles.
    """
    return sum(len(text.encode("utf-8")) for text in texts) + messages * PER_MESSAGE_OVERHEAD_TOKENS \
        + INPUT_OVERHEAD_TOKENS


def worst_case_cost(model: str, input_tokens: int, max_tokens: int, *, prices: PriceTable = OFFICIAL) -> Decimal:
    """What a call can cost at most (`max_tokens` all spent), rounded up to 1e-8: its reservation."""
    return prices.worst_case_cost(model, input_tokens=input_tokens, max_tokens=max_tokens)
