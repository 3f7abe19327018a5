"""The HTTP contract (API.md) through the real devhost: auth, teams, tasks, errors, headers."""

from __future__ import annotations

import uuid

import httpx
import pytest

from tests.e2e.conftest import register

pytestmark = pytest.mark.slow

PROBLEM = "application/problem+json"


def assert_problem(response: httpx.Response, status: int) -> dict:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith(PROBLEM)
    body = response.json()
    assert body["status"] == status and body["title"] and body["type"] == "about:blank"
    assert "Traceback" not in response.text and "SELECT" not in response.text
    return body


async def test_demo_login_me_and_request_id_echo(http, app_host):
    login = await http.post("/api/auth/login", json={"email": app_host.demo_email, "password": app_host.demo_password})
    assert login.status_code == 200
    token = login.json()["token"]
    me = await http.get("/api/auth/me", headers={"Authorization": f"Bearer {token}", "X-Request-Id": "req-123"})
    assert me.status_code == 200 and me.json()["email"] == app_host.demo_email
    assert me.headers["x-request-id"] == "req-123"
    assert me.headers["x-content-type-options"] == "nosniff"
    assert me.headers["referrer-policy"]


async def test_wrong_password_and_unknown_email_get_the_same_401(http, app_host):
    wrong = await http.post("/api/auth/login", json={"email": app_host.demo_email, "password": "nope-nope"})
    unknown = await http.post("/api/auth/login", json={"email": "ghost@example.com", "password": "nope-nope"})
    assert assert_problem(wrong, 401)["title"] == "Invalid credentials"
    assert assert_problem(unknown, 401) == assert_problem(wrong, 401)


async def test_missing_bad_and_expired_tokens_are_401(http):
    assert_problem(await http.get("/api/teams"), 401)
    assert_problem(await http.get("/api/teams", headers={"Authorization": "Bearer not-a-jwt"}), 401)
    assert_problem(await http.get("/api/teams", headers={"Authorization": "Basic abc"}), 401)


async def test_create_list_and_get_team(http, auth):
    created = await http.post("/api/teams", headers=auth, json={"goal": "Write a haiku", "budget_usd": 2.5})
    assert created.status_code == 201
    team = created.json()
    assert team["status"] == "pending" and team["goal"] == "Write a haiku"
    listed = await http.get("/api/teams", headers=auth)
    assert listed.status_code == 200 and isinstance(listed.json(), list)
    assert team["id"] in [t["id"] for t in listed.json()]
    detail = (await http.get(f"/api/teams/{team['id']}", headers=auth)).json()
    assert {m["role"] for m in detail["members"]} == {"manager", "worker"}
    assert detail["tasks"] == [] and detail["costs"]["calls"] == 0


async def test_team_list_pages_with_link_header_and_includes(http):
    auth = await register(http, "Pager")
    for i in range(5):
        await http.post("/api/teams", headers=auth, json={"goal": f"goal {i}", "workers": 1})
    first = await http.get("/api/teams?limit=2&include=members,tasks", headers=auth)
    assert [t["goal"] for t in first.json()] == ["goal 4", "goal 3"]
    assert first.json()[0]["members"] and first.json()[0]["tasks"] == []
    goals = [t["goal"] for t in first.json()]
    link = first.headers["link"]
    while link:
        url = link.split(";")[0].strip("<>")
        page = await http.get(url, headers=auth)
        goals += [t["goal"] for t in page.json()]
        link = page.headers.get("link", "")
    assert goals == [f"goal {i}" for i in range(4, -1, -1)]


async def test_other_companies_and_unknown_ids_are_404(http, auth):
    team = (await http.post("/api/teams", headers=auth, json={"goal": "secret"})).json()
    other = await register(http, "Other")
    assert_problem(await http.get(f"/api/teams/{team['id']}", headers=other), 404)
    assert_problem(await http.post(f"/api/teams/{team['id']}/cancel", headers=other), 404)
    assert_problem(await http.get(f"/api/teams/{uuid.uuid4()}", headers=auth), 404)
    assert_problem(await http.get("/api/teams/not-a-uuid", headers=auth), 404)
    assert_problem(await http.get(f"/api/tasks/{uuid.uuid4()}", headers=auth), 404)
    assert team["id"] not in [t["id"] for t in (await http.get("/api/teams", headers=other)).json()]


async def test_malformed_json_is_400_wrong_types_422_oversize_413(http, auth):
    assert_problem(await http.post("/api/teams", headers={**auth, "Content-Type": "application/json"},
                                   content=b"{not json"), 400)
    body = assert_problem(await http.post("/api/teams", headers=auth, json={"goal": 42, "workers": "many"}), 422)
    assert {tuple(e["loc"]) for e in body["errors"]} >= {("goal",), ("workers",)}
    assert_problem(await http.post("/api/teams", headers=auth, json={"goal": "x", "unexpected": 1}), 422)
    oversize = b'{"goal": "' + b"x" * (1024 * 1024 + 10) + b'"}'
    assert_problem(await http.post("/api/teams", headers=auth, content=oversize), 413)
    assert_problem(await http.get("/api/teams?limit=0", headers=auth), 400)
    assert_problem(await http.get("/api/teams?status=sleeping", headers=auth), 400)
    assert_problem(await http.get("/api/teams?cursor=%%%", headers=auth), 400)


