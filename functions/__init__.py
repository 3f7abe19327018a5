"""Thin Azure Functions entry points; the application lives in `shared/`."""

from __future__ import annotations

from typing import Any


def blueprints() -> list[Any]:
    """Every blueprint of the app, in registration order."""
    return []
