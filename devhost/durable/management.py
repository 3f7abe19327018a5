"""The Durable management HTTP API the real `DurableOrchestrationClient` calls (protocol §5).

The host mounts this Starlette app at `/runtime/webhooks/durabletask/`.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from .history import parse_timestamp
from .instances import Delivery, InstanceAdmin, InstanceExists
from .registry import DurableFunctions

CONTROL_OPERATIONS = ("terminate", "suspend", "resume")


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


def build_management_app(admin: Callable[[], InstanceAdmin], functions: DurableFunctions) -> Starlette:
    """Routes relative to the mount point; `admin` is resolved per request (after start())."""

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
    return Starlette(routes=routes)


def _delivery_response(delivery: Delivery) -> Response:
    codes = {Delivery.ACCEPTED: 202, Delivery.NOT_FOUND: 404, Delivery.GONE: 410}
    return Response(status_code=codes[delivery])


def _purge_response(deleted: int) -> Response:
    if deleted == 0:
        return Response(status_code=404)
    payload: dict[str, Any] = {"instancesDeleted": deleted}
    return JSONResponse(payload)
