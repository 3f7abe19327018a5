"""The Durable management HTTP API the real `DurableOrchestrationClient` calls (protocol §5).

The host mounts this Starlette app at `/runtime/webhooks/durabletask/`. Like the Functions host's
webhooks it needs the **system key** (`code=` query or `x-functions-key` header; the binding's
URLs carry it, so the real client keeps working), and it answers only loopback `Host`s and never
a request with an `Origin` (a browser: CSRF, DNS rebinding). The SDK builds its calls by appending
paths to `rpcBaseUrl`, so no query or header can be added there: the binding's `rpcBaseUrl` carries
the key as a path segment, `.../durabletask/key/<system key>/` (docs/security.md).
"""

from __future__ import annotations

import hmac
import ipaddress
import json
import secrets
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

from starlette.applications import Starlette
from starlette.datastructures import Headers
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from .history import parse_timestamp
from .instances import Delivery, InstanceAdmin, InstanceExists
from .registry import DurableFunctions

CONTROL_OPERATIONS = ("terminate", "suspend", "resume")
#: The path segment before the key in the binding's `rpcBaseUrl`.
KEY_SEGMENT = "key"
KEY_FILE = "durable.key"


def load_or_create_system_key(data_dir: Path) -> str:
    """The data dir's system key (created on first use, readable by its owner only)."""
    path = data_dir / KEY_FILE
    if path.exists():
        key = path.read_text().strip()
        if key:
            return key
    key = secrets.token_urlsafe(32)
    data_dir.mkdir(parents=True, exist_ok=True)
    path.write_text(key)
    path.chmod(0o600)
    return key


def _loopback_host(host: str | None) -> bool:
    """True for `localhost`, `127.x.x.x` and `[::1]`, with or without a port."""
    if not host:
        return False
    name = host.strip().lower()
    if name.startswith("["):
        name = name[1:].partition("]")[0]
    elif name.count(":") == 1:
        name = name.partition(":")[0]
    if name == "localhost":
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


class SystemKeyGuard:
    """ASGI middleware in front of the management routes: the checks of the module docstring.

    A key in the path is taken off before routing, so the routes are the same for both forms; the
    key a request proved is kept in `scope["state"]["system_key"]` for the URLs it answers with.
    """

    def __init__(self, app: ASGIApp, system_key: str) -> None:
        self.app = app
        self.system_key = system_key

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        if "origin" in headers:
            await _refuse(scope, receive, send, 403, "cross-origin requests are refused")
            return
        if not _loopback_host(headers.get("host")):
            await _refuse(scope, receive, send, 403, "only loopback hosts are served")
            return
        offered: str | None = None
        prefix = f"/{KEY_SEGMENT}/"
        # ASGI mounts keep the full path and name the mount point in root_path.
        path, root = scope["path"], scope.get("root_path", "")
        route_path = path[len(root):] if root and path.startswith(root) else path
        if route_path.startswith(prefix):
            offered = route_path[len(prefix):].partition("/")[0]
            # The key becomes part of the mount point: the routes see the same paths either way.
            scope = {**scope, "root_path": scope.get("root_path", "") + prefix + offered}
        if offered is None:
            offered = headers.get("x-functions-key")
        if offered is None:
            query = dict(parse_qsl(scope.get("query_string", b"").decode("latin-1")))
            offered = query.get("code")
        if offered is None or not hmac.compare_digest(offered.encode(), self.system_key.encode()):
            await _refuse(scope, receive, send, 401, "the system key is missing or wrong")
            return
        scope = {**scope, "state": {**scope.get("state", {}), "system_key": self.system_key}}
        await self.app(scope, receive, send)


async def _refuse(scope: Scope, receive: Receive, send: Send, status: int, detail: str) -> None:
    title = {401: "Unauthorized", 403: "Forbidden"}[status]
    body = {"type": "about:blank", "title": title, "status": status, "detail": detail}
    response = Response(json.dumps(body), status_code=status, media_type="application/problem+json")
    await response(scope, receive, send)


def _flag(request: Request, name: str, default: bool = False) -> bool:
    value = request.query_params.get(name)
    return default if value is None else value.lower() == "true"


def _time(request: Request, name: str) -> datetime | None:
    value = request.query_params.get(name)
    return parse_timestamp(value) if value else None


def _statuses(request: Request) -> list[str] | None:
    value = request.query_params.get("runtimeStatus")
    return [s.strip() for s in value.split(",") if s.strip()] if value else None


def _instance_urls(request: Request, instance_id: str) -> dict[str, str]:
    base = str(request.url).split("?")[0]
    base = base[: base.index("/orchestrators/") + 1] if "/orchestrators/" in base else base
    instance = f"{base}instances/{instance_id}"
    query = "taskHub=ghostpirates&connection=Storage"
    key = request.scope.get("state", {}).get("system_key")
    if key and f"/{KEY_SEGMENT}/" not in base:
        query += f"&code={key}"
    return {
        "id": instance_id,
        "statusQueryGetUri": f"{instance}?{query}",
        "sendEventPostUri": f"{instance}/raiseEvent/{{eventName}}?{query}",
        "terminatePostUri": f"{instance}/terminate?reason={{text}}&{query}",
        "purgeHistoryDeleteUri": f"{instance}?{query}",
        "suspendPostUri": f"{instance}/suspend?reason={{text}}&{query}",
        "resumePostUri": f"{instance}/resume?reason={{text}}&{query}",
    }


