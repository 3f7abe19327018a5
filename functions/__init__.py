"""Thin Azure Functions entry points; the application lives in `shared/`."""

from __future__ import annotations

from typing import Any


def blueprints() -> list[Any]:
    """Every blueprint of the app, in registration order.

    Settings are validated first, so a broken configuration (e.g. an unresolved Key Vault reference)
    stops the app at start-up with a message naming the setting, not at the first request.
    """
    from shared.config import get_settings

    get_settings()
    from functions import (
        activities,
        http_audit,
        http_auth,
        http_cors,
        http_dashboard,
        http_escalations,
        http_health,
        http_openapi,
        http_realtime,
        http_tasks,
        http_teams,
        http_tools,
        orchestrators,
        timers,
    )

    return [http_auth.bp, http_teams.bp, http_tasks.bp, http_escalations.bp, http_audit.bp, http_health.bp,
            http_openapi.bp, http_cors.bp, orchestrators.bp, activities.bp, http_dashboard.bp, http_realtime.bp,
            timers.bp, http_tools.bp]
