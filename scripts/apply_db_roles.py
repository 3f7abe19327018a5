"""Apply shared/db/roles.sql: the least-privilege role the app connects as.

Run by scripts/deploy.sh (step 3) right after the migrations, as the server admin:

    DATABASE_ADMIN_URL=postgresql://gpadmin:...@host:5432/ghost_pirates?sslmode=require \
    POSTGRES_APP_PASSWORD=... python scripts/apply_db_roles.py [--role ghost_pirates_app]

Secrets come only from the environment (never argv). The password is turned into a SCRAM-SHA-256
verifier on this side (libpq's PQencryptPasswordConn), so the clear text never reaches the server
or its statement log. The whole file runs in one transaction and is idempotent.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
from pathlib import Path

import psycopg
from psycopg import sql

ROLES_SQL = Path(__file__).resolve().parents[1] / "shared" / "db" / "roles.sql"
DEFAULT_APP_ROLE = "ghost_pirates_app"
_ROLE_NAME = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")


def render(conn: psycopg.Connection[object], role: str, password: str) -> sql.Composed:
    """roles.sql with its placeholders filled for this connection's database."""
    if not _ROLE_NAME.match(role):
        raise ValueError(f"invalid role name {role!r}: lowercase letters, digits and _ only")
    if len(password) < 16:
        raise ValueError("the app role password must be at least 16 characters")
    verifier = conn.pgconn.encrypt_password(password.encode(), role.encode(), b"scram-sha-256").decode()
    return sql.SQL(ROLES_SQL.read_text(encoding="utf-8")).format(
        app_role=sql.Identifier(role),
        app_role_name=sql.Literal(role),
        password=sql.Literal(verifier),
        database=sql.Identifier(conn.info.dbname),
    )


def apply_roles(admin_dsn: str, role: str, password: str) -> None:
    """Create or update `role` with DML-only rights on the app tables of the DSN's database."""
    with psycopg.connect(admin_dsn) as conn:  # one transaction, committed on exit
        conn.execute(render(conn, role, password))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--role", default=DEFAULT_APP_ROLE, help=f"app role name (default {DEFAULT_APP_ROLE})")
    args = parser.parse_args(argv)
    admin_dsn = os.environ.get("DATABASE_ADMIN_URL", "")
    password = os.environ.get("POSTGRES_APP_PASSWORD", "")
    if not admin_dsn or not password:
        print("apply_db_roles: set DATABASE_ADMIN_URL and POSTGRES_APP_PASSWORD", file=sys.stderr)
        return 2
    apply_roles(admin_dsn, args.role, password)
    print(f"apply_db_roles: role {args.role} has DML rights only")
    return 0


if __name__ == "__main__":
    sys.exit(main())