class BadBody(ValueError):
    """A request body that is not JSON (the client always sends JSON text)."""


def _body_text(raw: bytes) -> str | None:
    """The posted JSON text as-is, or None; anything else would poison the instance's replays."""
    try:
        text = raw.decode("utf-8").strip()
        if text:
            json.loads(text)
    except ValueError as exc:  # UnicodeDecodeError and JSONDecodeError both are
        raise BadBody(f"The request body is not valid JSON: {exc}") from exc
    return text or None


def _bad_request(message: str) -> Response:
    return JSONResponse({"Message": message, "ExceptionMessage": message}, status_code=400)


def build_management_app(admin: Callable[[], InstanceAdmin], functions: DurableFunctions, *,
                         system_key: str) -> ASGIApp:
    """Routes relative to the mount point, behind the system key; `admin` is resolved per request."""

    async def start_new(request: Request) -> Response:
        name = request.path_params["name"]
        if name not in functions.orchestrators:
            message = f"The function '{name}' doesn't exist, is disabled, or is not an orchestrator function."
            return _bad_request(message)
        try:
            raw_input = _body_text(await request.body())
        except BadBody as exc:
            return _bad_request(str(exc))
        try:
            instance_id = await admin().start(
                name, request.path_params.get("instance_id"), raw_input,
                request.query_params.get("version") or "",
            )
        except InstanceExists as exc:
            message = f"An orchestration instance with the ID '{exc.args[0]}' is already running."
            return JSONResponse({"Message": message, "ExceptionMessage": message}, status_code=409)
        urls = _instance_urls(request, instance_id)
        return JSONResponse(urls, status_code=202, headers={"Location": urls["statusQueryGetUri"]})

    async def get_status(request: Request) -> Response:
        found = await admin().status(
            request.path_params["instance_id"],
            show_history=_flag(request, "showHistory"),
            show_history_output=_flag(request, "showHistoryOutput"),
            show_input=_flag(request, "showInput", default=True),
        )
        if found is None:
            return Response(status_code=404)
        running = found["runtimeStatus"] in ("Pending", "Running", "Suspended")
        return JSONResponse(found, status_code=202 if running else 200)

    async def list_statuses(request: Request) -> Response:
        found = await admin().query(
            statuses=_statuses(request),
            created_from=_time(request, "createdTimeFrom"),
            created_to=_time(request, "createdTimeTo"),
            prefix=request.query_params.get("instanceIdPrefix"),
            show_input=_flag(request, "showInput", default=True),
            top=int(request.query_params.get("top", "1000")),
        )
        return JSONResponse(found)

    async def raise_event(request: Request) -> Response:
        try:
            body = _body_text(await request.body())
        except BadBody as exc:
            return _bad_request(str(exc))
        delivery = await admin().raise_event(
            request.path_params["instance_id"], request.path_params["event_name"], body
        )
        return _delivery_response(delivery)

    async def control(request: Request) -> Response:
        operation = request.path_params["operation"]
        if operation not in CONTROL_OPERATIONS:
            return JSONResponse({"Message": f"'{operation}' is not supported by devhost"}, status_code=501)
        delivery = await admin().control(
            request.path_params["instance_id"], operation, request.query_params.get("reason", "")
        )
        return _delivery_response(delivery)

    async def purge(request: Request) -> Response:
        deleted = await admin().purge([request.path_params["instance_id"]])
        return _purge_response(deleted)

    async def purge_by(request: Request) -> Response:
        created_from = _time(request, "createdTimeFrom")
        if created_from is None:
            return JSONResponse({"Message": "createdTimeFrom is required"}, status_code=400)
        deleted = await admin().purge_by(
            created_from=created_from, created_to=_time(request, "createdTimeTo"),
            statuses=_statuses(request),
        )
        return _purge_response(deleted)

    routes = [
        Route("/orchestrators/{name}", start_new, methods=["POST"]),
        Route("/orchestrators/{name}/{instance_id}", start_new, methods=["POST"]),
        Route("/instances/", list_statuses, methods=["GET"]),
        Route("/instances", list_statuses, methods=["GET"]),
        Route("/instances/", purge_by, methods=["DELETE"]),
        Route("/instances", purge_by, methods=["DELETE"]),
        Route("/instances/{instance_id}", get_status, methods=["GET"]),
        Route("/instances/{instance_id}", purge, methods=["DELETE"]),
        Route("/instances/{instance_id}/raiseEvent/{event_name}", raise_event, methods=["POST"]),
        Route("/instances/{instance_id}/{operation}", control, methods=["POST"]),
    ]
    return SystemKeyGuard(Starlette(routes=routes), system_key)


def _delivery_response(delivery: Delivery) -> Response:
    codes = {Delivery.ACCEPTED: 202, Delivery.NOT_FOUND: 404, Delivery.GONE: 410}
    return Response(status_code=codes[delivery])


def _purge_response(deleted: int) -> Response:
    if deleted == 0:
        return Response(status_code=404)
    payload: dict[str, Any] = {"instancesDeleted": deleted}
    return JSONResponse(payload)
