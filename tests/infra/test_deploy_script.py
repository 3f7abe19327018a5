"""scripts/deploy.sh --dry-run, and the two helpers it runs: package_app.py and wait_healthy.py."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import zipfile
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "scripts"))

import package_app  # noqa: E402
import wait_healthy  # noqa: E402


def run_deploy(tmp_path: Path, *args: str, extra_env: dict[str, str] | None = None):
    """Run deploy.sh with an `az` on PATH that records any call and fails."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    calls = tmp_path / "az-calls"
    fake_az = bin_dir / "az"
    fake_az.write_text(f'#!/bin/sh\necho "$@" >> {calls}\nexit 1\n')
    fake_az.chmod(0o755)
    env = {**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}", **(extra_env or {})}
    result = subprocess.run(
        ["bash", str(REPO / "scripts/deploy.sh"), *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        cwd=str(tmp_path),
    )
    return result, calls


def test_dry_run_prints_every_step_and_calls_nothing(tmp_path):
    result, az_calls = run_deploy(
        tmp_path, "dev", "--dry-run", extra_env={"POSTGRES_ADMIN_PASSWORD": "do-not-print-me-123"}
    )

    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert not az_calls.exists(), "dry run called az"
    for expected in (
        "az deployment group create",
        "--template-file infra/main.bicep",
        "--parameters infra/dev.bicepparam",
        "scripts/package_app.py",
        "-m shared.db.migrate",
        "scripts/apply_db_roles.py --role ghost_pirates_app",
        "az storage blob download",
        "az functionapp deployment source config-zip",
        "scripts/wait_healthy.py https://",
        "/api/health --timeout 300",
        "rollback",
        "az storage blob upload",
    ):
        assert expected in out, f"dry run does not mention: {expected}"
    assert (
        out.index("az deployment group create")
        < out.index("shared.db.migrate")
        < out.index("apply_db_roles.py")
        < out.index("config-zip")
    )
    # Migrations run as the admin: the app's database-url (the DML-only role) cannot migrate.
    assert "--name database-url" not in out
    assert "do-not-print-me-123" not in out + result.stderr
    assert "Dry run complete" in out


def test_dev_dry_run_has_public_endpoints_and_no_deploy_window(tmp_path):
    result, _ = run_deploy(tmp_path, "dev", "--dry-run", extra_env={"POSTGRES_ADMIN_PASSWORD": "x" * 20})

    assert result.returncode == 0, result.stderr
    assert "private networking OFF" in result.stdout
    assert "deploy window" not in result.stdout
    assert "--public-access" not in result.stdout and "network-rule add" not in result.stdout


@pytest.mark.parametrize("env", ["staging", "prod"])
def test_private_dry_run_opens_a_deploy_window_for_the_runner_only_and_closes_it(tmp_path, env):
    result, az_calls = run_deploy(
        tmp_path,
        env,
        "--dry-run",
        extra_env={
            "POSTGRES_ADMIN_PASSWORD": "x" * 20,
            "POSTGRES_APP_PASSWORD": "app-secret-not-printed",
            "RUNNER_IP": "203.0.113.7",
        },
    )

    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert not az_calls.exists()
    assert "private networking ON" in out and "RUNNER_IP=203.0.113.7" in out
    opened = out.index("1b. deploy window")
    rg = f"--resource-group rg-ghost-pirates-{env}"
    for command in (
        f"az keyvault network-rule add {rg} --name \\<keyVaultName\\> --ip-address 203.0.113.7/32",
        f"az storage account network-rule add {rg} --account-name \\<storageAccountName\\> --ip-address 203.0.113.7",
        f"az postgres flexible-server update {rg} --name \\<postgresServerName\\> --public-access Enabled",
    ):
        assert out.find(command, opened) > opened, command
    assert "--default-action Deny" in out
    closed = out.index("9. close the deploy window")
    steps = [out.index(s) for s in ("shared.db.migrate", "config-zip", "az storage blob upload")]
    assert opened < steps[0] < steps[1] < steps[2] < closed
    for command in (
        "az keyvault network-rule remove",
        f"az keyvault update {rg} --name \\<keyVaultName\\> --public-network-access Disabled",
        "az storage account network-rule remove",
        "--public-network-access Disabled --default-action Deny",
        "firewall-rule delete",
        "--public-access Disabled",
    ):
        assert out.find(command, closed) > closed, command
    assert "app-secret-not-printed" not in out + result.stderr


def test_private_deploy_without_runner_ip_stops_before_calling_azure(tmp_path):
    env = {k: v for k, v in os.environ.items() if k not in ("RUNNER_IP", "GP_DEPLOY_FROM_VNET")}
    result, az_calls = run_deploy(tmp_path, "prod", extra_env={**env, "POSTGRES_ADMIN_PASSWORD": "x" * 20})

    assert result.returncode == 1
    assert "set RUNNER_IP" in result.stderr and "GP_DEPLOY_FROM_VNET=1" in result.stderr
    assert not az_calls.exists()


def test_private_dry_run_from_inside_the_vnet_opens_no_window(tmp_path):
    result, _ = run_deploy(
        tmp_path, "prod", "--dry-run", extra_env={"POSTGRES_ADMIN_PASSWORD": "x" * 20, "GP_DEPLOY_FROM_VNET": "1"}
    )

    assert result.returncode == 0, result.stderr
    assert "through the private endpoints (no window)" in result.stdout
    assert "network-rule add" not in result.stdout and "--public-access" not in result.stdout


def test_dry_run_reads_the_database_password_from_key_vault_when_not_given(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "POSTGRES_ADMIN_PASSWORD"}
    env["POSTGRES_ADMIN_PASSWORD"] = ""
    result, az_calls = run_deploy(tmp_path, "prod", "--dry-run", extra_env=env)

    assert result.returncode == 0, result.stderr
    assert "--name postgres-admin-password" in result.stdout
    assert "infra/prod.bicepparam" in result.stdout
    assert not az_calls.exists()


@pytest.mark.parametrize("args", [(), ("qa",), ("dev", "--yes")])
def test_deploy_refuses_unknown_arguments(tmp_path, args):
    result, az_calls = run_deploy(tmp_path, *args)

    assert result.returncode == 2
    assert "usage" in result.stderr
    assert not az_calls.exists()


def test_package_honors_funcignore(tmp_path):
    root = tmp_path / "app"
    for relative in (
        "function_app.py",
        "host.json",
        "shared/x.py",
        "devhost/server.py",
        "tests/test_x.py",
        "web/index.html",
        "shared/__pycache__/x.cpython-311.pyc",
        ".venv/lib/y.py",
        "docs/runbook.md",
        "keep/notes.md",
    ):
        (root / relative).parent.mkdir(parents=True, exist_ok=True)
        (root / relative).write_text("x")
    (root / ".funcignore").write_text("# not deployed\ndevhost/\ntests\n*.md\n!keep/notes.md\n")
    output = tmp_path / "out" / "app.zip"

    assert package_app.main([str(output), "--root", str(root)]) == 0

    names = set(zipfile.ZipFile(output).namelist())
    assert names == {"function_app.py", "host.json", "shared/x.py", "web/index.html", "keep/notes.md"}


def test_package_without_function_app_fails(tmp_path):
    root = tmp_path / "app"
    root.mkdir()
    (root / "README.txt").write_text("x")

    assert package_app.main([str(tmp_path / "app.zip"), "--root", str(root)]) == 1


class _Health:
    """A /api/health that answers 503 a number of times, then healthy."""

    def __init__(self, unhealthy_answers: int) -> None:
        self.remaining_unhealthy = unhealthy_answers
        self.requests = 0
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                outer.requests += 1
                healthy = outer.remaining_unhealthy <= 0
                outer.remaining_unhealthy -= 1
                body = json.dumps({"status": "healthy" if healthy else "unhealthy"}).encode()
                self.send_response(200 if healthy else 503)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/api/health"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> _Health:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()


def test_wait_healthy_polls_until_the_app_reports_healthy():
    with _Health(unhealthy_answers=2) as health:
        assert wait_healthy.wait_healthy(health.url, timeout=10, interval=0.05) is True
    assert health.requests == 3


def test_wait_healthy_gives_up_at_the_deadline():
    with _Health(unhealthy_answers=10_000) as health:
        assert wait_healthy.main([health.url, "--timeout", "0.5", "--interval", "0.1"]) == 1
    assert 2 <= health.requests <= 10


def test_wait_healthy_accepts_degraded_only_when_asked():
    class Degraded(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = b'{"status": "degraded"}'
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Degraded)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}/api/health"
    try:
        assert wait_healthy.wait_healthy(url, timeout=0.3, interval=0.1) is False
        assert wait_healthy.wait_healthy(url, timeout=0.3, interval=0.1, accept_degraded=True) is True
    finally:
        server.shutdown()
        server.server_close()
