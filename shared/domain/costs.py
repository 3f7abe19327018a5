"""LLM prices in one place, and the cost of a call computed from them."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from decimal import ROUND_CEILING, ROUND_HALF_UP, Decimal

_MILLION = Decimal(1_000_000)


@dataclass(frozen=True)
class ModelPrice:
    input_per_million: Decimal
    output_per_million: Decimal


#: USD per million tokens. Unknown models fall back to the most expensive known price, so an
#: unpriced model can never run up a bill the budget does not see.
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

_FALLBACK = max(PRICES.values(), key=lambda p: p.input_per_million + p.output_per_million)


def price_for(model: str) -> ModelPrice:
    if model in PRICES:
        return PRICES[model]
    # Providers report dated snapshots ("claude-sonnet-4-5-20250929"): match the longest known prefix.
    matches = [name for name in PRICES if model.startswith(name)]
    return PRICES[max(matches, key=len)] if matches else _FALLBACK


def compute_cost(model: str, input_tokens: int, output_tokens: int) -> Decimal:
    """Cost in USD, rounded to 1e-8 (the precision of `cost_tracking.cost_usd`)."""
    if input_tokens < 0 or output_tokens < 0:
        raise ValueError("token counts cannot be negative")
    price = price_for(model)
    cost = (input_tokens * price.input_per_million + output_tokens * price.output_per_million) / _MILLION
    return cost.quantize(Decimal("0.00000001"), rounding=ROUND_HALF_UP)


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


def worst_case_cost(model: str, input_tokens: int, max_tokens: int) -> Decimal:
    """What a call can cost at most (`max_tokens` all spent), rounded up to 1e-8: its reservation."""
    if input_tokens < 0 or max_tokens < 0:
        raise ValueError("token counts cannot be negative")
    price = price_for(model)
    cost = (input_tokens * price.input_per_million + max_tokens * price.output_per_million) / _MILLION
    return cost.quantize(Decimal("0.00000001"), rounding=ROUND_CEILING)
