"""Companies and their users: accounts, and what sessions check a token against and revoke."""

from __future__ import annotations

from typing import Literal
from uuid import UUID

from pydantic import BaseModel

from shared.db import rows
from shared.db.database import Conn
from shared.domain.models import UserPublic

_COLUMNS = "id, company_id, email, full_name, role"


class UserWithHash(UserPublic):
    password_hash: str


#: insert_company -- a new company
INSERT_COMPANY = "INSERT INTO companies (id, name) VALUES (%(id)s, %(name)s)"
#: insert_user -- a new user of a company
INSERT_USER = f"""
INSERT INTO users (id, company_id, email, password_hash, full_name, role)
VALUES (%(id)s, %(company_id)s, %(email)s, %(hash)s, %(full_name)s, %(role)s)
RETURNING {_COLUMNS}
"""  # noqa: S608 - SQL built from this module's constants
#: user_by_email -- a user and their password hash, for login
BY_EMAIL = f"SELECT {_COLUMNS}, password_hash FROM users WHERE email = %(email)s"  # noqa: S608 - SQL built from this module's constants
#: touch_login -- remember the last login
TOUCH_LOGIN = "UPDATE users SET last_login_at = now() WHERE id = %(id)s"
#: get_user -- a user of a company
GET = f"SELECT {_COLUMNS} FROM users WHERE id = %(id)s AND company_id = %(company_id)s"  # noqa: S608 - SQL built from this module's constants
#: count_users -- how many users exist (the demo login is offered on an empty database)
COUNT = "SELECT count(*) FROM users"


async def insert_company(conn: Conn, company_id: UUID, name: str) -> None:
    await conn.execute(INSERT_COMPANY, {"id": company_id, "name": name})


async def insert_user(conn: Conn, *, user_id: UUID, company_id: UUID, email: str, password_hash: str,
                      full_name: str, role: str) -> UserPublic:
    user = await rows.one(conn, UserPublic, INSERT_USER, {
        "id": user_id, "company_id": company_id, "email": email, "hash": password_hash, "full_name": full_name,
        "role": role})
    assert user is not None
    return user


async def by_email(conn: Conn, email: str) -> UserWithHash | None:
    return await rows.one(conn, UserWithHash, BY_EMAIL, {"email": email})


async def touch_login(conn: Conn, user_id: UUID) -> None:
    await conn.execute(TOUCH_LOGIN, {"id": user_id})


async def get(conn: Conn, user_id: UUID, company_id: UUID) -> UserPublic | None:
    return await rows.one(conn, UserPublic, GET, {"id": user_id, "company_id": company_id})


async def count(conn: Conn) -> int:
    return int(await rows.value(conn, COUNT) or 0)


#: What an access token is checked against: the user exists, in this company, with this version.
SESSION_STATE = """
SELECT company_id, role, token_version FROM users WHERE id = %(id)s
"""

#: Log out everywhere: every token issued before is now of an older version.
REVOKE_TOKENS = """
UPDATE users SET token_version = token_version + 1
WHERE id = %(id)s AND company_id = %(company_id)s
RETURNING token_version
"""

PASSWORD_HASH = """
SELECT password_hash FROM users WHERE id = %(id)s AND company_id = %(company_id)s
"""

#: Guarded by the hash that was verified: a concurrent change makes this update nothing (409).
CHANGE_PASSWORD = """
UPDATE users SET password_hash = %(new_hash)s, token_version = token_version + 1, password_changed_at = now()
WHERE id = %(id)s AND company_id = %(company_id)s AND password_hash = %(old_hash)s
RETURNING token_version
"""


class SessionRow(BaseModel):
    company_id: UUID
    role: Literal["admin", "member"]
    token_version: int


async def session_state(conn: Conn, user_id: UUID) -> SessionRow | None:
    return await rows.one(conn, SessionRow, SESSION_STATE, {"id": user_id})


async def revoke_tokens(conn: Conn, user_id: UUID, company_id: UUID) -> int | None:
    """The new token version, or None when there is no such user."""
    version = await rows.value(conn, REVOKE_TOKENS, {"id": user_id, "company_id": company_id})
    return None if version is None else int(version)


async def password_hash(conn: Conn, user_id: UUID, company_id: UUID) -> str | None:
    found = await rows.value(conn, PASSWORD_HASH, {"id": user_id, "company_id": company_id})
    return None if found is None else str(found)


async def change_password(conn: Conn, user_id: UUID, company_id: UUID, *, old_hash: str, new_hash: str) -> int | None:
    """The new token version, or None when the password changed meanwhile (the guard)."""
    version = await rows.value(conn, CHANGE_PASSWORD, {"id": user_id, "company_id": company_id,
                                                         "old_hash": old_hash, "new_hash": new_hash})
    return None if version is None else int(version)
