"""ASP.NET Core route templates, as the Functions host matches HTTP triggers.

Supports literal segments, `{name}`, optional `{name?}`, defaults `{name=value}`, constraints
`{id:guid}` / `{n:int:min(1)}` / `{s:regex(^a+$)}`, complex segments (`{a}.{b}`) and catch-alls
`{*path}` / `{**path}`. Literals match case-insensitively; a trailing slash is ignored. When several
templates match, the most specific wins (literal > constrained > plain > catch-all, per segment),
as ASP.NET route precedence does.
"""

from __future__ import annotations

import math
import re
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Generic, TypeVar

__all__ = ["Match", "RouteTemplate", "RouteTemplateError", "Router"]

T = TypeVar("T")
Validator = Callable[[str], bool]

_INT32 = (-(2**31), 2**31 - 1)
_INT64 = (-(2**63), 2**63 - 1)
_GUID_FORMS = re.compile(
    r"^(?:[0-9a-f]{32}|[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"
    r"|\{[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\}"
    r"|\([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\))$",
    re.IGNORECASE,
)
_PARAM = re.compile(r"\{([^{}]*(?:\([^)]*\))?[^{}]*)\}")
_CONSTRAINT = re.compile(r"([A-Za-z]+)(?:\((.*)\))?$", re.DOTALL)


class RouteTemplateError(ValueError):
    """A route template the Functions host would reject at startup."""


def _integer(bounds: tuple[int, int]) -> Validator:
    def check(value: str) -> bool:
        try:
            number = int(value)
        except ValueError:
            return False
        return bounds[0] <= number <= bounds[1] and value.strip() == value

    return check


def _floating(value: str) -> bool:
    try:
        return math.isfinite(float(value))
    except ValueError:
        return False


def _datetime(value: str) -> bool:
    try:
        datetime.fromisoformat(value)
    except ValueError:
        return False
    return True


def _guid(value: str) -> bool:
    if _GUID_FORMS.match(value) is None:
        return False
    uuid.UUID(value.strip("{}()"))
    return True


def _numbers(args: str, count: int, name: str) -> list[int]:
    parts = [part.strip() for part in args.split(",")] if args else []
    if len(parts) != count:
        raise RouteTemplateError(f"constraint {name!r} takes {count} argument(s)")
    try:
        return [int(part) for part in parts]
    except ValueError as exc:
        raise RouteTemplateError(f"constraint {name!r} needs integer arguments") from exc


def _constraint(spec: str) -> Validator:
    """Build the validator of one inline constraint (`int`, `min(1)`, `regex(...)`, ...)."""
    found = _CONSTRAINT.match(spec)
    if found is None:
        raise RouteTemplateError(f"unknown route constraint {spec!r}")
    name, args = found.group(1).lower(), found.group(2)
    simple: dict[str, Validator] = {
        "int": _integer(_INT32),
        "long": _integer(_INT64),
        "bool": lambda v: v.lower() in ("true", "false"),
        "guid": _guid,
        "alpha": lambda v: v.isascii() and v.isalpha(),
        "decimal": _floating,
        "double": _floating,
        "float": _floating,
        "datetime": _datetime,
        "required": lambda v: v != "",
    }
    if name in simple and args is None:
        return simple[name]
    if name == "regex" and args is not None:
        pattern = re.compile(args, re.IGNORECASE)
        return lambda v: pattern.search(v) is not None
    if name in ("minlength", "maxlength", "min", "max") and args is not None:
        (limit,) = _numbers(args, 1, name)
        if name == "minlength":
            return lambda v: len(v) >= limit
        if name == "maxlength":
            return lambda v: len(v) <= limit
        below, above = (limit, _INT64[1]) if name == "min" else (_INT64[0], limit)
        return _integer((below, above))
    if name == "length" and args is not None:
        bounds = _numbers(args, 2 if "," in args else 1, name)
        low, high = (bounds[0], bounds[0]) if len(bounds) == 1 else (bounds[0], bounds[1])
        return lambda v: low <= len(v) <= high
    if name == "range" and args is not None:
        low, high = _numbers(args, 2, name)
        return _integer((low, high))
    raise RouteTemplateError(f"unknown route constraint {spec!r}")


@dataclass(frozen=True)
class _Parameter:
    name: str
    optional: bool
    catch_all: bool
    default: str | None
    validators: tuple[Validator, ...]


def _split_outside_parens(text: str, separator: str) -> list[str]:
    """Split on `separator` where it is not inside a constraint argument like `regex(a:b)`."""
    parts, depth, start = [], 0, 0
    for index, char in enumerate(text):
        depth += {"(": 1, ")": -1}.get(char, 0)
        if char == separator and depth == 0:
            parts.append(text[start:index])
            start = index + 1
    parts.append(text[start:])
    return parts


def _parameter(body: str) -> _Parameter:
    """Parse `*name:c1:c2(arg)=default` or `name:c?` (the text between braces)."""
    catch_all = body.startswith("*")
    text = body.lstrip("*")
    optional = text.endswith("?")
    text = text.removesuffix("?")
    default: str | None = None
    with_default = _split_outside_parens(text, "=")
    if len(with_default) > 1:
        text, default = with_default[0], "=".join(with_default[1:])
    name, *constraints = _split_outside_parens(text, ":")
    if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name) or (optional and default is not None):
        raise RouteTemplateError(f"invalid route parameter {{{body}}}")
    return _Parameter(name, optional, catch_all, default, tuple(_constraint(c) for c in constraints))


