"""How the Function App serves the dashboard: page routes, assets, caching, compression, headers,
and the catch-all never answering HTML for an API path."""

from __future__ import annotations

import gzip
import re

import httpx
import pytest

pytestmark = pytest.mark.xdist_group("browser")


def asset_urls(html: str) -> list[str]:
    return re.findall(r'(?:href|src)="(/static/[^"]+)"', html)


@pytest.mark.parametrize("path", ["/", "/login", "/register", "/dashboard", "/teams", "/escalations",
                                  "/teams/01a225c9-24c6-7000-8a9e-bbd871cfeed2", "/tasks/anything/"])
async def test_page_routes_and_deep_links_answer_index_html(http: httpx.AsyncClient, path: str):
    response = await http.get(path)
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/html; charset=utf-8"
    assert '<main id="main"' in response.text
    assert response.headers["cache-control"] == "no-cache" and response.headers["etag"]


async def test_unknown_page_is_a_404_that_still_renders_the_app(http: httpx.AsyncClient):
    response = await http.get("/no/such/page")
    assert response.status_code == 404
    assert response.headers["content-type"].startswith("text/html")


@pytest.mark.parametrize("path", ["/api/nope", "/api", "/API/teams/x/y/z", "/api/teams/not-a-route/at/all"])
async def test_unknown_api_path_is_problem_json_never_html(http: httpx.AsyncClient, path: str):
    response = await http.get(path)
    assert response.status_code == 404
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json() == {"type": "about:blank", "title": "Not Found", "status": 404}


async def test_api_routes_still_win_over_the_catch_all(http: httpx.AsyncClient, account):
    assert (await http.get("/api/health/live")).json()["status"] == "alive"
    teams = await http.get("/api/teams", headers=account.headers)
    assert teams.status_code == 200 and teams.json() == []
    assert (await http.get("/api/teams")).status_code == 401


async def test_pages_carry_a_strict_content_security_policy(http: httpx.AsyncClient):
    response = await http.get("/teams")
    csp = response.headers["content-security-policy"]
    assert "default-src 'self'" in csp and "connect-src 'self' ws://" in csp
    assert " ws: " not in f"{csp} " and " wss: " not in f"{csp} "  # only the Web PubSub host (issue 12)
    assert "'unsafe-inline'" not in csp and "script-src 'self'" in csp
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["referrer-policy"] == "strict-origin-when-cross-origin"
    assert "<script>" not in response.text and " style=" not in response.text


async def test_versioned_assets_are_immutable_typed_and_gzipped(http: httpx.AsyncClient):
    html = (await http.get("/")).text
    urls = asset_urls(html)
    assert {u.rsplit("/", 1)[1] for u in urls} >= {"app.css", "app.js", "favicon.svg"}
    for url in urls:
        plain = await http.get(url, headers={"Accept-Encoding": "identity"})
        assert plain.status_code == 200 and "content-encoding" not in plain.headers
        assert plain.headers["cache-control"] == "public, max-age=31536000, immutable"
        expected_type = {"js": "text/javascript; charset=utf-8", "css": "text/css; charset=utf-8",
                         "svg": "image/svg+xml"}[url.rsplit(".", 1)[1]]
        assert plain.headers["content-type"] == expected_type
        if len(plain.content) >= 512:
            zipped = await http.get(url, headers={"Accept-Encoding": "gzip"})
            assert zipped.headers["content-encoding"] == "gzip" and zipped.headers["vary"] == "Accept-Encoding"
            assert zipped.headers["etag"] != plain.headers["etag"]
            assert zipped.content == plain.content  # httpx decodes; the bytes round-trip
            assert int(zipped.headers["content-length"]) < len(plain.content)


async def test_a_matching_etag_gets_304_without_a_body(http: httpx.AsyncClient):
    first = await http.get("/static/unversioned/app.js", headers={"Accept-Encoding": "gzip"})
    assert first.headers["cache-control"] == "no-cache", "an asset outside the current version is not immutable"
    again = await http.get("/static/unversioned/app.js",
                           headers={"Accept-Encoding": "gzip", "If-None-Match": first.headers["etag"]})
    assert again.status_code == 304 and again.content == b""


async def test_missing_asset_is_problem_json_404(http: httpx.AsyncClient):
    response = await http.get("/static/whatever/nope.js")
    assert response.status_code == 404
    assert response.headers["content-type"] == "application/problem+json"


async def test_gzip_body_is_a_valid_gzip_stream(dashboard_host):
    html = httpx.get(f"{dashboard_host.base_url}/").text
    url = next(u for u in asset_urls(html) if u.endswith("app.css"))
    raw = httpx.get(f"{dashboard_host.base_url}{url}", headers={"Accept-Encoding": "gzip"})
    with httpx.stream("GET", f"{dashboard_host.base_url}{url}", headers={"Accept-Encoding": "gzip"}) as stream:
        body = b"".join(stream.iter_raw())
    assert gzip.decompress(body) == raw.content
