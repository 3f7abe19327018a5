"""Accounts: register a company with its admin, log in, look a user up. Passwords: argon2id."""

from __future__ import annotations

import asyncio
from uuid import UUID

import psycopg
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from shared.db import journal
from shared.db.database import Database, Tx
from shared.db.repositories import users
from shared.domain.errors import Conflict, Forbidden, Invalid, Unauthorized
from shared.domain.ids import uuid7
from shared.domain.models import Actor, Principal, RegisterRequest, UserPublic

# OWASP's argon2id baseline (19 MiB, 2 passes): memory-hard, ~20 ms here, hashed off the event loop.
_hasher = PasswordHasher(time_cost=2, memory_cost=19 * 1024, parallelism=1)
# Verified when the email is unknown, so both failure paths cost the same.
_DUMMY_HASH = _hasher.hash("ghost-pirates-timing-equaliser")


class InvalidCredentials(Unauthorized):
    title = "Invalid credentials"


async def hash_password(password: str) -> str:
    return await asyncio.to_thread(_hasher.hash, password)


async def _verify(password_hash: str, password: str) -> bool:
    def check() -> bool:
        try:
            return _hasher.verify(password_hash, password)
        except (VerificationError, InvalidHashError):
            return False

    return await asyncio.to_thread(check)


class AuthService:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def register(self, request: RegisterRequest) -> UserPublic:
        """A new company with the caller as its admin."""
        password_hash = await hash_password(request.password)
        company_id, user_id = uuid7(), uuid7()
        email = request.email.lower()

        async def work(tx: Tx) -> UserPublic:
            await users.insert_company(tx.conn, company_id, request.company_name)
            user = await users.insert_user(tx.conn, user_id=user_id, company_id=company_id, email=email,
                                           password_hash=password_hash, full_name=request.full_name, role="admin")
            await journal.audit(tx, company_id=company_id, actor=Actor(type="user", id=str(user_id)),
                                event_type="company.registered", payload={"email": email})
            return user

        try:
            return await self.db.atomic(work)
        except psycopg.errors.UniqueViolation as exc:
            raise Conflict("an account with this email already exists") from exc

    async def login(self, email: str, password: str) -> UserPublic:
        """Same error, same cost, for an unknown email and a wrong password."""
        async with self.db.connection() as conn:
            found = await users.by_email(conn, email.strip().lower())
        if found is None:
            await _verify(_DUMMY_HASH, password)
            raise InvalidCredentials("email or password is wrong")
        if not await _verify(found.password_hash, password):
            raise InvalidCredentials("email or password is wrong")
        user = UserPublic.model_validate(found.model_dump(exclude={"password_hash"}))

        async def work(tx: Tx) -> None:
            await users.touch_login(tx.conn, user.id)
            await journal.audit(tx, company_id=user.company_id, actor=Actor(type="user", id=str(user.id)),
                                event_type="user.login", payload={})

        await self.db.atomic(work)
        return user

    async def get_user(self, user_id: UUID, company_id: UUID) -> UserPublic:
        async with self.db.connection() as conn:
            user = await users.get(conn, user_id, company_id)
        if user is None:
            raise Unauthorized("the account no longer exists")
        return user

    async def change_password(self, principal: Principal, current: str, new: str) -> int:
        """Replace the caller's password (the current one proves it is them); every token issued
        before is revoked. Returns the new token version."""
        async with self.db.connection() as conn:
            old_hash = await users.password_hash(conn, principal.user_id, principal.company_id)
        if old_hash is None:
            raise Unauthorized("the account no longer exists")
        if not await _verify(old_hash, current):
            raise Forbidden("the current password is wrong")
        if await _verify(old_hash, new):
            raise Invalid("the new password must differ from the current one",
                          errors=[{"loc": ["new_password"], "msg": "is the current password"}])
        new_hash = await hash_password(new)

        async def work(tx: Tx) -> int:
            version = await users.change_password(tx.conn, principal.user_id, principal.company_id,
                                                  old_hash=old_hash, new_hash=new_hash)
            if version is None:
                raise Conflict("the password was changed meanwhile; try again")
            await journal.audit(tx, company_id=principal.company_id, actor=principal.actor,
                                event_type="user.password_changed", payload={})
            return version

        return await self.db.atomic(work)

    async def count_users(self) -> int:
        async with self.db.connection() as conn:
            return await users.count(conn)
