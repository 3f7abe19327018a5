"""The embedded PostgreSQL starts in <data-dir>/pg, is reused while running, keeps its data, and
wants its generated password from everyone."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from devhost.postgres import EmbeddedPostgres, EmbeddedPostgresError, _bin_path

pytestmark = pytest.mark.slow  # starts and stops PostgreSQL server processes


@pytest.fixture
def data_dir() -> Iterator[Path]:
    # Not under pytest's tmp_path: as root, PostgreSQL runs as another user, which must traverse the
    # parents, and a concurrent pytest session resets its own base directory to mode 0700.
    root = Path(tempfile.mkdtemp(prefix="gp-embedded-pg-test-"))
    path = root / "pg"
    yield path
    if (path / "postmaster.pid").exists():  # a failed assertion left it running
        EmbeddedPostgres(path, started_here=True).stop()
    shutil.rmtree(root, ignore_errors=True)


def _start(path: Path) -> tuple[EmbeddedPostgres, str]:
    server = EmbeddedPostgres(path)
    try:
        return server, server.start()
    except (EmbeddedPostgresError, OSError) as exc:
        pytest.skip(f"the embedded PostgreSQL binaries cannot run here: {exc}")


def test_start_reuse_restart_keeps_data_and_port(data_dir: Path) -> None:
    first, dsn = _start(data_dir)
    assert first.started_here
    assert dsn.startswith(f"postgresql://postgres:{first.password()}@127.0.0.1:") and dsn.endswith("/ghost_pirates")
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


def _without_password(server: EmbeddedPostgres) -> str:
    return f"postgresql://postgres@127.0.0.1:{server.port}/postgres"


def test_a_new_cluster_refuses_connections_without_its_generated_password(data_dir: Path) -> None:
    server, dsn = _start(data_dir)
    try:
        assert len(server.password()) == 48
        assert (server.password_path.stat().st_mode & 0o777) == 0o600
        with pytest.raises(psycopg.OperationalError, match="password"):
            psycopg.connect(_without_password(server), connect_timeout=5).close()
        wrong = dsn.replace(server.password(), "0" * 48)
        with pytest.raises(psycopg.OperationalError, match="password authentication failed"):
            psycopg.connect(wrong, connect_timeout=5).close()
        with psycopg.connect(dsn) as conn:
            assert conn.execute("SELECT 1").fetchone() == (1,)
        assert server.password() not in server.display_dsn()
    finally:
        server.stop()


def test_a_trust_cluster_of_an_older_devhost_gets_a_password_on_its_next_start(data_dir: Path) -> None:
    old = EmbeddedPostgres(data_dir)
    try:
        old.data_dir.mkdir(mode=0o700, parents=True)
        run_as = old._prepare_permissions(_bin_path())
        old._run(["initdb", "-D", str(data_dir), "--auth=trust", "-U", "postgres", "--no-sync"], run_as)
    except (EmbeddedPostgresError, OSError) as exc:
        pytest.skip(f"the embedded PostgreSQL binaries cannot run here: {exc}")
    server, dsn = _start(data_dir)
    try:
        with pytest.raises(psycopg.OperationalError, match="password"):
            psycopg.connect(_without_password(server), connect_timeout=5).close()
        with psycopg.connect(dsn) as conn:
            assert conn.execute("SELECT 1").fetchone() == (1,)
    finally:
        server.stop()
    again, again_dsn = _start(data_dir)  # restarted from the converted files: still a password
    try:
        assert again_dsn == dsn
        with pytest.raises(psycopg.OperationalError, match="password"):
            psycopg.connect(_without_password(again), connect_timeout=5).close()
    finally:
        again.stop()
