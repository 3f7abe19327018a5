"""Migrations and first-start bootstrap on brand-new databases."""

from __future__ import annotations

import asyncio
from pathlib import Path

import psycopg
import pytest

from shared.bootstrap import prepare_database
from shared.db.migrate import MigrationError, migrate, migrate_sync


async def test_concurrent_migrators_apply_each_migration_once(empty_database_url):
    results = await asyncio.gather(*(migrate(empty_database_url) for _ in range(4)))
    assert len([r for r in results if r]) == 1, "exactly one migrator applies the migrations"
    with psycopg.connect(empty_database_url) as conn:
        versions = [r[0] for r in conn.execute("SELECT version FROM schema_migrations ORDER BY version")]
    assert versions == sorted(set(versions)) and versions[0] == "0001_initial"


def test_a_migration_edited_after_it_was_applied_is_refused(empty_database_url, tmp_path: Path):
    (tmp_path / "0001_a.sql").write_text("CREATE TABLE a (id int);")
    assert migrate_sync(empty_database_url, tmp_path) == ["0001_a"]
    (tmp_path / "0001_a.sql").write_text("CREATE TABLE a (id bigint);")
    with pytest.raises(MigrationError, match="changed"):
        migrate_sync(empty_database_url, tmp_path)


async def test_hosts_starting_together_on_a_new_database_create_one_demo_login_and_all_start(empty_database_url):
    results = await asyncio.gather(*(prepare_database(empty_database_url) for _ in range(3)))
    created = [r for r in results if r is not None]
    assert len(created) == 1
    with psycopg.connect(empty_database_url) as conn:
        row = conn.execute("SELECT count(*) FROM users").fetchone()
    assert row is not None and row[0] == 1


async def test_first_start_creates_a_demo_login_once(empty_database_url):
    demo = await prepare_database(empty_database_url, demo_password="demo-password-1")
    assert demo is not None and demo.password == "demo-password-1"
    assert await prepare_database(empty_database_url) is None
