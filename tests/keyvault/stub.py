"""A local Key Vault (HTTPS, trustme certificate) and managed-identity token endpoint that speak
the wire format the official SDKs use, as recorded in ../shared/protocols/KEY_VAULT_AND_BICEP.md:
challenge 401 first, then bearer requests; the App Service identity endpoint for tokens."""

from __future__ import annotations

import json
import ssl
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import trustme
from aiohttp import web

TENANT_ID = "72f988bf-86f1-41af-91ab-2d7cd011db47"
IDENTITY_HEADER = "x-identity-secret-for-tests"


@dataclass
class VaultState:
    """What the stub serves and what it saw."""

    secrets: dict[str, tuple[str, str]] = field(default_factory=dict)  # name -> (version, value)
    issued_tokens: list[str] = field(default_factory=list)
    token_requests: list[dict[str, str]] = field(default_factory=list)
    unauthenticated_requests: int = 0
    secret_reads: int = 0
    fail_reads_with: int | None = None

    def set(self, name: str, value: str) -> None:
        self.secrets[name] = (uuid.uuid4().hex, value)


def _secret_body(host: str, name: str, version: str, value: str) -> dict[str, object]:
    return {
        "value": value,
        "id": f"https://{host}/secrets/{name}/{version}",
        "attributes": {"enabled": True, "created": 1700000000, "updated": 1700000000},
    }


def build_vault_app(state: VaultState) -> web.Application:
    """Key Vault data plane: GET/PUT secrets behind the bearer challenge."""

    def authorized(request: web.Request) -> bool:
        auth = request.headers.get("Authorization", "")
        return auth.startswith("Bearer ") and auth.removeprefix("Bearer ") in state.issued_tokens

    def challenge() -> web.Response:
        state.unauthenticated_requests += 1
        return web.Response(
            status=401,
            headers={
                "WWW-Authenticate": (
                    f'Bearer authorization="https://login.microsoftonline.com/{TENANT_ID}", '
                    'resource="https://vault.azure.net"'
                )
            },
        )

    async def get_secret(request: web.Request) -> web.Response:
        if not authorized(request):
            return challenge()
        state.secret_reads += 1
        if state.fail_reads_with is not None:
            return web.json_response(
                {"error": {"code": "Forbidden", "message": "injected failure"}},
                status=state.fail_reads_with,
            )
        name = request.match_info["name"]
        if name not in state.secrets:
            return web.json_response(
                {
                    "error": {
                        "code": "SecretNotFound",
                        "message": f"A secret with (name/id) {name} was not found",
                    }
                },
                status=404,
            )
        version, value = state.secrets[name]
        return web.json_response(_secret_body(request.host, name, version, value))

    async def put_secret(request: web.Request) -> web.Response:
        if not authorized(request):
            return challenge()
        name = request.match_info["name"]
        body = await request.json()
        state.set(name, body["value"])
        version, value = state.secrets[name]
        return web.json_response(_secret_body(request.host, name, version, value))

    async def delete_secret(request: web.Request) -> web.Response:
        if not authorized(request):
            return challenge()
        name = request.match_info["name"]
        if name not in state.secrets:
            return web.json_response({"error": {"code": "SecretNotFound", "message": name}}, status=404)
        version, value = state.secrets.pop(name)
        return web.json_response(_secret_body(request.host, name, version, value))  # no recoveryId: purged

    app = web.Application()
    app.router.add_delete("/secrets/{name}", delete_secret)
    app.router.add_get("/secrets/{name}/", get_secret)
    app.router.add_get("/secrets/{name}/{version}", get_secret)
    app.router.add_put("/secrets/{name}", put_secret)
    return app


def build_identity_app(state: VaultState) -> web.Application:
    """App Service managed identity endpoint (IDENTITY_ENDPOINT + IDENTITY_HEADER)."""

    async def token(request: web.Request) -> web.Response:
        if request.headers.get("X-IDENTITY-HEADER") != IDENTITY_HEADER:
            return web.json_response({"error": "missing identity header"}, status=401)
        state.token_requests.append(dict(request.query))
        access_token = uuid.uuid4().hex
        state.issued_tokens.append(access_token)
        return web.json_response(
            {
                "access_token": access_token,
                "expires_on": str(int(time.time()) + 3600),
                "resource": request.query.get("resource", ""),
                "token_type": "Bearer",
            }
        )

    app = web.Application()
    app.router.add_get("/msi/token", token)
    return app


def tls_server_context(tmp_dir: Path) -> tuple[ssl.SSLContext, Path]:
    """A server TLS context for localhost and the CA bundle path that trusts it."""
    ca = trustme.CA()
    cert = ca.issue_cert("localhost", "127.0.0.1")
    server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    cert.configure_cert(server_ctx)
    ca_path = tmp_dir / "ca.pem"
    ca.cert_pem.write_to_path(str(ca_path))
    return server_ctx, ca_path


async def start_site(app: web.Application, ssl_context: ssl.SSLContext | None) -> tuple[web.AppRunner, int]:
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=ssl_context)
    await site.start()
    server = site._server
    assert server is not None
    port: int = server.sockets[0].getsockname()[1]  # type: ignore[attr-defined]
    return runner, port


def signing_keys_json(keys: dict[str, str]) -> str:
    return json.dumps(keys)
