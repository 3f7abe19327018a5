"""The real app served by a devhost subprocess, on a migrated database of its own."""

from __future__ import annotations

import re
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.conftest import _create_database, _drop_database
from tests.devhost.process import DevhostProcess, spawn_devhost

REPO = Path(__file__).resolve().parents[2]
_DEMO = re.compile(r"Demo login\s+(\S+)\s+/\s+(\S+)")


@dataclass
class AppHost:
    process: DevhostProcess
    base_url: str
    database_url: str
    demo_email: str
    demo_password: str


async def start_app(tmp_path: Path, database_url: str, **env: str) -> AppHost:
    tmp_path.mkdir(parents=True, exist_ok=True)
    process = await spawn_devhost(REPO, tmp_path, env={"DATABASE_URL": database_url, **env})
    demo = next((m for line in process.banner if (m := _DEMO.search(line))), None)
    email, password = (demo.group(1), demo.group(2)) if demo else ("", "")
    return AppHost(process, process.base_url, database_url, email, password)


async def stop_app(host: AppHost) -> None:
    process = host.process.process
    if process.returncode is None:
        process.terminate()
        try:
            await host.process.wait_exit(20)
        except TimeoutError:
            await host.process.kill()


@pytest.fixture(scope="module")
def module_database_url(pg_server_url: str, migrated_template: str):
    name = f"gp_e2e_{uuid.uuid4().hex[:10]}"
    yield _create_database(pg_server_url, name, template=migrated_template)
    _drop_database(pg_server_url, name)


@pytest.fixture(scope="module")
async def app_host(module_database_url: str, tmp_path_factory) -> AsyncIterator[AppHost]:
    host = await start_app(tmp_path_factory.mktemp("devhost"), module_database_url,
                           RATE_LIMIT_LOGIN_PER_MINUTE="1000", RATE_LIMIT_WRITES_PER_MINUTE="5000")
    yield host
    await stop_app(host)


@pytest.fixture
async def http(app_host: AppHost) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=app_host.base_url, timeout=20) as client:
        yield client


async def register(http: httpx.AsyncClient, company: str = "Acme") -> dict[str, str]:
    """A new company with its admin; returns auth headers."""
    response = await http.post("/api/auth/register", json={
        "company_name": company, "email": f"{uuid.uuid4().hex[:10]}@example.com",
        "password": "correct horse battery", "full_name": "Ada Admin"})
    assert response.status_code == 201, response.text
    return {"Authorization": f"Bearer {response.json()['token']}"}


@pytest.fixture
async def auth(http: httpx.AsyncClient) -> dict[str, str]:
    return await register(http)