async def test_illegal_transition_is_409(http, auth):
    team = (await http.post("/api/teams", headers=auth, json={"goal": "x"})).json()
    assert_problem(await http.post(f"/api/teams/{team['id']}/resume", headers=auth), 409)
    cancelled = await http.post(f"/api/teams/{team['id']}/cancel", headers=auth)
    assert cancelled.status_code == 202 and cancelled.json()["status"] == "cancelled"
    assert_problem(await http.post(f"/api/teams/{team['id']}/start", headers=auth), 409)


async def test_login_is_rate_limited_per_email_with_retry_after(tmp_path, migrated_database_url):
    from tests.e2e.conftest import start_app, stop_app

    host = await start_app(tmp_path, migrated_database_url, RATE_LIMIT_LOGIN_PER_MINUTE="3")
    try:
        async with httpx.AsyncClient(base_url=host.base_url, timeout=20) as http:
            codes = [(await http.post("/api/auth/login", json={"email": "x@example.com", "password": "bad-bad"}))
                     for _ in range(4)]
            assert [r.status_code for r in codes] == [401, 401, 401, 429]
            assert int(codes[-1].headers["retry-after"]) >= 1
            assert_problem(codes[-1], 429)
    finally:
        await stop_app(host)


async def test_health_reports_checks_and_cache_counters(http, auth):
    health = await http.get("/api/health", headers=auth)
    assert health.status_code == 200
    body = health.json()
    assert body["status"] in ("healthy", "degraded")
    assert body["checks"]["database"]["status"] == "ok"
    assert set(body["checks"]) == {"database", "redis", "pubsub"}
    assert {"hits", "misses", "hit_rate"} <= set(body["details"]["cache"])


async def test_repeated_reads_hit_the_cache_and_writes_invalidate_it(http):
    auth = await register(http, "Cachers")
    team = (await http.post("/api/teams", headers=auth, json={"goal": "cache me"})).json()
    before = (await http.get("/api/health", headers=auth)).json()["details"]["cache"]
    for _ in range(5):
        assert (await http.get(f"/api/teams/{team['id']}", headers=auth)).json()["status"] == "pending"
    after = (await http.get("/api/health", headers=auth)).json()["details"]["cache"]
    assert after["hits"] - before["hits"] >= 4
    await http.post(f"/api/teams/{team['id']}/cancel", headers=auth)
    assert (await http.get(f"/api/teams/{team['id']}", headers=auth)).json()["status"] == "cancelled"


async def test_openapi_describes_every_route(http):
    spec = (await http.get("/api/openapi.json")).json()
    assert spec["openapi"].startswith("3.1")
    for path in ["/api/auth/login", "/api/teams", "/api/teams/{team_id}", "/api/teams/{team_id}/start",
                 "/api/tasks", "/api/tasks/{task_id}/retry", "/api/escalations/{escalation_id}/resolve",
                 "/api/audit", "/api/health", "/api/teams/{team_id}/events"]:
        assert path in spec["paths"], path
    assert "TeamPublic" in spec["components"]["schemas"]


async def test_seed_compatible_read_mix_answers_200(http, app_host):
    token = (await http.post("/api/auth/login", json={"email": app_host.demo_email,
                                                      "password": app_host.demo_password})).json()["token"]
    auth = {"Authorization": f"Bearer {token}"}
    team = (await http.post("/api/teams", headers=auth, json={"goal": "seed"})).json()
    teams = (await http.get("/api/teams", headers=auth)).json()
    assert all("id" in t for t in teams)
    for url in [f"/api/teams/{team['id']}", f"/api/teams/{team['id']}/tasks", "/api/tasks?status=active&limit=50",
                "/api/audit?limit=100", "/api/teams?include=members,tasks"]:
        assert (await http.get(url, headers=auth)).status_code == 200, url


async def test_cors_preflight_and_headers_follow_the_allowed_origins_setting(tmp_path, migrated_database_url):
    from tests.e2e.conftest import start_app, stop_app

    host = await start_app(tmp_path, migrated_database_url, CORS_ALLOWED_ORIGINS="https://app.example.com")
    try:
        async with httpx.AsyncClient(base_url=host.base_url, timeout=20) as http:
            allowed = await http.options("/api/teams", headers={
                "Origin": "https://app.example.com", "Access-Control-Request-Method": "POST"})
            assert allowed.status_code == 204
            assert allowed.headers["access-control-allow-origin"] == "https://app.example.com"
            assert "POST" in allowed.headers["access-control-allow-methods"]
            denied = await http.options("/api/teams", headers={"Origin": "https://evil.example.com"})
            assert "access-control-allow-origin" not in denied.headers
            health = await http.get("/api/health", headers={"Origin": "https://app.example.com"})
            assert health.headers["access-control-allow-origin"] == "https://app.example.com"
    finally:
        await stop_app(host)
