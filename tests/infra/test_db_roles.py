"""shared/db/roles.sql on the real PostgreSQL: the app role can read and write, never change the schema.

Mirrors Azure: the migrator is a non-superuser admin with CREATEDB and CREATEROLE that owns the
database (as `gpadmin` does on a Flexible Server). Roles are cluster-wide, so every name here is
unique to the test and dropped at the end (parallel-safe under pytest-xdist)."""

from __future__ import annotations

import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import psycopg
import pytest
from psycopg import sql
from psycopg.conninfo import make_conninfo

from shared.db.database import Database, make_pool
from shared.db.migrate import migrate_sync
from shared.domain.models import RegisterRequest
from shared.services.auth import AuthService

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "scripts"))

import apply_db_roles  # noqa: E402

APP_PASSWORD = "app-role-test-password-0123456789"


@dataclass(frozen=True)
class Cluster:
    admin_url: str  # the non-superuser migrator, owner of the database
    app_url: str
    app_role: str
    superuser_url: str


@pytest.fixture
def cluster(pg_server_url: str) -> Iterator[Cluster]:
    suffix = uuid.uuid4().hex[:10]
    admin, app, dbname = f"gp_admin_{suffix}", f"gp_app_{suffix}", f"gp_roles_{suffix}"
    with psycopg.connect(pg_server_url, autocommit=True) as su:
        su.execute(sql.SQL("CREATE ROLE {} LOGIN CREATEDB CREATEROLE PASSWORD 'x'").format(sql.Identifier(admin)))
        su.execute(sql.SQL("CREATE DATABASE {} OWNER {}").format(sql.Identifier(dbname), sql.Identifier(admin)))
    try:
        admin_url = make_conninfo(pg_server_url, dbname=dbname, user=admin, password="x")
        app_url = make_conninfo(pg_server_url, dbname=dbname, user=app, password=APP_PASSWORD)
        yield Cluster(admin_url, app_url, app, pg_server_url)
    finally:
        with psycopg.connect(pg_server_url, autocommit=True) as su:
            su.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(dbname)))
            su.execute(sql.SQL("DROP ROLE IF EXISTS {}").format(sql.Identifier(app)))
            su.execute(sql.SQL("DROP ROLE IF EXISTS {}").format(sql.Identifier(admin)))


def _denied(conn: psycopg.Connection[object], statement: str) -> None:
    with pytest.raises(psycopg.errors.InsufficientPrivilege), conn.transaction():
        conn.execute(statement.encode())


def test_app_role_has_dml_rights_only_and_roles_sql_is_idempotent(cluster: Cluster) -> None:
    migrate_sync(cluster.admin_url)
    apply_db_roles.apply_roles(cluster.admin_url, cluster.app_role, APP_PASSWORD)
    apply_db_roles.apply_roles(cluster.admin_url, cluster.app_role, APP_PASSWORD)  # idempotent

    with psycopg.connect(cluster.admin_url) as admin:
        attrs = admin.execute(
            "SELECT rolsuper, rolcreatedb, rolcreaterole, rolreplication, rolbypassrls, rolcanlogin"
            " FROM pg_roles WHERE rolname = %s",
            (cluster.app_role,),
        ).fetchone()
        assert attrs == (False, False, False, False, False, True)
        owned = admin.execute(
            "SELECT count(*) FROM pg_class c JOIN pg_roles r ON r.oid = c.relowner WHERE r.rolname = %s",
            (cluster.app_role,),
        ).fetchone()
        assert owned == (0,)

    with psycopg.connect(cluster.app_url, autocommit=True) as app:
        assert app.execute("SELECT current_user").fetchone() == (cluster.app_role,)
        company, team = uuid.uuid4(), uuid.uuid4()
        app.execute("INSERT INTO companies (id, name) VALUES (%s, 'Roles Inc')", (company,))
        app.execute("INSERT INTO teams (id, company_id, name, goal) VALUES (%s, %s, 't', 'g')", (team, company))
        # team_events.id is an identity column: inserting uses its sequence.
        app.execute("INSERT INTO team_events (team_id, seq, type) VALUES (%s, 1, 'created')", (team,))
        app.execute("UPDATE teams SET status = 'active', version = version + 1 WHERE id = %s", (team,))
        assert app.execute("SELECT status FROM teams WHERE id = %s", (team,)).fetchone() == ("active",)
        # What the real-time publisher takes per team (shared/realtime/publisher.py).
        app.execute("SELECT pg_advisory_xact_lock(1, hashtext(%s::text))", (str(team),))
        assert app.execute("SELECT count(*) FROM schema_migrations").fetchone()[0] >= 1  # type: ignore[index]
        app.execute("DELETE FROM team_events WHERE team_id = %s", (team,))
        app.execute("DELETE FROM companies WHERE id = %s", (company,))

        _denied(app, "CREATE TABLE pirate_loot (id int)")
        _denied(app, "CREATE TEMP TABLE pirate_loot (id int)")
        _denied(app, "CREATE SCHEMA pirates")
        _denied(app, "DROP TABLE teams")
        _denied(app, "ALTER TABLE teams ADD COLUMN treasure text")
        _denied(app, "CREATE INDEX teams_name_idx ON teams (name)")
        _denied(app, "TRUNCATE audit_events")
        _denied(app, "INSERT INTO schema_migrations (version, checksum) VALUES ('9999', 'x')")
        _denied(app, "DELETE FROM schema_migrations")


