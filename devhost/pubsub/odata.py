"""The OData `filter` of the send APIs, compiled to a predicate over connections.

Covers what the service documents for filters: `userId`, `connectionId` and `groups`, the
operators `eq`, `ne`, `in` (`'g' in groups`, `userId in ('a', 'b')`), `and`, `or`, `not`, and
parentheses. Anything else is a 400, never silently ignored.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from devhost.pubsub.connection import Connection

Predicate = Callable[[Connection], bool]

_TOKEN = re.compile(r"\s*(?:(?P<string>'(?:[^']|'')*')|(?P<word>[A-Za-z_][A-Za-z0-9_]*)|(?P<symbol>[(),]))")


class InvalidFilter(ValueError):
    """The filter uses syntax or fields the service does not support."""


def _tokens(expression: str) -> list[tuple[str, str]]:
    tokens: list[tuple[str, str]] = []
    position = 0
    expression = expression.rstrip()
    while position < len(expression):
        match = _TOKEN.match(expression, position)
        if match is None or match.end() == position:
            raise InvalidFilter(f"unexpected text at {position}: {expression[position:position + 20]!r}")
        kind = match.lastgroup or ""
        value = match.group(kind)
        if kind == "string":
            value = value[1:-1].replace("''", "'")
        tokens.append((kind, value))
        position = match.end()
    return tokens


def _field(name: str) -> Callable[[Connection], str | None]:
    if name == "userId":
        return lambda connection: connection.user_id
    if name == "connectionId":
        return lambda connection: connection.connection_id
    raise InvalidFilter(f"unknown field {name!r}")


class _Parser:
    def __init__(self, tokens: list[tuple[str, str]]) -> None:
        self.tokens = tokens
        self.index = 0

    def peek(self) -> tuple[str, str] | None:
        return self.tokens[self.index] if self.index < len(self.tokens) else None

    def take(self) -> tuple[str, str]:
        token = self.peek()
        if token is None:
            raise InvalidFilter("unexpected end of filter")
        self.index += 1
        return token

    def expect(self, value: str) -> None:
        if self.take()[1] != value:
            raise InvalidFilter(f"expected {value!r}")

    def keyword(self, word: str) -> bool:
        token = self.peek()
        if token is not None and token[0] == "word" and token[1].lower() == word:
            self.index += 1
            return True
        return False

    def parse(self) -> Predicate:
        predicate = self.disjunction()
        if self.peek() is not None:
            raise InvalidFilter(f"unexpected {self.peek()!r}")
        return predicate

    def disjunction(self) -> Predicate:
        left = self.conjunction()
        while self.keyword("or"):
            right = self.conjunction()
            left = (lambda a, b: lambda c: a(c) or b(c))(left, right)
        return left

    def conjunction(self) -> Predicate:
        left = self.negation()
        while self.keyword("and"):
            right = self.negation()
            left = (lambda a, b: lambda c: a(c) and b(c))(left, right)
        return left

    def negation(self) -> Predicate:
        if self.keyword("not"):
            inner = self.negation()
            return lambda connection: not inner(connection)
        return self.primary()

    def string_list(self) -> frozenset[str]:
        self.expect("(")
        values: set[str] = set()
        while True:
            kind, value = self.take()
            if kind != "string":
                raise InvalidFilter("expected a string in the list")
            values.add(value)
            if self.take()[1] == ")":
                return frozenset(values)

    def primary(self) -> Predicate:
        kind, value = self.take()
        if value == "(":
            inner = self.disjunction()
            self.expect(")")
            return inner
        if kind == "string":
            if not self.keyword("in") or not self.keyword("groups"):
                raise InvalidFilter("a string literal must be followed by 'in groups'")
            return lambda connection: value in connection.groups
        if kind != "word":
            raise InvalidFilter(f"unexpected {value!r}")
        getter = _field(value)
        operator = self.take()[1].lower()
        if operator == "in":
            options = self.string_list()
            return lambda connection: getter(connection) in options
        if operator not in ("eq", "ne"):
            raise InvalidFilter(f"unsupported operator {operator!r}")
        literal_kind, literal = self.take()
        expected: str | None
        if literal_kind == "string":
            expected = literal
        elif literal_kind == "word" and literal == "null":
            expected = None
        else:
            raise InvalidFilter("expected a string or null literal")
        if operator == "eq":
            return lambda connection: getter(connection) == expected
        return lambda connection: getter(connection) != expected


def compile_filter(expression: str) -> Predicate:
    """Turn an OData filter into a predicate; raises InvalidFilter on anything unsupported."""
    return _Parser(_tokens(expression)).parse()
