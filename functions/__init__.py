"""Thin Azure Functions entry points; the application lives in `shared/`."""

from __future__ import annotations

from typing import Any


def blueprints() -> list[Any]:
    """Every blueprint of the app, in registration order."""
    from functions import (
        activities,
        http_audit,
        http_auth,
        http_escalations,
        http_health,
        http_openapi,
        http_tasks,
        http_teams,
        orchestrators,
    )

    return [http_auth.bp, http_teams.bp, http_tasks.bp, http_escalations.bp, http_audit.bp, http_health.bp,
            http_openapi.bp, orchestrators.bp, activities.bp]
