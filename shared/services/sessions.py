"""Sessions: access tokens tied to their user row, so that deleting the user, "log out everywhere"
and a password change end every token issued before.

A token is accepted when its signature and expiry hold (`TokenService`) **and** its user still
exists in the token's company with the token's `token_version`. Reads trust a short per-process
cache of that row (`AUTH_CACHE_SECONDS`); writes always read it, so a revoked or deleted user can
never change anything, and reaches other instances' reads within the cache time.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Literal
from uuid import UUID

from shared.db import journal
from shared.db.database import Database, Tx
from shared.db.repositories import users
from shared.domain.errors import Unauthorized
from shared.domain.models import Principal, UserPublic
from shared.security import IssuedToken, TokenService

__all__ = ["SessionService", "SessionState"]

#: Most users a process remembers (oldest dropped first); a few hundred bytes each.
CACHE_MAX_USERS = 20_000


@dataclass(frozen=True)
class SessionState:
    """What a token is checked against."""

    company_id: UUID
    role: Literal["admin", "member"]
    token_version: int


class SessionService:
    def __init__(self, db: Database, tokens: TokenService, *, cache_seconds: float, max_session: timedelta,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.db = db
        self.tokens = tokens
        self.cache_seconds = cache_seconds
        self.max_session = max_session
        self._clock = clock
        self._cache: dict[UUID, tuple[float, SessionState | None]] = {}

    async def issue(self, user: UserPublic, *, auth_time: datetime | None = None) -> IssuedToken:
        """A token for `user` (just logged in, registered, or renewing) under its current version."""
        state = await self._state(user.id, fresh=True)
        if state is None or state.company_id != user.company_id:
            raise Unauthorized("the account no longer exists")
        return await self.tokens.issue(user, token_version=state.token_version, auth_time=auth_time)

    async def authenticate(self, token: str, *, fresh: bool) -> Principal:
        """The caller of a request; `fresh` (writes) reads the user row instead of the cache."""
        claimed = await self.tokens.verify(token)
        state = await self._state(claimed.user_id, fresh=fresh)
        if state is None or state.company_id != claimed.company_id:
            raise Unauthorized("the account no longer exists")
        if state.token_version != claimed.token_version:
            raise Unauthorized("the token was revoked; log in again")
        # The row, not the token, says what the user may do now.
        return claimed.model_copy(update={"role": state.role})

    async def renew(self, principal: Principal, user: UserPublic) -> IssuedToken:
        """A fresh token for the same session, unless the session is older than the maximum."""
        started = principal.auth_time or datetime.now(UTC)
        if datetime.now(UTC) - started >= self.max_session:
            raise Unauthorized("the session is too old to renew; log in again")
        return await self.issue(user, auth_time=started)

    async def revoke_all(self, principal: Principal) -> int:
        """Log out everywhere: bump the token version (one statement, with its audit row)."""
        async def work(tx: Tx) -> int:
            version = await users.revoke_tokens(tx.conn, principal.user_id, principal.company_id)
            if version is None:
                raise Unauthorized("the account no longer exists")
            await journal.audit(tx, company_id=principal.company_id, actor=principal.actor,
                                event_type="user.sessions_revoked", payload={"token_version": version})
            return version

        version = await self.db.atomic(work)
        self.forget(principal.user_id)
        return version

    def forget(self, user_id: UUID) -> None:
        """Drop the cached row (after this process changed it)."""
        self._cache.pop(user_id, None)

    async def _state(self, user_id: UUID, *, fresh: bool) -> SessionState | None:
        now = self._clock()
        cached = self._cache.get(user_id)
        if not fresh and cached is not None and cached[0] > now:
            return cached[1]
        async with self.db.connection() as conn:
            row = await users.session_state(conn, user_id)
        state = None if row is None else SessionState(company_id=row.company_id, role=row.role,
                                                       token_version=row.token_version)
        if self.cache_seconds > 0:
            self._cache.pop(user_id, None)  # re-insert at the end: the dict's order is its age
            self._cache[user_id] = (now + self.cache_seconds, state)
            while len(self._cache) > CACHE_MAX_USERS:
                del self._cache[next(iter(self._cache))]
        return state