@dataclass(frozen=True)
class RouteTemplate:
    """One compiled route template: a regex over the path after the route prefix."""

    template: str
    pattern: re.Pattern[str]
    parameters: tuple[_Parameter, ...]
    precedence: tuple[int, ...]

    @classmethod
    def parse(cls, template: str) -> RouteTemplate:
        """Compile `template` (no leading slash, no route prefix), or raise RouteTemplateError."""
        segments = [s for s in template.strip("/").split("/")] if template.strip("/") else []
        regex_parts: list[str] = []
        parameters: list[_Parameter] = []
        precedence: list[int] = []
        for position, segment in enumerate(segments):
            pieces = _PARAM.split(segment)
            literal_only = len(pieces) == 1
            if "{" in "".join(pieces[::2]) or "}" in "".join(pieces[::2]):
                raise RouteTemplateError(f"unbalanced braces in route {template!r}")
            if literal_only:
                regex_parts.append("/" + re.escape(segment))
                precedence.append(1)
                continue
            seg_regex = ""
            seg_params: list[_Parameter] = []
            for index, piece in enumerate(pieces):
                if index % 2 == 0:
                    seg_regex += re.escape(piece)
                    continue
                param = _parameter(piece)
                if param.catch_all and position != len(segments) - 1:
                    raise RouteTemplateError(f"a catch-all must be the last segment of {template!r}")
                seg_params.append(param)
                seg_regex += "(.*)" if param.catch_all else "([^/]+?)" if len(pieces) > 3 else "([^/]+)"
            alone = len(pieces) == 3 and pieces[0] == "" and pieces[2] == ""
            param = seg_params[0]
            if alone and (param.optional or param.default is not None or param.catch_all):
                regex_parts.append(f"(?:/{seg_regex})?")
            else:
                regex_parts.append("/" + seg_regex)
            parameters.extend(seg_params)
            if not alone:
                precedence.append(2)
            elif param.catch_all:
                precedence.append(5)
            else:
                precedence.append(3 if param.validators else 4)
        names = [p.name.lower() for p in parameters]
        if len(set(names)) != len(names):
            raise RouteTemplateError(f"duplicate route parameter in {template!r}")
        pattern = re.compile("^" + "".join(regex_parts) + "/?$", re.IGNORECASE | re.DOTALL)
        return cls(template, pattern, tuple(parameters), tuple(precedence))

    def match(self, path: str) -> dict[str, str] | None:
        """Route values for `path` (starting with '/'), or None when it does not match."""
        found = self.pattern.match(path)
        if found is None:
            return None
        values: dict[str, str] = {}
        for param, raw in zip(self.parameters, found.groups(), strict=True):
            value = raw if raw else param.default
            if value is None or value == "":
                if param.optional or param.catch_all:
                    continue
                return None
            if param.validators and not all(check(value) for check in param.validators):
                return None
            values[param.name] = value
        return values


@dataclass(frozen=True)
class Match(Generic[T]):
    """The outcome of routing: the target and its route values, or the methods the path allows."""

    target: T | None
    route_params: dict[str, str]
    allowed: tuple[str, ...] = ()


@dataclass(frozen=True)
class _Entry(Generic[T]):
    template: RouteTemplate
    methods: frozenset[str] | None
    target: T
    order: int


class Router(Generic[T]):
    """Finds the function for (method, path); tells 404 (no template) from 405 (wrong method).

    Templates whose first segment is a literal are bucketed by it, so a lookup tries only the
    few templates that can match, then the ones starting with a parameter (which rank lower).
    """

    def __init__(self) -> None:
        self._entries: list[_Entry[T]] = []
        self._by_first: dict[str, list[_Entry[T]]] = {}
        self._open: list[_Entry[T]] = []

    def add(self, template: str, methods: Sequence[str] | None, target: T) -> None:
        """Register `target` for `template`; `methods` None means every method."""
        allowed = frozenset(m.upper() for m in methods) if methods else None
        self._entries.append(_Entry(RouteTemplate.parse(template), allowed, target, len(self._entries)))
        ranked = sorted(self._entries, key=lambda e: (e.template.precedence, e.order))
        self._by_first = {}
        self._open = []
        for entry in ranked:
            first = entry.template.template.strip("/").split("/", 1)[0]
            if entry.template.precedence[:1] == (1,):
                self._by_first.setdefault(first.lower(), []).append(entry)
            else:
                self._open.append(entry)

    def match(self, method: str, path: str) -> Match[T]:
        """Route `path` (relative to the route prefix, starting with '/') for `method`."""
        first = path[1:].split("/", 1)[0].lower()
        allowed: set[str] = set()
        for candidates in (self._by_first.get(first, ()), self._open):
            for entry in candidates:
                values = entry.template.match(path)
                if values is None:
                    continue
                if entry.methods is None or method in entry.methods:
                    return Match(entry.target, values)
                allowed.update(entry.methods)
        return Match(None, {}, tuple(sorted(allowed)))
