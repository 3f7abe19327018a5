"""Opaque keyset cursors: `(created_at, id)` of the last row of a page, base64-encoded."""

from __future__ import annotations

import base64
import binascii
from datetime import datetime
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
