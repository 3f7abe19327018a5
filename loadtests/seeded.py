"""Seeded databases for benchmarks: a template seeded once per data set, cloned per run.

The template's name carries a hash of the migrations, the seeder and the plan, so a new migration
or a different `--teams` seeds a new template; a run works on a throw-away clone (`CREATE DATABASE
... TEMPLATE`, a file copy), so runs that create teams never change the next run's data.
"""

from __future__ import annotations

import contextlib
import hashlib
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import psycopg
from psycopg import sql
from psycopg.conninfo import make_conninfo

from loadtests.seed import seed
from loadtests.seed_data import SeedPlan
from shared.db.migrate import MIGRATIONS_DIR

HERE = Path(__file__).parent


def template_name(plan: SeedPlan) -> str:
    digest = hashlib.sha256(repr(plan).encode())
    for path in [*sorted(MIGRATIONS_DIR.glob("*.sql")), HERE / "seed.py", HERE / "seed_data.py"]:
        digest.update(path.read_bytes())
    return f"gp_bench_tpl_{digest.hexdigest()[:10]}"


def _exists(admin_url: str, name: str) -> bool:
    with psycopg.connect(admin_url, autocommit=True) as conn:
        return conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone() is not None


def ensure_template(admin_url: str, plan: SeedPlan, progress: Callable[[str], None] = print) -> tuple[str, float]:
    """The template's name, and the seconds seeding took (0 when it already existed)."""
    name = template_name(plan)
    if _exists(admin_url, name):
        return name, 0.0
    building = f"{name}_building"
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(building)))
    result = seed(make_conninfo(admin_url, dbname=building), plan, progress=progress)
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(sql.SQL("ALTER DATABASE {} RENAME TO {}").format(sql.Identifier(building), sql.Identifier(name)))
    return name, result.seconds


@contextlib.contextmanager
def clone(admin_url: str, template: str) -> Iterator[str]:
    """A fresh copy of the template for one run; dropped afterwards."""
    name = f"gp_bench_run_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {} TEMPLATE {}").format(sql.Identifier(name), sql.Identifier(template)))
    try:
        yield make_conninfo(admin_url, dbname=name)
    finally:
        with psycopg.connect(admin_url, autocommit=True) as conn:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
