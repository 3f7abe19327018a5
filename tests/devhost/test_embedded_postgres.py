"""The embedded PostgreSQL starts in <data-dir>/pg, is reused while running, and keeps its data."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from devhost.postgres import EmbeddedPostgres, EmbeddedPostgresError

pytestmark = pytest.mark.slow  # starts and stops PostgreSQL server processes


@pytest.fixture
def data_dir(tmp_path: Path) -> Iterator[Path]:
    path = tmp_path / "pg"
    yield path
    if (path / "postmaster.pid").exists():  # a failed assertion left it running
        EmbeddedPostgres(path, started_here=True).stop()


def _start(path: Path) -> tuple[EmbeddedPostgres, str]:
    server = EmbeddedPostgres(path)
    try:
        return server, server.start()
    except (EmbeddedPostgresError, OSError) as exc:
        pytest.skip(f"the embedded PostgreSQL binaries cannot run here: {exc}")


def test_start_reuse_restart_keeps_data_and_port(data_dir: Path) -> None:
    first, dsn = _start(data_dir)
    assert first.started_here
    assert dsn.startswith("postgresql://postgres@127.0.0.1:") and dsn.endswith("/ghost_pirates")
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("CREATE TABLE kept (value text)")
        conn.execute("INSERT INTO kept VALUES ('still here')")

    second, second_dsn = _start(data_dir)
    assert (second.started_here, second_dsn) == (False, dsn), "a running server is reused, not restarted"
    second.stop()
    with psycopg.connect(dsn) as conn:
        assert conn.execute("SELECT 1").fetchone() == (1,), "only the process that started it stops it"

    first.stop()
    with pytest.raises(psycopg.OperationalError):
        psycopg.connect(dsn, connect_timeout=2).close()

    third, third_dsn = _start(data_dir)
    assert third.started_here and third_dsn == dsn, "a restart reuses the data dir and the port"
    with psycopg.connect(third_dsn) as conn:
        assert conn.execute("SELECT value FROM kept").fetchone() == ("still here",)
    third.stop()
