"""The service REST API (`/api/hubs/{hub}/...`) that `azure-messaging-webpubsubservice` calls.

Routes, methods and status codes follow ../../../shared/protocols/WEB_PUBSUB.md; every call needs
a valid `Authorization: Bearer` service token (HS256 with the AccessKey, `exp`, path part of `aud`).
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qs, unquote

import jwt

from devhost.pubsub.auth import TokenRejected, has_group_permission, verify_service_token
from devhost.pubsub.hub import Hub
from devhost.pubsub.odata import InvalidFilter, Predicate, compile_filter
from devhost.pubsub.payload import InvalidPayload, Payload
from devhost.pubsub.service import ServiceState

PERMISSIONS = ("sendToGroup", "joinLeaveGroup")


@dataclass(slots=True)
class Request:
    method: str
    params: dict[str, str]
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: bytes

    def arg(self, name: str) -> str | None:
        values = self.query.get(name)
        return values[0] if values else None


@dataclass(frozen=True, slots=True)
class Reply:
    status: int
    body: bytes = b""
    content_type: str = "application/json"


class HttpError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


Handler = Callable[[ServiceState, Hub, Request], Awaitable[Reply]]
ACCEPTED = Reply(202)
OK = Reply(200)
NO_CONTENT = Reply(204)
NOT_FOUND = Reply(404)


def _json(status: int, value: Any) -> Reply:
    return Reply(status, json.dumps(value).encode("utf-8"))


def _payload(request: Request) -> Payload:
    try:
        return Payload.from_rest(request.body, request.headers.get("content-type"))
    except InvalidPayload as exc:
        raise HttpError(400, str(exc)) from exc


def _selector(request: Request) -> Predicate | None:
    expression = request.arg("filter")
    if not expression:
        return None
    try:
        return compile_filter(expression)
    except InvalidFilter as exc:
        raise HttpError(400, f"invalid filter: {exc}") from exc


async def send_to_all(state: ServiceState, hub: Hub, request: Request) -> Reply:
    hub.send(hub.members(), _payload(request), excluded=request.query.get("excluded", ()),
             selector=_selector(request))
    return ACCEPTED


async def send_to_group(state: ServiceState, hub: Hub, request: Request) -> Reply:
    members = hub.groups.get(request.params["group"], ())
    hub.send(members, _payload(request), excluded=request.query.get("excluded", ()),
             selector=_selector(request))
    return ACCEPTED


async def send_to_user(state: ServiceState, hub: Hub, request: Request) -> Reply:
    hub.send(hub.members(user_id=request.params["user"]), _payload(request), selector=_selector(request))
    return ACCEPTED


async def send_to_connection(state: ServiceState, hub: Hub, request: Request) -> Reply:
    connection = hub.connections.get(request.params["connection"])
    payload = _payload(request)
    if connection is not None:
        hub.send((connection,), payload)
    return ACCEPTED


def _close_all(hub: Hub, request: Request, members: list[Any]) -> Reply:
    excluded = set(request.query.get("excluded", ()))
    reason = request.arg("reason") or "Closed by the service."
    for connection in members:
        if connection.connection_id not in excluded:
            hub.terminate(connection, reason)
    return NO_CONTENT


async def close_hub_connections(state: ServiceState, hub: Hub, request: Request) -> Reply:
    return _close_all(hub, request, hub.members())


async def close_group_connections(state: ServiceState, hub: Hub, request: Request) -> Reply:
    return _close_all(hub, request, hub.members(group=request.params["group"]))


async def close_user_connections(state: ServiceState, hub: Hub, request: Request) -> Reply:
    return _close_all(hub, request, hub.members(user_id=request.params["user"]))


async def close_connection(state: ServiceState, hub: Hub, request: Request) -> Reply:
    connection = hub.connections.get(request.params["connection"])
    if connection is not None:
        hub.terminate(connection, request.arg("reason") or "Closed by the service.")
    return NO_CONTENT


async def connection_exists(state: ServiceState, hub: Hub, request: Request) -> Reply:
    return OK if request.params["connection"] in hub.connections else NOT_FOUND


async def group_exists(state: ServiceState, hub: Hub, request: Request) -> Reply:
    return OK if hub.groups.get(request.params["group"]) else NOT_FOUND


async def user_exists(state: ServiceState, hub: Hub, request: Request) -> Reply:
    return OK if hub.users.get(request.params["user"]) else NOT_FOUND


async def list_group_connections(state: ServiceState, hub: Hub, request: Request) -> Reply:
    members = hub.members(group=request.params["group"])
    top = request.arg("top")
    if top is not None and top.isdigit():
        members = members[: int(top)]
    return _json(200, {"value": [{"connectionId": c.connection_id, "userId": c.user_id} for c in members]})


def _connection(hub: Hub, request: Request) -> Any:
    connection = hub.connections.get(request.params["connection"])
    if connection is None:
        raise HttpError(404, f"connection {request.params['connection']!r} does not exist")
    return connection


async def add_connection_to_group(state: ServiceState, hub: Hub, request: Request) -> Reply:
    hub.join(_connection(hub, request), request.params["group"])
    return OK


async def remove_connection_from_group(state: ServiceState, hub: Hub, request: Request) -> Reply:
    connection = hub.connections.get(request.params["connection"])
    if connection is not None:
        hub.leave(connection, request.params["group"])
    return NO_CONTENT


async def remove_connection_from_all_groups(state: ServiceState, hub: Hub, request: Request) -> Reply:
    connection = hub.connections.get(request.params["connection"])
    if connection is not None:
        hub.leave_all(connection)
    return NO_CONTENT


async def add_user_to_group(state: ServiceState, hub: Hub, request: Request) -> Reply:
    hub.add_user_to_group(request.params["user"], request.params["group"])
    return OK


async def remove_user_from_group(state: ServiceState, hub: Hub, request: Request) -> Reply:
    hub.remove_user_from_group(request.params["user"], request.params["group"])
    return NO_CONTENT


async def remove_user_from_all_groups(state: ServiceState, hub: Hub, request: Request) -> Reply:
    hub.remove_user_from_all_groups(request.params["user"])
    return NO_CONTENT


def _role(request: Request) -> str:
    permission = request.params["permission"]
    if permission not in PERMISSIONS:
        raise HttpError(400, f"unknown permission {permission!r}")
    target = request.arg("targetName")
    return f"webpubsub.{permission}" + (f".{target}" if target else "")


async def grant_permission(state: ServiceState, hub: Hub, request: Request) -> Reply:
    connection = _connection(hub, request)
    connection.roles = connection.roles | {_role(request)}
    return OK


async def revoke_permission(state: ServiceState, hub: Hub, request: Request) -> Reply:
    connection = hub.connections.get(request.params["connection"])
    if connection is not None:
        connection.roles = connection.roles - {_role(request)}
    return NO_CONTENT


async def check_permission(state: ServiceState, hub: Hub, request: Request) -> Reply:
    connection = _connection(hub, request)
    role = _role(request)
    target = request.arg("targetName")
    allowed = (
        has_group_permission(connection.roles, request.params["permission"], target)
        if target else role in connection.roles
    )
    return OK if allowed else NOT_FOUND


async def generate_token(state: ServiceState, hub: Hub, request: Request) -> Reply:
    """Mint a client token like the service does for Entra callers; `aud` is this server's URL."""
    minutes = request.arg("minutesToExpire") or "60"
    if not minutes.isdigit() or int(minutes) < 1:
        raise HttpError(400, "minutesToExpire must be a positive integer")
    now = datetime.now(UTC)
    host = request.headers.get("host", "localhost")
    claims: dict[str, Any] = {"aud": f"http://{host}/client/hubs/{hub.name}", "iat": now,
                              "exp": now + timedelta(minutes=int(minutes))}
    if request.arg("userId"):
        claims["sub"] = request.arg("userId")
    if request.query.get("role"):
        claims["role"] = request.query["role"]
    if request.query.get("group"):
        claims["webpubsub.group"] = request.query["group"]
    return _json(200, {"token": jwt.encode(claims, state.access_key.encode("utf-8"), algorithm="HS256")})


