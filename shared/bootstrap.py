"""Prepare a database for a host: migrations, and a demo login on a brand-new database."""

from __future__ import annotations

import secrets
from dataclasses import dataclass

from shared.db.database import Database, make_pool
from shared.db.migrate import migrate
from shared.domain.errors import Conflict
from shared.domain.models import RegisterRequest
from shared.services.auth import AuthService

DEMO_EMAIL = "demo@ghostpirates.dev"


@dataclass(frozen=True)
class DemoLogin:
    email: str
    password: str


async def prepare_database(dsn: str, *, demo_password: str | None = None) -> DemoLogin | None:
    """Apply migrations; on a database without users, create a demo company and return its login."""
    await migrate(dsn)
    pool = make_pool(dsn, min_size=1, max_size=2, name="bootstrap")
    await pool.open(wait=True)
    try:
        auth = AuthService(Database(pool))
        if await auth.count_users():
            return None
        password = demo_password or secrets.token_urlsafe(12)
        try:
            await auth.register(
                RegisterRequest(company_name="Demo Company", email=DEMO_EMAIL, password=password, full_name="Demo User")
            )
        except Conflict:  # another host starting on the same database created it first
            return None
        return DemoLogin(DEMO_EMAIL, password)
    finally:
        await pool.close()
