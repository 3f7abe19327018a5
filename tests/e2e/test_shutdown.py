"""Start-up and shutdown of the app under devhost: bad settings stop it; SIGTERM drains and releases."""

from __future__ import annotations

import asyncio
import signal

import httpx
import psycopg
import pytest

from tests.devhost.process import spawn_devhost
from tests.e2e.conftest import REPO, register, start_app, stop_app
from tests.e2e.test_team_runs import TERMINAL, assert_clean_history, run_team, wait_for

pytestmark = pytest.mark.slow


async def test_an_unresolved_key_vault_reference_stops_start_up_naming_the_setting(tmp_path, migrated_database_url):
    reference = "@Microsoft.KeyVault(SecretUri=https://gp.vault.azure.net/secrets/openai-api-key/)"
    with pytest.raises(AssertionError) as failed:
        await spawn_devhost(REPO, tmp_path, env={"DATABASE_URL": migrated_database_url,
                                                 "OPENAI_API_KEY": reference}, start_seconds=60)
    assert "OPENAI_API_KEY" in str(failed.value)
    assert "gp.vault.azure.net" not in str(failed.value).split("OPENAI_API_KEY", 1)[1][:200]


async def test_sigterm_mid_run_exits_zero_and_another_host_finishes_the_work_at_once(tmp_path,
                                                                                      migrated_database_url):
    env = {"OFFLINE_LLM_LATENCY_MS": "150"}
    first = await start_app(tmp_path / "first", migrated_database_url, **env)
    async with httpx.AsyncClient(base_url=first.base_url, timeout=20) as http:
        auth = await register(http)
        team_id = await run_team(http, auth, "Build a web scraper for product prices")
        await wait_for(http, auth, team_id, lambda t: any(task["status"] == "in_progress" for task in t["tasks"]))
        slow_read = asyncio.create_task(http.get(f"/api/teams/{team_id}/events?after_seq=0", headers=auth))
        first.process.process.send_signal(signal.SIGTERM)
        assert (await slow_read).status_code in (200, 503)
    assert await first.process.wait_exit(30) == 0
    with psycopg.connect(migrated_database_url) as conn:
        held = conn.execute(
            "SELECT (SELECT count(*) FROM durable.activities WHERE lease_token IS NOT NULL)"
            " + (SELECT count(*) FROM durable.instances WHERE lease_token IS NOT NULL)").fetchone()
    assert held == (0,), "a stopped host must release every claim it held"

    second = await start_app(tmp_path / "second", migrated_database_url, **env)
    try:
        async with httpx.AsyncClient(base_url=second.base_url, timeout=20) as http:
            team = await wait_for(http, auth, team_id, lambda t: t["status"] in TERMINAL, seconds=120)
            assert team["status"] == "completed"
            assert_clean_history(migrated_database_url, team_id)
    finally:
        await stop_app(second)
