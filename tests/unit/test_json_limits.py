"""Bodies from the network: nesting over MAX_JSON_DEPTH is refused, never a RecursionError."""

from __future__ import annotations

import json

import pytest

from shared.json_limits import MAX_JSON_DEPTH, JsonTooDeep, loads_bounded


def nested(levels: int) -> str:
    return "[" * levels + "]" * levels


def test_nesting_up_to_the_limit_decodes():
    assert loads_bounded(nested(MAX_JSON_DEPTH)) is not None
    assert loads_bounded('{"a": {"b": [1, {"c": 2}]}}') == {"a": {"b": [1, {"c": 2}]}}


@pytest.mark.parametrize("levels", [MAX_JSON_DEPTH + 1, 500, 200_000])
def test_deeper_nesting_is_refused_however_deep(levels):
    with pytest.raises(JsonTooDeep):
        loads_bounded(nested(levels))


def test_not_json_is_still_a_decode_error():
    with pytest.raises(json.JSONDecodeError):
        loads_bounded(b"{nope")
