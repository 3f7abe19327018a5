"""The client endpoint `/client/hubs/{hub}`: handshake, the JSON subprotocols and raw sockets.

Protocol facts (what the official clients send and expect) are in
../../../shared/protocols/WEB_PUBSUB.md; the reliable-session rules (sequenceId, sequenceAck,
`awps_connection_id` + `awps_reconnection_token`, close code 1008) follow Azure's reliable-client guide.
"""

from __future__ import annotations

import hmac
import json
import logging
import secrets
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any
from urllib.parse import parse_qs

from devhost.pubsub.auth import ClientClaims, TokenRejected, has_group_permission, verify_client_token
from devhost.pubsub.connection import PONG, SUBPROTOCOLS, Connection, Link, Protocol
from devhost.pubsub.hub import SESSION_GONE, Hub
from devhost.pubsub.payload import InvalidPayload, Payload
from devhost.pubsub.service import ServiceState
from devhost.pubsub.upstream import Caller, UpstreamFailed

logger = logging.getLogger("devhost.pubsub")

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]

# Close codes after which a reliable session is over; anything else (1005/1006 drops, 1011, 1012)
# keeps the session so the client can resume it.
FINAL_CLOSE_CODES = frozenset({1000, 1001})


def _first(query: dict[str, list[str]], name: str) -> str | None:
    values = query.get(name)
    return values[0] if values else None


def _ack(ack_id: int, error: tuple[str, str] | None = None) -> dict[str, Any]:
    if error is None:
        return {"type": "ack", "ackId": ack_id, "success": True}
    name, text = error
    return {"type": "ack", "ackId": ack_id, "success": False, "error": {"name": name, "message": text}}


def _connected_message(connection: Connection) -> dict[str, Any]:
    message: dict[str, Any] = {
        "type": "system", "event": "connected", "connectionId": connection.connection_id
    }
    if connection.user_id is not None:
        message["userId"] = connection.user_id
    if connection.reconnection_token is not None:
        message["reconnectionToken"] = connection.reconnection_token
    return message


async def _reject(scope: Scope, send: Send, status: int, reason: str) -> None:
    """Refuse the handshake with an HTTP status when the server supports it, else a plain 403."""
    if "websocket.http.response" in (scope.get("extensions") or {}):
        body = json.dumps({"code": status, "message": reason}).encode("utf-8")
        await send({"type": "websocket.http.response.start", "status": status,
                    "headers": [(b"content-type", b"application/json")]})
        await send({"type": "websocket.http.response.body", "body": body})
    else:
        await send({"type": "websocket.close", "code": 1008, "reason": reason[:120]})


async def serve_client(
    state: ServiceState, hub_name: str, scope: Scope, receive: Receive, send: Send
) -> None:
    """Run one client WebSocket from handshake to disconnect."""
    if (await receive())["type"] != "websocket.connect":
        return
    hub = state.hub(hub_name)
    if hub is None or state.closing:
        await _reject(scope, send, 404, f"hub {hub_name!r} is not served")
        return
    query = parse_qs(scope.get("query_string", b"").decode("latin-1"))
    offered = [str(name) for name in scope.get("subprotocols") or []]
    subprotocol = next((name for name in offered if name in SUBPROTOCOLS), None)

    resumed_id = _first(query, "awps_connection_id")
    if resumed_id is not None:
        await _resume(state, hub, resumed_id, _first(query, "awps_reconnection_token"), subprotocol,
                      receive, send)
        return
    try:
        claims = verify_client_token(_first(query, "access_token"), state.access_key, hub_name)
    except TokenRejected as exc:
        await _reject(scope, send, 401, str(exc))
        return
    connection_id = secrets.token_hex(12)
    groups = list(claims.groups)
    roles = claims.roles
    user_id = claims.user_id
    if state.upstream is not None:
        caller = Caller(hub.name, connection_id, user_id, subprotocol)
        try:
            decision = await state.upstream.connect(
                caller, claims=_claims_for_upstream(claims), query=query,
                headers=_headers_for_upstream(scope), subprotocols=offered,
            )
        except UpstreamFailed as exc:
            await _reject(scope, send, exc.status if exc.status in (401, 403) else 500, str(exc))
            return
        user_id = decision.user_id or user_id
        groups.extend(decision.groups)
        roles = roles | frozenset(decision.roles)
        if decision.subprotocol in offered and decision.subprotocol in SUBPROTOCOLS:
            subprotocol = decision.subprotocol
    protocol = SUBPROTOCOLS.get(subprotocol or "", Protocol.RAW)
    connection = Connection(
        connection_id, hub_name=hub.name, user_id=user_id, roles=roles, protocol=protocol,
        subprotocol=subprotocol,
        reconnection_token=secrets.token_urlsafe(24) if protocol is Protocol.RELIABLE else None,
    )
    await send({"type": "websocket.accept", "subprotocol": subprotocol})
    hub.add(connection, groups)
    link = connection.attach(send, state.background.spawn, greeting=_connected_message(connection))
    if state.upstream is not None:
        state.background.spawn(state.upstream.notify(state.caller(hub, connection), "connected", {}))
    await _run(state, hub, connection, link, receive)


async def _resume(
    state: ServiceState, hub: Hub, connection_id: str, token: str | None, subprotocol: str | None,
    receive: Receive, send: Send,
) -> None:
    """Reattach a dropped reliable session, or tell the client with 1008 that it is gone."""
    await send({"type": "websocket.accept", "subprotocol": subprotocol})
    connection = hub.connections.get(connection_id)
    if (
        connection is None
        or connection.protocol is not Protocol.RELIABLE
        or not hmac.compare_digest((connection.reconnection_token or "").encode(), (token or "").encode())
    ):
        await send({"type": "websocket.close", "code": SESSION_GONE, "reason": "The session is gone."})
        return
    link = connection.attach(send, state.background.spawn, greeting=_connected_message(connection))
    await _run(state, hub, connection, link, receive)


