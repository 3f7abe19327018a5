"""CORS preflight for browser clients on other origins (allowed origins come from a setting).

In Azure the platform's CORS settings can answer preflights too; this keeps devhost and any host
without them correct, and both read the same `CORS_ALLOWED_ORIGINS`.
"""

from __future__ import annotations

import azure.durable_functions as df
import azure.functions as func

from functions.http_common import SECURITY_HEADERS, cors_headers
from shared.runtime import get_context

bp = df.Blueprint()

ALLOWED_METHODS = "GET, POST, OPTIONS"
ALLOWED_HEADERS = "Authorization, Content-Type, X-Request-Id"


@bp.function_name("cors_preflight")
@bp.route(route="api/{*path}", methods=["OPTIONS"])
async def cors_preflight(req: func.HttpRequest) -> func.HttpResponse:
    headers = cors_headers(await get_context(), req.headers.get("origin"))
    if not headers:
        return func.HttpResponse(status_code=204, headers=SECURITY_HEADERS)
    headers |= {"Access-Control-Allow-Methods": ALLOWED_METHODS, "Access-Control-Allow-Headers": ALLOWED_HEADERS,
                "Access-Control-Max-Age": "600"}
    return func.HttpResponse(status_code=204, headers={**SECURITY_HEADERS, **headers})
