"""Fixtures: a local TLS Key Vault and managed-identity endpoint for the official SDKs."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from .stub import (
    IDENTITY_HEADER,
    VaultState,
    build_identity_app,
    build_vault_app,
    start_site,
    tls_server_context,
)


@dataclass
class LocalVault:
    url: str
    ca_path: Path
    state: VaultState


class FakeClock:
    """A monotonic clock the test advances by hand."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
async def local_vault(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[LocalVault]:
    state = VaultState()
    server_ctx, ca_path = tls_server_context(tmp_path)
    vault_runner, vault_port = await start_site(build_vault_app(state), server_ctx)
    identity_runner, identity_port = await start_site(build_identity_app(state), None)
    # DefaultAzureCredential picks the App Service managed identity from these two variables.
    for name in (
        "AZURE_CLIENT_ID",
        "AZURE_CLIENT_SECRET",
        "AZURE_TENANT_ID",
        "AZURE_CLIENT_CERTIFICATE_PATH",
        "AZURE_USERNAME",
        "AZURE_FEDERATED_TOKEN_FILE",
        "MSI_ENDPOINT",
        "MSI_SECRET",
    ):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("IDENTITY_ENDPOINT", f"http://127.0.0.1:{identity_port}/msi/token")
    monkeypatch.setenv("IDENTITY_HEADER", IDENTITY_HEADER)
    try:
        yield LocalVault(url=f"https://localhost:{vault_port}", ca_path=ca_path, state=state)
    finally:
        await vault_runner.cleanup()
        await identity_runner.cleanup()


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()