async def _run(state: ServiceState, hub: Hub, connection: Connection, link: Link, receive: Receive) -> None:
    code = 1006
    try:
        while True:
            message = await receive()
            if message["type"] == "websocket.disconnect":
                code = int(message.get("code") or 1005)
                break
            if message["type"] != "websocket.receive" or connection.link is not link:
                continue
            if connection.protocol is Protocol.RAW:
                await _raw_message(state, hub, connection, message)
            elif message.get("text") is not None:
                await _json_message(state, hub, connection, message["text"])
    finally:
        _socket_closed(state, hub, connection, link, code)


def _socket_closed(state: ServiceState, hub: Hub, connection: Connection, link: Link, code: int) -> None:
    link.usable = False
    if connection.closed or connection.link is not link:
        return  # ended by the service, or already resumed on a newer socket
    connection.detach()
    if connection.protocol is Protocol.RELIABLE and code not in FINAL_CLOSE_CODES and not state.closing:
        hub.expire_later(connection, lambda gone: hub.drop(gone, "The reconnect window expired."))
    else:
        hub.drop(connection, f"The client closed the connection with code {code}.")


async def _raw_message(state: ServiceState, hub: Hub, connection: Connection, message: Any) -> None:
    """A raw client's frame is a `message` user event for the upstream (dropped without one)."""
    if state.upstream is None:
        return
    data = message.get("text")
    payload = Payload("text", data) if data is not None else Payload("binary", message.get("bytes") or b"")
    try:
        reply = await state.upstream.user_event(state.caller(hub, connection), "message", payload)
    except UpstreamFailed as exc:
        logger.warning("upstream rejected a raw message from %s: %s", connection.connection_id, exc)
        return
    if reply is not None:
        hub.send((connection,), reply)


async def _json_message(state: ServiceState, hub: Hub, connection: Connection, text: str) -> None:
    spawn = state.background.spawn
    try:
        message = json.loads(text)
    except ValueError:
        logger.info("ignoring a frame that is not JSON from %s", connection.connection_id)
        return
    if not isinstance(message, dict):
        return
    kind = message.get("type")
    if kind == "sequenceAck":
        sequence_id = message.get("sequenceId")
        if isinstance(sequence_id, int):
            connection.acknowledge(sequence_id)
        return
    if kind == "ping":
        connection.send_control(PONG, spawn)
        return
    ack_id = message.get("ackId")
    if not isinstance(ack_id, int) or isinstance(ack_id, bool):
        ack_id = None
    if ack_id is not None and connection.seen_ack_id(ack_id):
        duplicate = ("Duplicate", f"Message with ack-id: {ack_id} has been processed")
        connection.send_control(_ack(ack_id, duplicate), spawn)
        return
    error: AckError
    if kind in ("joinGroup", "leaveGroup", "sendToGroup"):
        error = _group_request(hub, connection, kind, message)
    elif kind == "event":
        error = await _event(state, hub, connection, message)
    else:
        logger.info("ignoring message type %r from %s", kind, connection.connection_id)
        return
    if ack_id is not None:
        connection.send_control(_ack(ack_id, error), spawn)
        if error is None:
            connection.remember_ack_id(ack_id)


AckError = tuple[str, str] | None


def _group_request(hub: Hub, connection: Connection, kind: str, message: dict[str, Any]) -> AckError:
    group = message.get("group")
    if not isinstance(group, str) or not group:
        return ("InvalidRequest", "The group name is missing.")
    if kind == "sendToGroup":
        if not has_group_permission(connection.roles, "sendToGroup", group):
            return ("Forbidden", f"The connection has no permission to send to group '{group}'.")
        try:
            payload = Payload.from_client(message.get("dataType"), message.get("data"), group=group,
                                          sender=connection.user_id)
        except InvalidPayload as exc:
            return ("InvalidRequest", str(exc))
        excluded = (connection.connection_id,) if message.get("noEcho") is True else ()
        hub.send(hub.groups.get(group, ()), payload, excluded=excluded)
        return None
    if not has_group_permission(connection.roles, "joinLeaveGroup", group):
        return ("Forbidden", f"The connection has no permission to join or leave group '{group}'.")
    if kind == "joinGroup":
        hub.join(connection, group)
    else:
        hub.leave(connection, group)
    return None


async def _event(state: ServiceState, hub: Hub, connection: Connection, message: dict[str, Any]) -> AckError:
    """Forward a user event upstream; without an upstream the service accepts and drops it."""
    name = message.get("event")
    if not isinstance(name, str) or not name:
        return ("InvalidRequest", "The event name is missing.")
    try:
        payload = Payload.from_client(message.get("dataType"), message.get("data"))
    except InvalidPayload as exc:
        return ("InvalidRequest", str(exc))
    if state.upstream is None:
        return None
    try:
        reply = await state.upstream.user_event(state.caller(hub, connection), name, payload)
    except UpstreamFailed as exc:
        return ("InternalServerError", str(exc))
    if reply is not None:
        hub.send((connection,), reply)
    return None


def _claims_for_upstream(claims: ClientClaims) -> dict[str, list[str]]:
    result: dict[str, list[str]] = {"role": sorted(claims.roles), "webpubsub.group": list(claims.groups)}
    if claims.user_id is not None:
        result["sub"] = [claims.user_id]
    return result


def _headers_for_upstream(scope: Scope) -> dict[str, list[str]]:
    headers: dict[str, list[str]] = {}
    for name, value in scope.get("headers") or []:
        headers.setdefault(name.decode("latin-1"), []).append(value.decode("latin-1"))
    return headers
