"""Durable Functions backend on PostgreSQL for the local host (never deployed)."""

from __future__ import annotations

from .backend import DurableBackend
from .registry import ActivityFunction, DurableFunctions

__all__ = ["ActivityFunction", "DurableBackend", "DurableFunctions"]
