"""Opaque keyset cursors: `(created_at, id)` of the last row of a page, base64-encoded."""

from __future__ import annotations

import base64
import binascii
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Generic, Protocol, TypeVar
from uuid import UUID

from shared.domain.errors import DomainError


class BadCursor(DomainError):
    status = 400
    title = "Bad Request"


def encode_cursor(created_at: datetime, row_id: UUID) -> str:
    raw = f"{created_at.isoformat()}|{row_id}".encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[datetime, UUID]:
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        created, _, row_id = base64.urlsafe_b64decode(padded.encode()).decode().partition("|")
        return datetime.fromisoformat(created), UUID(row_id)
    except (ValueError, binascii.Error, UnicodeDecodeError) as exc:
        raise BadCursor("invalid cursor") from exc


class Keyed(Protocol):
    @property
    def created_at(self) -> datetime: ...

    @property
    def id(self) -> UUID: ...


T = TypeVar("T", bound=Keyed)


@dataclass(frozen=True)
class Page(Generic[T]):
    items: list[T]
    next_cursor: str | None


def after_cursor(cursor: str, params: dict[str, Any], alias: str = "") -> str:
    """The WHERE condition for rows after `cursor` in `(created_at, id) DESC` order; binds its params."""
    created_at, last_id = decode_cursor(cursor)
    params.update(c_at=created_at, c_id=last_id)
    prefix = f"{alias}." if alias else ""
    return f"({prefix}created_at, {prefix}id) < (%(c_at)s, %(c_id)s)"


def to_page(rows: Sequence[T], limit: int) -> Page[T]:
    """Rows fetched with `LIMIT limit + 1`: the extra row only says that a next page exists."""
    items = list(rows[:limit])
    if len(rows) <= limit or not items:
        return Page(items, None)
    last = items[-1]
    return Page(items, encode_cursor(last.created_at, last.id))