def test_tables_added_by_a_later_migration_are_covered_without_reapplying(cluster: Cluster) -> None:
    migrate_sync(cluster.admin_url)
    apply_db_roles.apply_roles(cluster.admin_url, cluster.app_role, APP_PASSWORD)
    with psycopg.connect(cluster.admin_url) as admin:  # a later migration, run as the admin
        admin.execute("CREATE TABLE treasure_maps (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, x text)")

    with psycopg.connect(cluster.app_url, autocommit=True) as app:
        app.execute("INSERT INTO treasure_maps (x) VALUES ('X marks the spot')")
        assert app.execute("SELECT x FROM treasure_maps").fetchall() == [("X marks the spot",)]
        app.execute("DELETE FROM treasure_maps")
        _denied(app, "DROP TABLE treasure_maps")


async def test_the_app_registers_a_company_as_the_app_role(cluster: Cluster) -> None:
    migrate_sync(cluster.admin_url)
    apply_db_roles.apply_roles(cluster.admin_url, cluster.app_role, APP_PASSWORD)
    pool = make_pool(cluster.app_url, min_size=1, max_size=2, name="roles-test")
    await pool.open(wait=True)
    try:
        auth = AuthService(Database(pool))
        await auth.register(
            RegisterRequest(company_name="Roles Co", email="role@example.com", password="s3cret-pass", full_name="R")
        )
        assert await auth.count_users() == 1
    finally:
        await pool.close()


def test_reapplying_sets_a_rotated_password(cluster: Cluster) -> None:
    migrate_sync(cluster.admin_url)
    apply_db_roles.apply_roles(cluster.admin_url, cluster.app_role, APP_PASSWORD)
    rotated = APP_PASSWORD + "-rotated"
    apply_db_roles.apply_roles(cluster.admin_url, cluster.app_role, rotated)
    with psycopg.connect(cluster.superuser_url) as su:
        (stored,) = su.execute("SELECT rolpassword FROM pg_authid WHERE rolname = %s", (cluster.app_role,)).fetchone()  # type: ignore[misc]
    assert stored.startswith("SCRAM-SHA-256$")
    assert rotated not in stored


def test_roles_sql_refuses_a_superuser_or_a_bad_name(cluster: Cluster) -> None:
    migrate_sync(cluster.admin_url)
    with pytest.raises(ValueError):
        apply_db_roles.apply_roles(cluster.admin_url, 'x"; DROP TABLE teams; --', APP_PASSWORD)
    with pytest.raises(ValueError):
        apply_db_roles.apply_roles(cluster.admin_url, cluster.app_role, "short")
    with psycopg.connect(cluster.superuser_url, autocommit=True) as su:
        su.execute(sql.SQL("CREATE ROLE {} LOGIN BYPASSRLS").format(sql.Identifier(cluster.app_role)))
    with pytest.raises(psycopg.errors.RaiseException):
        apply_db_roles.apply_roles(cluster.admin_url, cluster.app_role, APP_PASSWORD)


def test_loader_cli_needs_its_secrets_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DATABASE_ADMIN_URL", raising=False)
    monkeypatch.delenv("POSTGRES_APP_PASSWORD", raising=False)
    assert apply_db_roles.main([]) == 2


def test_bicep_and_loader_agree_on_the_app_role_name() -> None:
    from .bicep_model import INFRA, parsed

    params = parsed(INFRA / "modules/postgres.bicep")["parameters"]
    assert params["appRoleName"]["default"] == apply_db_roles.DEFAULT_APP_ROLE == "ghost_pirates_app"
