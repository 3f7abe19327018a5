"""The options that let several devhosts share one system: --pubsub-url (a standalone emulator and
its key file), --lease-seconds, and the banner's word on what Redis shares."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from devhost.banner import redis_label
from devhost.cli import main
from devhost.pubsub.keys import KEY_FILE, load_or_create_access_key
from tests.devhost.process import spawn_devhost

HERE = Path(__file__).parent


async def test_pubsub_url_points_the_app_at_the_shared_emulator_with_the_data_dirs_key(
    empty_database_url: str, tmp_path: Path
) -> None:
    key = load_or_create_access_key(tmp_path / "data")  # what `python -m devhost.pubsub --data-dir` creates
    host = await spawn_devhost(HERE / "sample_app", tmp_path, env={"DATABASE_URL": empty_database_url},
                               extra=("--no-migrate", "--pubsub-url", "http://127.0.0.1:7999/", "--lease-seconds", "2"))
    try:
        async with httpx.AsyncClient(base_url=host.base_url, timeout=10) as client:
            settings = (await client.get("/api/settings")).json()
    finally:
        await host.kill()
    assert settings["WEBPUBSUB_CONNECTION_STRING"] == f"Endpoint=http://127.0.0.1:7999;AccessKey={key};Version=1.0;"
    banner = "\n".join(host.banner)
    assert "shared emulator at http://127.0.0.1:7999/ (--pubsub-url)" in banner
    assert "emulator ws://" not in banner, "no emulator of its own"


async def test_pubsub_url_without_the_emulators_key_file_is_a_start_error_that_says_what_to_run(
    empty_database_url: str, tmp_path: Path
) -> None:
    with pytest.raises(AssertionError, match=r"pubsub\.key does not exist: start `python -m devhost\.pubsub"):
        await spawn_devhost(HERE / "sample_app", tmp_path, env={"DATABASE_URL": empty_database_url},
                            extra=("--no-migrate", "--pubsub-url", "http://127.0.0.1:7999"))


@pytest.mark.parametrize("value", ["0", "-3", "abc", "7200"])
def test_lease_seconds_outside_half_a_second_to_an_hour_is_refused(value: str, capsys: pytest.CaptureFixture[str]):
    with pytest.raises(SystemExit) as exited:
        main(["serve", "--lease-seconds", value])
    assert exited.value.code == 2
    assert "--lease-seconds" in capsys.readouterr().err


def test_the_banner_says_caches_and_limits_are_per_host_without_redis_and_shared_with_it():
    assert redis_label(False) == "in-process (REDIS_URL unset): caches and rate limits are per host"
    assert "shared by every host" in redis_label(True)


def test_the_emulator_key_is_created_once_private_and_then_reused(tmp_path: Path):
    first, second = load_or_create_access_key(tmp_path), load_or_create_access_key(tmp_path)
    assert first == second and len(first) >= 32
    assert (tmp_path / KEY_FILE).stat().st_mode & 0o777 == 0o600
