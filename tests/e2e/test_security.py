"""The security probe of issue 12, replayed against the real devhost: every request it got through
with now gets 401/403/400/422/429, and what the app must still do keeps working."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from urllib.parse import urlsplit

import httpx
import jwt
import psycopg
import pytest

from shared.config import DEV_SIGNING_SECRET
from tests.e2e.conftest import AppHost, start_app, stop_app
from tests.e2e.test_api import assert_problem

pytestmark = pytest.mark.slow

MANAGEMENT = "/runtime/webhooks/durabletask"
OWN_KEYS = json.dumps({"prod-1": "a-staging-signing-secret-that-nobody-published-0123"})
PASSWORD = "correct horse battery"


def system_key(host: AppHost) -> str:
    assert host.process.log_path is not None
    return (host.process.log_path.parent / "data" / "durable.key").read_text().strip()


async def new_account(http: httpx.AsyncClient, company: str = "Acme") -> tuple[str, dict[str, str], dict]:
    email = f"{uuid.uuid4().hex[:10]}@example.com"
    response = await http.post("/api/auth/register", json={
        "company_name": company, "email": email, "password": PASSWORD, "full_name": "Ada Admin"})
    assert response.status_code == 201, response.text
    body = response.json()
    return email, {"Authorization": f"Bearer {body['token']}"}, body


async def outside_a_window_edge() -> None:
    """Rate limits count per clock minute: start a burst well inside one."""
    if time.time() % 60 > 50:
        await asyncio.sleep(61 - time.time() % 60)


def client_from(host: AppHost, address: str) -> httpx.AsyncClient:
    """A client whose socket comes from `address` (any 127.x address reaches a loopback server)."""
    transport = httpx.AsyncHTTPTransport(local_address=address)
    return httpx.AsyncClient(base_url=host.base_url, timeout=20, transport=transport)


# --- 1. the Durable management API ----------------------------------------------------------------


async def test_management_api_without_the_system_key_is_401_and_changes_nothing(http, app_host):
    _, owner, _ = await new_account(http, "Victim")
    team = (await http.post("/api/teams", headers=owner, json={"goal": "plan me", "approve_plan": True})).json()
    started = await http.post(f"/api/teams/{team['id']}/start", headers=owner)
    assert started.status_code == 202
    instance = started.json()["instance_id"]
    probes = [
        http.get(f"{MANAGEMENT}/instances/"),
        http.get(f"{MANAGEMENT}/instances/{instance}"),
        http.post(f"{MANAGEMENT}/instances/{instance}/raiseEvent/plan_approved", content='{"tasks": null}',
                  headers={"Content-Type": "text/plain"}),
        http.post(f"{MANAGEMENT}/orchestrators/team_orchestrator/other-{instance}", content=json.dumps(team["id"])),
        http.post(f"{MANAGEMENT}/instances/{instance}/terminate?reason=probe"),
        http.delete(f"{MANAGEMENT}/instances/{instance}"),
        http.get(f"{MANAGEMENT}/instances/?code=wrong-key"),
        http.get(f"{MANAGEMENT}/instances/", headers={"x-functions-key": "wrong-key"}),
        http.get(f"{MANAGEMENT}/key/wrong-key/instances/"),
    ]
    for response in await asyncio.gather(*probes):
        assert_problem(response, 401)
    key = system_key(app_host)
    status = await http.get(f"{MANAGEMENT}/instances/{instance}", params={"code": key})
    assert status.status_code in (200, 202) and status.json()["runtimeStatus"] in ("Pending", "Running")
    detail = (await http.get(f"/api/teams/{team['id']}", headers=owner)).json()
    assert detail["status"] == "planning"
    audit = (await http.get("/api/audit", headers=owner, params={"team_id": team["id"]})).json()
    assert "team.plan_approved" not in {event["event_type"] for event in audit}


async def test_management_api_refuses_browsers_and_foreign_hosts_even_with_the_key(http, app_host):
    key = system_key(app_host)
    csrf = await http.post(f"{MANAGEMENT}/instances/team-x/raiseEvent/plan_approved", params={"code": key},
                           content="{}", headers={"Content-Type": "text/plain", "Origin": "https://evil.example"})
    assert_problem(csrf, 403)
    rebound = await http.get(f"{MANAGEMENT}/instances/", headers={"x-functions-key": key, "Host": "evil.example"})
    assert_problem(rebound, 403)
    for ok in await asyncio.gather(http.get(f"{MANAGEMENT}/instances/", params={"code": key}),
                                   http.get(f"{MANAGEMENT}/instances/", headers={"x-functions-key": key}),
                                   http.get(f"{MANAGEMENT}/key/{key}/instances/")):
        assert ok.status_code == 200 and isinstance(ok.json(), list)


# --- 2. the published development key --------------------------------------------------------------


@pytest.fixture(scope="module")
async def staging_host(pg_server_url, migrated_template, tmp_path_factory) -> AsyncIterator[AppHost]:
    from tests.conftest import _create_database, _drop_database

    name = f"gp_e2e_stg_{uuid.uuid4().hex[:8]}"
    url = _create_database(pg_server_url, name, template=migrated_template)
    host = await start_app(tmp_path_factory.mktemp("staging"), url, ENVIRONMENT="staging",
                           JWT_SIGNING_KEYS=OWN_KEYS, TRUSTED_PROXY_HOPS="1", RATE_LIMIT_LOGIN_PER_MINUTE="3")
    yield host
    await stop_app(host)
    _drop_database(pg_server_url, name)


async def test_a_token_forged_with_the_published_key_is_401_outside_local(staging_host):
    async with httpx.AsyncClient(base_url=staging_host.base_url, timeout=20) as http:
        _, victim, body = await new_account(http, "Victim")
        assert (await http.get("/api/teams", headers=victim)).status_code == 200
        now = int(time.time())
        claims = {"sub": body["user"]["id"], "cid": body["user"]["company_id"], "role": "admin",
                  "iss": "ghost-pirates", "iat": now, "exp": now + 600, "tv": 1, "auth_time": now}
        forged = jwt.encode(claims, DEV_SIGNING_SECRET, algorithm="HS256", headers={"kid": "dev-1"})
        assert_problem(await http.get("/api/teams", headers={"Authorization": f"Bearer {forged}"}), 401)
        resigned = jwt.encode(claims, DEV_SIGNING_SECRET, algorithm="HS256", headers={"kid": "prod-1"})
        assert_problem(await http.get("/api/teams", headers={"Authorization": f"Bearer {resigned}"}), 401)


async def test_outside_local_devhost_refuses_to_start_with_the_development_key(migrated_database_url, tmp_path):
    for keys in ("", json.dumps({"dev-1": DEV_SIGNING_SECRET})):
        with pytest.raises(AssertionError, match="JWT_SIGNING_KEYS") as caught:
            host = await start_app(tmp_path / uuid.uuid4().hex[:6], migrated_database_url, ENVIRONMENT="prod",
                                   JWT_SIGNING_KEYS=keys, TRUSTED_PROXY_HOPS="1")
            await stop_app(host)
        assert "exited" in str(caught.value) and DEV_SIGNING_SECRET not in str(caught.value)


# --- 3. tokens that outlive their user --------------------------------------------------------------


async def delete_user(host: AppHost, user_id: str) -> None:
    async with await psycopg.AsyncConnection.connect(host.database_url, autocommit=True) as conn:
        await conn.execute("DELETE FROM users WHERE id = %s", (uuid.UUID(user_id),))


async def test_a_deleted_users_token_is_401_on_writes_at_once_never_500(http, app_host):
    _, auth, body = await new_account(http)
    assert (await http.get("/api/teams", headers=auth)).status_code == 200  # in the session cache now
    await delete_user(app_host, body["user"]["id"])
    # A write reads the user row itself, whatever the cache says (this was a 500: foreign key)...
    assert_problem(await http.post("/api/teams", headers=auth, json={"goal": "orphan"}), 401)
    # ...and leaves the cache knowing, so reads are refused from then on too.
    assert_problem(await http.get("/api/teams", headers=auth), 401)
    assert_problem(await http.get("/api/auth/me", headers=auth), 401)


async def test_a_deleted_users_token_is_401_on_reads_once_the_short_cache_expires(limits_host):
    async with httpx.AsyncClient(base_url=limits_host.base_url, timeout=20) as http:
        _, auth, body = await new_account(http, "Gone")
        assert (await http.get("/api/teams", headers=auth)).status_code == 200
        await delete_user(limits_host, body["user"]["id"])
        await asyncio.sleep(1.2)  # AUTH_CACHE_SECONDS=1 on this host
        assert_problem(await http.get("/api/teams", headers=auth), 401)


async def test_logout_all_revokes_every_token_of_the_user_and_only_theirs(http):
    email, first, _ = await new_account(http)
    second = (await http.post("/api/auth/login", json={"email": email, "password": PASSWORD})).json()["token"]
    _, bystander, _ = await new_account(http)
    out = await http.post("/api/auth/logout-all", headers=first)
    assert out.status_code == 204
    for token in (first, {"Authorization": f"Bearer {second}"}):
        assert_problem(await http.get("/api/teams", headers=token), 401)
        assert_problem(await http.post("/api/auth/refresh", headers=token), 401)
    assert (await http.get("/api/teams", headers=bystander)).status_code == 200
    again = await http.post("/api/auth/login", json={"email": email, "password": PASSWORD})
    fresh = {"Authorization": f"Bearer {again.json()['token']}"}
    assert (await http.get("/api/teams", headers=fresh)).status_code == 200
    audit = (await http.get("/api/audit", headers=fresh, params={"event_type": "user.sessions_revoked"})).json()
    assert len(audit) == 1


async def test_changing_the_password_revokes_old_tokens_and_returns_a_new_one(http):
    email, auth, _ = await new_account(http)
    other_session = {"Authorization": "Bearer " + (await http.post(
        "/api/auth/login", json={"email": email, "password": PASSWORD})).json()["token"]}
    assert_problem(await http.post("/api/auth/password", headers=auth, json={
        "current_password": "not the password", "new_password": "a brand new passphrase"}), 403)
    weak = assert_problem(await http.post("/api/auth/password", headers=auth, json={
        "current_password": PASSWORD, "new_password": "Password123!"}), 422)
    assert weak["errors"][0]["loc"] == ["new_password"] and "Password123!" not in json.dumps(weak)
    changed = await http.post("/api/auth/password", headers=auth, json={
        "current_password": PASSWORD, "new_password": "a brand new passphrase"})
    assert changed.status_code == 200, changed.text
    assert (await http.get("/api/teams", headers={"Authorization": f"Bearer {changed.json()['token']}"})
            ).status_code == 200
    for old in (auth, other_session):
        assert_problem(await http.get("/api/teams", headers=old), 401)
    old_login = await http.post("/api/auth/login", json={"email": email, "password": PASSWORD})
    assert assert_problem(old_login, 401)["title"] == "Invalid credentials"
    new_login = await http.post("/api/auth/login", json={"email": email, "password": "a brand new passphrase"})
    assert new_login.status_code == 200


async def test_tokens_live_an_hour_and_refresh_renews_them(http):
    _, auth, body = await new_account(http)
    lifetime = datetime.fromisoformat(body["expires_at"]) - datetime.now(UTC)
    assert timedelta(minutes=58) < lifetime <= timedelta(minutes=60)
    await asyncio.sleep(1.1)  # token times have whole seconds
    renewed = await http.post("/api/auth/refresh", headers=auth)
    assert renewed.status_code == 200, renewed.text
    assert renewed.json()["expires_at"] > body["expires_at"]
    assert renewed.json()["user"] == body["user"]
    token = renewed.json()["token"]
    assert (await http.get("/api/teams", headers={"Authorization": f"Bearer {token}"})).status_code == 200
    claims = jwt.decode(token, options={"verify_signature": False})
    assert claims["auth_time"] == jwt.decode(auth["Authorization"][7:], options={"verify_signature": False})["iat"]


# --- 4. rate limits that trust the client -----------------------------------------------------------


@pytest.fixture(scope="module")
async def limits_host(pg_server_url, migrated_template, tmp_path_factory) -> AsyncIterator[AppHost]:
    """Login limit 3 per email (so 9 per address), CORS *, sessions renewable for ~2 s only, a 1 s
    session cache."""
    from tests.conftest import _create_database, _drop_database

    name = f"gp_e2e_lim_{uuid.uuid4().hex[:8]}"
    url = _create_database(pg_server_url, name, template=migrated_template)
    host = await start_app(tmp_path_factory.mktemp("limits"), url, RATE_LIMIT_LOGIN_PER_MINUTE="3",
                           CORS_ALLOWED_ORIGINS="*", SESSION_MAX_HOURS="0.0006", AUTH_CACHE_SECONDS="1")
    yield host
    await stop_app(host)
    _drop_database(pg_server_url, name)


async def test_rotating_x_forwarded_for_does_not_escape_the_address_limit(limits_host):
    await outside_a_window_edge()
    async with client_from(limits_host, "127.0.0.2") as http:
        codes = []
        for n in range(10):
            response = await http.post("/api/auth/login", json={"email": f"spray{n}@example.com", "password": "x"},
                                       headers={"X-Forwarded-For": f"203.0.113.{n}", "X-Client-IP": f"198.51.100.{n}"})
            codes.append(response.status_code)
        assert codes == [401] * 9 + [429]
        assert int(response.headers["retry-after"]) >= 1
    async with client_from(limits_host, "127.0.0.3") as elsewhere:
        # Another client is not locked out by the first one's failures.
        response = await elsewhere.post("/api/auth/login", json={"email": "spray0@example.com", "password": "x"})
        assert_problem(response, 401)


async def test_the_per_email_limit_slows_that_email_only(limits_host):
    await outside_a_window_edge()
    async with client_from(limits_host, "127.0.0.4") as http:
        email, _, _ = await new_account(http, "Target")
        bad = [await http.post("/api/auth/login", json={"email": email, "password": "guess-guess"})
               for _ in range(3)]
        assert [r.status_code for r in bad] == [401, 401, 401]
    async with client_from(limits_host, "127.0.0.5") as other:
        assert_problem(await other.post("/api/auth/login", json={"email": email, "password": PASSWORD}), 429)
        fine = await other.post("/api/auth/login", json={"email": "someone@example.com", "password": "nope-nope"})
        assert_problem(fine, 401)


async def test_registration_reveals_existing_emails_only_at_the_address_rate_limit(limits_host):
    await outside_a_window_edge()
    async with client_from(limits_host, "127.0.0.6") as http:
        email, _, _ = await new_account(http, "Existing")
        codes = []
        for n in range(3):
            response = await http.post("/api/auth/register", headers={"X-Forwarded-For": f"203.0.113.{n}"}, json={
                "company_name": "Probe", "email": email, "password": PASSWORD, "full_name": "P"})
            codes.append(response.status_code)
        assert codes == [409, 409, 429]  # 3 per address a minute, the first of them the real account


async def test_behind_one_trusted_proxy_the_entry_it_appended_is_the_key(staging_host):
    await outside_a_window_edge()
    async with httpx.AsyncClient(base_url=staging_host.base_url, timeout=20) as http:
        forged = [await http.post("/api/auth/login", json={"email": f"p{n}@example.com", "password": "x"},
                                  headers={"X-Forwarded-For": f"10.9.9.{n}, 203.0.113.77:5123"})
                  for n in range(10)]
        assert [r.status_code for r in forged] == [401] * 9 + [429]
        other = await http.post("/api/auth/login", json={"email": "q@example.com", "password": "x"},
                                headers={"X-Forwarded-For": "203.0.113.78:5000"})
        assert_problem(other, 401)


# --- 5. deeply nested JSON ------------------------------------------------------------------------


async def test_deeply_nested_json_is_400_on_every_body_route_and_logs_no_traceback(http, app_host, auth):
    deep = b'{"email": ' + b"[" * 100_000 + b"]" * 100_000 + b', "password": "x"}'
    just_too_deep = json.dumps({"goal": "x", "tools": _nest(40)}).encode()
    routes = [("/api/auth/login", {}), ("/api/auth/register", {}), ("/api/teams", auth),
              ("/api/auth/password", auth), ("/api/realtime/negotiate", auth)]
    for path, headers in routes:
        for body in (deep, just_too_deep):
            response = await http.post(path, headers={**headers, "Content-Type": "application/json"}, content=body)
            detail = assert_problem(response, 400)["detail"]
            assert "nests deeper than 32 levels" in detail
    ok = await http.post("/api/teams", headers=auth, json={"goal": "shallow is fine"})
    assert ok.status_code == 201
    log = app_host.process.log()
    assert "RecursionError" not in log and "Traceback" not in log


def _nest(levels: int) -> object:
    value: object = []
    for _ in range(levels):
        value = [value]
    return value


# --- 6. the lesser ones ---------------------------------------------------------------------------


@pytest.mark.parametrize("password", ["password123", "short-9ch", "Password123!", "qwertyuiop", "aaaaaaaaaaaa"])
async def test_registration_refuses_short_and_common_passwords(http, password):
    response = await http.post("/api/auth/register", json={
        "company_name": "Weak", "email": f"{uuid.uuid4().hex[:8]}@example.com", "password": password,
        "full_name": "W"})
    body = assert_problem(response, 422)
    assert body["errors"][0]["loc"] == ["password"] and password not in response.text


async def test_anonymous_health_shows_status_version_and_checks_only(http, auth):
    anonymous = (await http.get("/api/health")).json()
    assert set(anonymous) == {"status", "version", "checks"}
    assert "db_pool" not in json.dumps(anonymous)
    detailed = (await http.get("/api/health", headers=auth)).json()
    assert {"cache", "rate_limiter", "db_pool"} <= set(detailed["details"])
    assert_problem(await http.get("/api/health", headers={"Authorization": "Bearer forged"}), 401)


async def test_cors_star_never_echoes_an_origin_nor_allows_credentials(limits_host):
    async with httpx.AsyncClient(base_url=limits_host.base_url, timeout=20) as http:
        response = await http.get("/api/health", headers={"Origin": "https://evil.example"})
        preflight = await http.options("/api/teams", headers={"Origin": "https://evil.example",
                                                               "Access-Control-Request-Method": "POST"})
    for answer in (response, preflight):
        assert answer.headers["access-control-allow-origin"] == "*"
        assert "access-control-allow-credentials" not in answer.headers


async def test_sessions_cannot_be_renewed_past_their_maximum_age(limits_host):
    async with httpx.AsyncClient(base_url=limits_host.base_url, timeout=20) as http:
        _, auth, _ = await new_account(http, "Old")
        await asyncio.sleep(2.5)  # SESSION_MAX_HOURS=0.0006 is 2.16 s
        assert_problem(await http.post("/api/auth/refresh", headers=auth), 401)
        assert (await http.get("/api/teams", headers=auth)).status_code == 200  # the token itself still runs


async def test_dashboard_pages_get_hsts_over_https_and_a_csp_naming_the_pubsub_host(http, auth):
    plain = await http.get("/")
    assert "strict-transport-security" not in plain.headers
    secure = await http.get("/teams", headers={"X-Forwarded-Proto": "https"})
    assert secure.headers["strict-transport-security"].startswith("max-age=31536000")
    policy = plain.headers["content-security-policy"]
    csp = {part.split(" ", 1)[0]: part.split(" ", 1)[1] for part in policy.split("; ")}
    sources = csp["connect-src"].split()
    # Exactly this origin and the Web PubSub host that negotiation sends the page to.
    negotiated = urlsplit((await http.post("/api/realtime/negotiate", headers=auth, json={})).json()["url"])
    assert sources == ["'self'", f"{negotiated.scheme}://{negotiated.netloc}"]
