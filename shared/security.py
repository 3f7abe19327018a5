"""Access tokens: HS256 JWTs with a key id so signing keys can rotate without logging everyone out."""

from __future__ import annotations

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

    async def issue(self, user: UserPublic, *, now: datetime | None = None) -> IssuedToken:
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
                token, key, algorithms=[ALGORITHM], issuer=ISSUER, options={"require": ["exp", "sub", "cid"]}
            )
            role = claims.get("role", "member")
            return Principal(user_id=UUID(claims["sub"]), company_id=UUID(claims["cid"]),
                             role=role if role in ("admin", "member") else "member")
        except jwt.ExpiredSignatureError as exc:
            raise Unauthorized("token expired") from exc
        except (jwt.PyJWTError, ValueError, KeyError) as exc:
            raise Unauthorized("invalid token") from exc


def bearer_token(authorization: str | None) -> str:
    if not authorization:
        raise Unauthorized("missing Authorization header")
    scheme, _, token = authorization.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthorized("Authorization must be 'Bearer <token>'")
    return token.strip()