_ROUTES: list[tuple[str, tuple[str, ...], Handler]] = []


def _route(method: str, template: str, handler: Handler) -> None:
    _ROUTES.append((method, tuple(template.strip("/").split("/")), handler))


def _match(template: tuple[str, ...], segments: list[str]) -> dict[str, str] | None:
    """Match decoded path segments; `{name}` captures one segment (so `%2F` inside a name is safe)."""
    if len(template) != len(segments):
        return None
    params: dict[str, str] = {}
    for expected, actual in zip(template, segments, strict=True):
        if expected.startswith("{"):
            if not actual:
                return None
            params[expected[1:-1]] = actual
        elif expected != actual:
            return None
    return params


_route("POST", "/api/hubs/{hub}/:send", send_to_all)
_route("POST", "/api/hubs/{hub}/:closeConnections", close_hub_connections)
_route("POST", "/api/hubs/{hub}/:generateToken", generate_token)
_route("POST", "/api/hubs/{hub}/groups/{group}/:send", send_to_group)
_route("POST", "/api/hubs/{hub}/groups/{group}/:closeConnections", close_group_connections)
_route("HEAD", "/api/hubs/{hub}/groups/{group}", group_exists)
_route("GET", "/api/hubs/{hub}/groups/{group}/connections", list_group_connections)
_route("PUT", "/api/hubs/{hub}/groups/{group}/connections/{connection}", add_connection_to_group)
_route("DELETE", "/api/hubs/{hub}/groups/{group}/connections/{connection}", remove_connection_from_group)
_route("POST", "/api/hubs/{hub}/users/{user}/:send", send_to_user)
_route("POST", "/api/hubs/{hub}/users/{user}/:closeConnections", close_user_connections)
_route("HEAD", "/api/hubs/{hub}/users/{user}", user_exists)
_route("PUT", "/api/hubs/{hub}/users/{user}/groups/{group}", add_user_to_group)
_route("DELETE", "/api/hubs/{hub}/users/{user}/groups/{group}", remove_user_from_group)
_route("DELETE", "/api/hubs/{hub}/users/{user}/groups", remove_user_from_all_groups)
_route("POST", "/api/hubs/{hub}/connections/{connection}/:send", send_to_connection)
_route("HEAD", "/api/hubs/{hub}/connections/{connection}", connection_exists)
_route("DELETE", "/api/hubs/{hub}/connections/{connection}", close_connection)
_route("DELETE", "/api/hubs/{hub}/connections/{connection}/groups", remove_connection_from_all_groups)
_route("PUT", "/api/hubs/{hub}/permissions/{permission}/connections/{connection}", grant_permission)
_route("DELETE", "/api/hubs/{hub}/permissions/{permission}/connections/{connection}", revoke_permission)
_route("HEAD", "/api/hubs/{hub}/permissions/{permission}/connections/{connection}", check_permission)


def _error(status: int, message: str) -> Reply:
    return _json(status, {"code": str(status), "message": message})


async def handle_rest(
    state: ServiceState, method: str, raw_path: str, query_string: str, headers: dict[str, str], body: bytes
) -> Reply:
    """Authenticate, route and run one REST call; `raw_path` keeps %-escapes so `/` in names is safe."""
    path = unquote(raw_path)
    if path.rstrip("/") == "/api/health":
        return OK  # the service's unauthenticated health probe
    try:
        verify_service_token(headers.get("authorization"), state.access_key, path)
    except TokenRejected as exc:
        return _error(401, f"unauthorized: {exc}")
    segments = [unquote(segment) for segment in raw_path.strip("/").split("/")]
    path_matched = False
    for route_method, template, handler in _ROUTES:
        params = _match(template, segments)
        if params is None:
            continue
        path_matched = True
        if route_method != method:
            continue
        hub = state.hub(params["hub"])
        if hub is None:
            return _error(404, f"hub {params['hub']!r} is not served")
        request = Request(method, params, parse_qs(query_string), headers, body)
        try:
            return await handler(state, hub, request)
        except HttpError as exc:
            return _error(exc.status, str(exc))
    return _error(405 if path_matched else 404, f"no route for {method} {path}")
