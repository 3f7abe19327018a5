"""Verification of the two JWTs Azure Web PubSub accepts: service (REST) tokens and client access tokens.

Both are HS256 tokens signed with the UTF-8 bytes of the AccessKey. The service SDK puts the full
request URL in `aud`; the client token carries `http(s)://host/client/hubs/<hub>`. Only the path part
of `aud` is compared, so the emulator works behind any host name or port (protocols/WEB_PUBSUB.md).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote, urlsplit

import jwt

ROLE_CLAIM = "role"
GROUP_CLAIM = "webpubsub.group"


class TokenRejected(Exception):
    """The token is missing, badly signed, expired or meant for another path."""


@dataclass(frozen=True, slots=True)
class ClientClaims:
    """What a client access token grants a new connection."""

    user_id: str | None
    roles: frozenset[str]
    groups: tuple[str, ...]


def _as_strings(value: Any) -> tuple[str, ...]:
    """Claims may hold one string or a list of strings (PyJWT writes lists, other SDKs single values)."""
    if value is None:
        return ()
    if isinstance(value, str):
        return (value,)
    if isinstance(value, list):
        return tuple(str(item) for item in value)
    raise TokenRejected(f"claim has unexpected type {type(value).__name__}")


def _normalised_path(path: str) -> str:
    return unquote(path).rstrip("/").lower()


def _decode(token: str, key: str, expected_path: str) -> dict[str, Any]:
    try:
        claims: dict[str, Any] = jwt.decode(
            token,
            key.encode("utf-8"),
            algorithms=["HS256"],
            options={"verify_aud": False, "require": ["exp"]},
        )
    except jwt.PyJWTError as exc:
        raise TokenRejected(str(exc)) from exc
    audience = claims.get("aud")
    if not isinstance(audience, str):
        raise TokenRejected("aud claim missing")
    if _normalised_path(urlsplit(audience).path) != _normalised_path(expected_path):
        raise TokenRejected("aud does not match the requested path")
    return claims


def verify_service_token(authorization: str | None, key: str, request_path: str) -> None:
    """Check the `Authorization: Bearer` header of a REST call against the request path."""
    if not authorization or not authorization.lower().startswith("bearer "):
        raise TokenRejected("missing bearer token")
    _decode(authorization[7:].strip(), key, request_path)


def verify_client_token(token: str | None, key: str, hub: str) -> ClientClaims:
    """Check a client access token for `/client/hubs/<hub>` and return what it grants."""
    if not token:
        raise TokenRejected("missing access_token")
    claims = _decode(token, key, f"/client/hubs/{hub}")
    subject = claims.get("sub")
    return ClientClaims(
        user_id=str(subject) if subject not in (None, "") else None,
        roles=frozenset(_as_strings(claims.get(ROLE_CLAIM))),
        groups=_as_strings(claims.get(GROUP_CLAIM)),
    )


def has_group_permission(roles: frozenset[str], permission: str, group: str) -> bool:
    """A role without a suffix covers every group; `<permission>.<group>` covers one."""
    return f"webpubsub.{permission}" in roles or f"webpubsub.{permission}.{group}" in roles
