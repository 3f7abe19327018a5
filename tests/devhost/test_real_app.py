"""devhost serving this repository's app on an embedded PostgreSQL, across a restart."""

from __future__ import annotations

import re
import signal
from pathlib import Path

import httpx
import pytest

from tests.devhost.process import REPO, spawn_devhost

pytestmark = pytest.mark.slow  # devhost and an embedded PostgreSQL in subprocesses, twice

_DEMO = re.compile(r"Demo login(?: \(created earlier\))?\s+(\S+) / (\S+)")


def _demo_login(banner: list[str]) -> tuple[str, str, bool]:
    for line in banner:
        found = _DEMO.search(line)
        if found:
            return found.group(1), found.group(2), "created earlier" not in line
    raise AssertionError("no demo login in the banner:\n" + "\n".join(banner))


async def _serve_and_login(tmp_path: Path) -> tuple[tuple[str, str, bool], list[str]]:
    host = await spawn_devhost(REPO, tmp_path, env={}, start_seconds=90)
    try:
        email, password, is_new = _demo_login(host.banner)
        async with httpx.AsyncClient(base_url=host.base_url, timeout=10) as client:
            health = await client.get("/api/health")
            assert health.status_code == 200, health.text
            login = await client.post("/api/auth/login", json={"email": email, "password": password})
            assert login.status_code == 200, login.text
            bearer = {"Authorization": f"Bearer {login.json()['token']}"}
            teams = await client.get("/api/teams", headers=bearer)
            assert teams.status_code == 200 and isinstance(teams.json(), list)
        host.process.send_signal(signal.SIGTERM)
        assert await host.wait_exit(30) == 0, host.log()
    finally:
        await host.kill()
    return (email, password, is_new), host.banner


async def test_embedded_database_demo_login_survives_a_restart(tmp_path: Path) -> None:
    (email, password, is_new), banner = await _serve_and_login(tmp_path)
    assert is_new
    assert any(f"embedded at {tmp_path / 'data' / 'pg'}" in line for line in banner)
    assert not (tmp_path / "data" / "pg" / "postmaster.pid").exists(), "embedded Postgres stopped on exit"

    (again_email, again_password, again_new), _ = await _serve_and_login(tmp_path)
    assert (again_email, again_password, again_new) == (email, password, False)
