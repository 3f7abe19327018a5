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


def _fake_az(tmp_path: Path, body: str) -> tuple[Path, Path]:
    """An `az` in tmp_path/bin that appends its arguments to tmp_path/az-calls, then runs body."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    calls = tmp_path / "az-calls"
    fake = bin_dir / "az"
    fake.write_text(f'#!/bin/sh\necho "$@" >> {calls}\n{body}\n')
    fake.chmod(0o755)
    return bin_dir, calls


def run_deploy(tmp_path: Path, *args: str, extra_env: dict[str, str] | None = None):
    """Run deploy.sh with an `az` on PATH that records any call and fails."""
    bin_dir, calls = _fake_az(tmp_path, "exit 1")
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


# --- deploy-only secrets: the operations vault ---------------------------------------------


def test_private_dry_run_reads_deploy_only_secrets_from_the_ops_vault_through_the_window(tmp_path):
    env = {k: v for k, v in os.environ.items() if k not in ("POSTGRES_ADMIN_PASSWORD", "POSTGRES_APP_PASSWORD")}
    env["RUNNER_IP"] = "203.0.113.7"
    result, az_calls = run_deploy(tmp_path, "prod", "--dry-run", extra_env=env)

    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert not az_calls.exists()
    deployment = out.index("+ az deployment group create")
    # The vault is found by its purpose tag (infra/main.bicep), opened for the runner, then read.
    # (capture prints its command on stderr)
    rg = "--resource-group rg-ghost-pirates-prod"
    assert f"az keyvault list {rg} --query \\[\\?tags.purpose==\\'ops\\'\\]" in result.stderr
    opened = out.index(f"az keyvault network-rule add {rg} --name \\<opsKeyVaultName\\>")
    admin = out.index("--vault-name <opsKeyVaultName> --name postgres-admin-password")
    app = out.index("--vault-name <opsKeyVaultName> --name postgres-app-password")
    assert opened < admin < app < deployment
    assert "--vault-name <keyVaultName> --name postgres-admin-password" not in out
    # After the deployment only the app vault is re-opened, and 1c looks for leftover copies there.
    after = out[deployment:]
    assert "\\<opsKeyVaultName\\>" not in after, "nothing after step 1 needs the operations vault"
    assert "operations vault stays closed" in after
    assert "1c. deploy-only secrets belong in the operations vault" in after
    err = result.stderr
    legacy_check = err.index("az keyvault secret list --vault-name \\<keyVaultName\\>")
    assert "postgres-admin-password" in err[legacy_check : err.index("\n", legacy_check)]


def _scripted_az(tmp_path: Path, script: str) -> dict[str, str]:
    """An `az` on PATH that records its calls and answers per `case "$*"` branches of script."""
    bin_dir, _ = _fake_az(tmp_path, f'case "$*" in\n{script}\n  *) exit 0 ;;\nesac')
    # Step 2 (packaging) stops the run: these tests are about step 1.
    python = bin_dir / "python-stub"
    python.write_text(
        f'#!/bin/sh\ncase "$1" in scripts/package_app.py) echo "stopped at packaging" >&2; exit 3 ;; esac\n'
        f'exec {sys.executable} "$@"\n'
    )
    python.chmod(0o755)
    env = {k: v for k, v in os.environ.items() if k not in ("POSTGRES_ADMIN_PASSWORD", "POSTGRES_APP_PASSWORD")}
    return {**env, "PATH": f"{bin_dir}:{os.environ['PATH']}", "PYTHON": str(python), "GP_DIST": str(tmp_path / "dist")}


def _real_run(tmp_path: Path, script: str) -> tuple[subprocess.CompletedProcess[str], list[str]]:
    env = _scripted_az(tmp_path, script)
    result = subprocess.run(
        ["bash", str(REPO / "scripts/deploy.sh"), "dev"],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        cwd=str(tmp_path),
    )
    calls_file = tmp_path / "az-calls"
    return result, calls_file.read_text().splitlines() if calls_file.exists() else []


_OUTPUTS = json.dumps(
    {
        name: {"value": value}
        for name, value in {
            "functionAppName": "func1",
            "functionAppHostName": "func1.example",
            "keyVaultName": "kvapp1",
            "opsKeyVaultName": "kvops1",
            "storageAccountName": "st1",
            "releasesContainerName": "releases",
            "postgresServerName": "pg1",
            "postgresFqdn": "pg1.example",
            "postgresDatabaseName": "ghost_pirates",
            "postgresAdminLoginName": "gpadmin",
        }.items()
    }
)


def test_existing_environment_without_ops_vault_reads_the_legacy_copy_once_and_is_told_to_remove_it(tmp_path):
    result, calls = _real_run(
        tmp_path,
        f"""  *"tags.purpose=='ops'"*) echo "" ;;
  *"tags.purpose!='ops'"*) echo kvapp1 ;;
  *"secret show --vault-name kvapp1 --name postgres-admin-password"*) echo legacy-admin-pw-1 ;;
  *"secret show --vault-name kvapp1 --name postgres-app-password"*) echo legacy-app-pw-1 ;;
  *"deployment group create"*) echo '{_OUTPUTS}' ;;
  *"secret list --vault-name kvapp1"*) printf 'postgres-admin-password\\npostgres-app-password\\n' ;;""",
    )

    assert result.returncode == 3 and "stopped at packaging" in result.stderr, result.stderr
    assert "legacy location" in result.stderr
    assert any("secret show --vault-name kvapp1 --name postgres-admin-password" in c for c in calls)
    assert (
        "WARNING: the app vault kvapp1 still holds deploy-only secret(s): postgres-admin-password postgres-app-password"
        in result.stderr
    )
    assert "az keyvault secret delete --vault-name kvapp1 --name postgres-admin-password" in result.stderr
    assert "Move deploy-only secrets to the operations vault" in result.stderr
    assert "legacy-admin-pw-1" not in result.stdout + result.stderr
    assert "legacy-app-pw-1" not in result.stdout + result.stderr


def test_with_an_ops_vault_the_passwords_come_only_from_it_and_a_clean_app_vault_passes(tmp_path):
    result, calls = _real_run(
        tmp_path,
        f"""  *"tags.purpose=='ops'"*) echo kvops1 ;;
  *"secret show --vault-name kvops1 --name postgres-admin-password"*) echo ops-admin-pw-1 ;;
  *"secret show --vault-name kvops1 --name postgres-app-password"*) echo ops-app-pw-1 ;;
  *"secret show"*) exit 1 ;;
  *"deployment group create"*) echo '{_OUTPUTS}' ;;
  *"secret list --vault-name kvapp1"*) echo "" ;;""",
    )

    assert result.returncode == 3, result.stderr
    assert "app vault holds no deploy-only secret" in result.stdout
    reads = [c for c in calls if "secret show" in c]
    assert reads and all("--vault-name kvops1" in c for c in reads), reads
    assert not any("tags.purpose!='ops'" in c for c in calls)
    assert "WARNING" not in result.stderr


def test_an_unreadable_ops_vault_stops_the_deploy_instead_of_using_another_copy(tmp_path):
    result, calls = _real_run(
        tmp_path,
        """  *"tags.purpose=='ops'"*) echo kvops1 ;;
  *"tags.purpose!='ops'"*) echo kvapp1 ;;
  *"secret show"*) echo "Forbidden" >&2; exit 1 ;;""",
    )

    assert result.returncode == 1
    assert "cannot read postgres-admin-password from kvops1" in result.stderr
    assert not any("kvapp1" in c for c in calls)
    assert not any("deployment group create" in c for c in calls)
