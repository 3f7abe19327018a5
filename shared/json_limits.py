"""Bounded JSON decoding for bytes from the network: nesting depth is capped.

`json.loads` recurses once per nesting level, so a body of 100 000 `[` raises `RecursionError`
(a 500 with a traceback, before this module); and a merely deep document (a few hundred levels,
under the interpreter's limit) would recurse again in validation and in every consumer. No API
body needs more than a few levels, so anything deeper than `MAX_JSON_DEPTH` is refused as
malformed input.
"""

from __future__ import annotations

import json
from typing import Any

__all__ = ["MAX_JSON_DEPTH", "JsonTooDeep", "loads_bounded"]

#: Deepest nesting of objects and arrays accepted (`{}` is depth 1, `{"a": []}` depth 2).
MAX_JSON_DEPTH = 32


class JsonTooDeep(ValueError):
    """The document nests objects/arrays deeper than allowed."""

    def __init__(self, max_depth: int) -> None:
        super().__init__(f"the JSON nests deeper than {max_depth} levels")
        self.max_depth = max_depth


def loads_bounded(data: bytes | str, *, max_depth: int = MAX_JSON_DEPTH) -> Any:
    """`json.loads`, raising `JsonTooDeep` for nesting over `max_depth` (json.JSONDecodeError and
    UnicodeDecodeError as usual for text that is not JSON)."""
    try:
        value = json.loads(data)
    except RecursionError:
        raise JsonTooDeep(max_depth) from None
    if _deeper_than(value, max_depth):
        raise JsonTooDeep(max_depth)
    return value


def _deeper_than(value: Any, max_depth: int) -> bool:
    """Iterative walk over containers (a recursive one would have the very problem it checks)."""
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        children = item.values() if isinstance(item, dict) else item if isinstance(item, list) else None
        if children is None:
            continue
        if depth > max_depth:
            return True
        stack.extend((child, depth + 1) for child in children if isinstance(child, dict | list))
    return False
