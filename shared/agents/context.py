"""The context budget of one call: long texts in a prompt are cut, visibly, until the prompt fits.

A prompt carries texts of unbounded length (dependencies' outputs, earlier steps, the output under
review, every task's output for the summary). When the rendered request is over the call's token
budget, the longest texts are cut first ("water-filling": every text keeps at least as much as any
longer one) and each cut ends with `cut_marker(...)`, so the model sees that something is missing; the
cuts are returned to the caller, who stores them with the result (a checkpoint's `state`).

Tokens are counted by the provider (`LLMProvider.count_tokens`: Anthropic's API; an estimate where
there is none). An estimate, which overcounts, is tried first: a prompt it says fits is not counted
again, so most calls pay no extra round trip.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from pydantic import BaseModel

from shared.agents.llm import LLMProvider, Message
from shared.agents.structured import estimate_prompt_tokens

#: Input tokens a call may use unless the settings say otherwise (LLM_CONTEXT_BUDGET_TOKENS).
DEFAULT_CONTEXT_TOKENS = 30_000
#: Attempts to shrink the texts after the first measured cut (each re-counts the prompt).
_SHRINK_ROUNDS = 4


def cut_marker(cut_chars: int, total_chars: int) -> str:
    return f" …[cut to fit the context budget: {cut_chars} of {total_chars} characters not shown]"


@dataclass(frozen=True)
class ContextText:
    """One cuttable text of a prompt: `source` says where it comes from (e.g. "dependency: Survey")."""

    source: str
    text: str


@dataclass(frozen=True)
class ContextCut:
    source: str
    kept_chars: int
    cut_chars: int

    def as_dict(self) -> dict[str, object]:
        return {"source": self.source, "kept_chars": self.kept_chars, "cut_chars": self.cut_chars}


def water_fill(lengths: Sequence[int], limit: int) -> list[int]:
    """How many characters each text keeps so that they total at most `limit`, cutting the longest first."""
    if sum(lengths) <= limit:
        return list(lengths)
    if limit <= 0:
        return [0] * len(lengths)
    # The level L such that sum(min(length, L)) == limit; texts shorter than L stay whole.
    remaining, level = limit, 0
    ordered = sorted(lengths)
    for index, length in enumerate(ordered):
        share = remaining // (len(ordered) - index)
        if length <= share:
            remaining -= length
            continue
        level = share
        break
    return [min(length, level) for length in lengths]


def apply_cuts(texts: Sequence[ContextText], kept: Sequence[int]) -> tuple[list[str], list[ContextCut]]:
    shown: list[str] = []
    cuts: list[ContextCut] = []
    for item, keep in zip(texts, kept, strict=True):
        total = len(item.text)
        if keep >= total:
            shown.append(item.text)
            continue
        shown.append(item.text[:keep] + cut_marker(total - keep, total))
        cuts.append(ContextCut(item.source, keep, total - keep))
    return shown, cuts


async def fit_context(
    provider: LLMProvider,
    *,
    texts: Sequence[ContextText],
    render: Callable[[list[str]], list[Message]],
    budget_tokens: int,
    model: str,
    schema: type[BaseModel] | None,
) -> tuple[list[Message], list[ContextCut]]:
    """The messages `render(shown_texts)` builds, with the texts cut until the request fits the budget.

    When even the prompt without any of the texts is over the budget, every text is cut to nothing
    (each still marked) and the call goes ahead: the provider will say whether it fits its window.
    """
    full = [t.text for t in texts]
    messages = render(full)
    if not texts or estimate_prompt_tokens(messages, schema) <= budget_tokens:
        return messages, []
    tokens = await provider.count_tokens(messages, model=model, schema=schema)
    if tokens <= budget_tokens:
        return messages, []
    lengths = [len(t) for t in full]
    empty, _ = apply_cuts(texts, [0] * len(texts))
    base = await provider.count_tokens(render(empty), model=model, schema=schema)
    available = budget_tokens - base
    if available <= 0:
        shown, cuts = apply_cuts(texts, [0] * len(texts))
        return render(shown), cuts
    chars_per_token = max(1.0, sum(lengths) / max(1, tokens - base))
    limit = math.floor(available * chars_per_token * 0.95)
    shown, cuts = apply_cuts(texts, water_fill(lengths, limit))
    messages = render(shown)
    for _ in range(_SHRINK_ROUNDS):
        tokens = await provider.count_tokens(messages, model=model, schema=schema)
        if tokens <= budget_tokens:
            break
        limit = math.floor(limit * budget_tokens / tokens * 0.9)
        shown, cuts = apply_cuts(texts, water_fill(lengths, limit))
        messages = render(shown)
    return messages, cuts
