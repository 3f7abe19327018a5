"""Access tokens: HS256 JWTs with a key id so signing keys can rotate without logging everyone out."""

from __future__ import annotations

import ipaddress
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from uuid import UUID

import jwt

from shared.domain.errors import Unauthorized
from shared.domain.models import Principal, UserPublic

ALGORITHM = "HS256"
ISSUER = "ghost-pirates"

KeySource = Callable[[], Awaitable[dict[str, str]]]


@dataclass(frozen=True)
class IssuedToken:
    token: str
    expires_at: datetime


class TokenService:
    """Signs with the active key; verifies with whichever known key the token's `kid` names.

    Keys come from `key_source` (settings, or Key Vault so a rotation applies without restart).
    """

    def __init__(self, key_source: KeySource, *, active_kid: str | None, ttl: timedelta) -> None:
        self._key_source = key_source
        self._active_kid = active_kid
        self._ttl = ttl

    @property
    def ttl(self) -> timedelta:
        return self._ttl

    async def issue(self, user: UserPublic, *, token_version: int = 1, auth_time: datetime | None = None,
                    now: datetime | None = None) -> IssuedToken:
        """A token for `user` under `token_version`; `auth_time` (when the password was typed, default
        now) is carried over by renewals so a session's age is known."""
        keys = await self._key_source()
        kid = self._active_kid if self._active_kid in keys else sorted(keys)[-1]
        issued = (now or datetime.now(UTC)).replace(microsecond=0)
        expires = issued + self._ttl
        claims = {
            "sub": str(user.id),
            "cid": str(user.company_id),
            "role": user.role,
            "iss": ISSUER,
            "iat": int(issued.timestamp()),
            "exp": int(expires.timestamp()),
            "tv": token_version,
            "auth_time": int((auth_time or issued).timestamp()),
        }
        token = jwt.encode(claims, keys[kid], algorithm=ALGORITHM, headers={"kid": kid})
        return IssuedToken(token, expires)

    async def verify(self, token: str) -> Principal:
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError as exc:
            raise Unauthorized("malformed token") from exc
        keys = await self._key_source()
        key = keys.get(str(header.get("kid")))
        if key is None:
            raise Unauthorized("token signed with an unknown key")
        try:
            claims = jwt.decode(
                token, key, algorithms=[ALGORITHM], issuer=ISSUER,
                options={"require": ["exp", "iat", "sub", "cid", "tv", "auth_time"]},
            )
            role = claims.get("role", "member")
            return Principal(user_id=UUID(claims["sub"]), company_id=UUID(claims["cid"]),
                             role=role if role in ("admin", "member") else "member",
                             token_version=int(claims["tv"]),
                             auth_time=datetime.fromtimestamp(int(claims["auth_time"]), UTC))
        except jwt.ExpiredSignatureError as exc:
            raise Unauthorized("token expired") from exc
        except (jwt.PyJWTError, ValueError, KeyError, TypeError, OverflowError) as exc:
            raise Unauthorized("invalid token") from exc


def bearer_token(authorization: str | None) -> str:
    if not authorization:
        raise Unauthorized("missing Authorization header")
    scheme, _, token = authorization.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthorized("Authorization must be 'Bearer <token>'")
    return token.strip()


# --- client addresses (rate-limit keys) -----------------------------------------------------------

#: The header the host sets to the TCP peer it accepted the connection from (devhost overwrites
#: whatever a client sent; the App Service front end sets it too). Read only when no proxy is trusted.
PEER_HEADER = "x-client-ip"
UNKNOWN_ADDRESS = "unknown"


def client_address(forwarded_for: str | None, peer: str | None, *, trusted_hops: int) -> str:
    """The address a rate limit keys on, never one the client can choose.

    `trusted_hops` proxies in front of the app each append the address they saw to
    `X-Forwarded-For`, so the entry `trusted_hops` from the right is the one the outermost trusted
    proxy appended; entries left of it are whatever the client sent. With 0 hops the socket peer
    the host reports is used. An IPv6 client is keyed by its /64 (one subscriber's allocation), so
    rotating addresses inside it does not buy new buckets.
    """
    if trusted_hops <= 0:
        return _normalise(peer)
    entries = [e.strip() for e in (forwarded_for or "").split(",") if e.strip()]
    if not entries:
        return UNKNOWN_ADDRESS
    # Fewer entries than hops: the request reached an inner proxy directly; its entry is the peer it saw.
    return _normalise(entries[max(0, len(entries) - trusted_hops)])


def _normalise(raw: str | None) -> str:
    """`1.2.3.4`, `1.2.3.4:5678`, `[2001:db8::1]:443`, `2001:db8::1` -> a canonical bucket key."""
    text = (raw or "").strip()
    if not text:
        return UNKNOWN_ADDRESS
    host = text
    if text.startswith("["):
        host = text[1:].partition("]")[0]
    elif text.count(":") == 1:  # IPv4 with a port (App Service appends one)
        host = text.partition(":")[0]
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return text[:64]  # a trusted proxy wrote something odd: key on it as given, bounded
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return str(address.ipv4_mapped)
        return str(ipaddress.IPv6Network((address, 64), strict=False))
    return str(address)
