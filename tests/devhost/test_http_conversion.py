"""HTTP triggers through devhost: requests and responses convert as the Functions host converts them."""

from __future__ import annotations

import asyncio
import logging

import pytest

from tests.devhost.conftest import SampleHost


async def test_async_function_sees_method_url_headers_query_route_and_body(sample_host: SampleHost) -> None:
    response = await sample_host.client.post(
        "/api/echo/42?b=2&a=1&a=3&empty=",
        content=b"raw \x00 body",
        headers=[("X-Trace", "one"), ("X-Trace", "two"), ("Content-Type", "application/octet-stream")],
    )
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    seen = response.json()
    assert seen["method"] == "POST"
    assert seen["url"] == f"{sample_host.base_url}/api/echo/42?b=2&a=1&a=3&empty="
    assert seen["headers"]["x-trace"] == "one,two"
    assert seen["headers"]["content-type"] == "application/octet-stream"
    assert seen["params"] == {"b": "2", "a": "1,3"}
    assert seen["route_params"] == {"id": "42"}
    assert seen["body"] == "raw \x00 body"
    assert seen["thread"] == "MainThread"


async def test_sync_function_runs_in_the_thread_pool_with_custom_status_and_headers(
    sample_host: SampleHost,
) -> None:
    response = await sample_host.client.post("/api/sync/Alice", content=b"")
    assert response.status_code == 201
    assert response.headers["x-custom"] == "yes"
    assert response.headers["location"] == "/api/sync/Alice"
    seen = response.json()
    assert seen["thread"].startswith("devhost-fn")
    assert seen["route_params"] == {"name": "Alice"}


async def test_json_body_round_trips(sample_host: SampleHost) -> None:
    payload = {"goal": "Build a scraper", "nested": [1, {"ü": None}]}
    response = await sample_host.client.post("/api/json", json=payload)
    assert response.json() == {"got": payload}


async def test_repeated_response_headers_are_all_sent(sample_host: SampleHost) -> None:
    response = await sample_host.client.get("/api/cookies")
    assert response.status_code == 202
    assert response.headers.get_list("set-cookie") == ["a=1; Path=/", "b=2; Path=/"]
    assert response.headers["content-type"] == "text/plain; charset=utf-8"
    assert response.text == "two cookies"


async def test_binary_body_and_mimetype_are_kept(sample_host: SampleHost) -> None:
    response = await sample_host.client.get("/api/bytes")
    assert response.headers["content-type"] == "application/octet-stream"
    assert response.content == bytes(range(256))
    assert response.headers["content-length"] == "256"


async def test_a_returned_string_is_a_plain_text_200(sample_host: SampleHost) -> None:
    response = await sample_host.client.get("/api/text")
    assert (response.status_code, response.text) == (200, "plain text é")
    assert response.headers["content-type"] == "text/plain; charset=utf-8"


async def test_returning_none_is_204_without_body(sample_host: SampleHost) -> None:
    response = await sample_host.client.delete("/api/nothing")
    assert (response.status_code, response.content) == (204, b"")


async def test_catch_all_optional_and_constrained_routes(sample_host: SampleHost) -> None:
    client = sample_host.client
    assert (await client.get("/api/files/a/b/c.txt")).json() == {"path": "a/b/c.txt"}
    assert (await client.get("/api/files")).json() == {}
    assert (await client.get("/api/optional")).json() == {}
    assert (await client.get("/api/optional/7")).json() == {"x": "7"}
    guid = "6f1e0c9a-1f0b-4a48-9a56-0d0d3e0c0c0c"
    assert (await client.get(f"/api/items/{guid}")).text == f"guid {guid}"
    assert (await client.get("/api/items/widget")).text == "name widget"
    assert (await client.get("/API/Items/widget/")).text == "name widget"


async def test_unknown_path_is_404_problem(sample_host: SampleHost) -> None:
    for path in ("/api/nope", "/api/sync/123", "/apiecho/1", "/echo/1"):
        response = await sample_host.client.get(path)
        assert response.status_code == 404, path
        assert response.headers["content-type"] == "application/problem+json"
        assert response.json() == {"type": "about:blank", "title": "Not Found", "status": 404}


async def test_known_route_with_wrong_method_is_405_with_allow(sample_host: SampleHost) -> None:
    response = await sample_host.client.delete("/api/echo/1")
    assert response.status_code == 405
    assert response.headers["allow"] == "GET, POST, PUT"
    assert response.json()["status"] == 405


async def test_function_without_methods_accepts_any_and_gets_context(sample_host: SampleHost) -> None:
    first = (await sample_host.client.patch("/api/context")).json()
    second = (await sample_host.client.get("/api/context")).json()
    assert first["function_name"] == second["function_name"] == "renamed"
    assert first["invocation_id"] != second["invocation_id"]


@pytest.mark.parametrize("path", ["/api/boom", "/api/sync-boom"])
async def test_raising_function_gives_500_problem_without_internals(
    sample_host: SampleHost, path: str, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.ERROR, logger="devhost.http"):
        response = await sample_host.client.get(path)
    assert response.status_code == 500
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json() == {"type": "about:blank", "title": "Internal Server Error", "status": 500}
    assert "secret" not in response.text and "Traceback" not in response.text
    assert any("secret internals" in (r.exc_text or "") for r in caplog.records)


async def test_concurrent_slow_requests_run_in_parallel(sample_host: SampleHost) -> None:
    loop = asyncio.get_running_loop()
    started = loop.time()
    responses = await asyncio.gather(*(sample_host.client.get("/api/slow?seconds=0.3") for _ in range(5)))
    assert [r.text for r in responses] == ["done"] * 5
    assert loop.time() - started < 1.2
