"""Bounded fuzzing of our own OpenAPI description: no 5xx, and every error is problem+json."""

from __future__ import annotations

import httpx
import pytest
import requests
import schemathesis
import schemathesis.specs.openapi._hypothesis
from hypothesis import HealthCheck, given, settings

# `schemathesis.specs.openapi._hypothesis` is imported (and assertion-rewritten) at collection, not
# in the middle of a test: CPython 3.11.7's ast.parse can fail with "AST constructor recursion depth
# mismatch" when a finalizer runs during it (gh-106905, fixed in 3.11.8), and a test's leftovers are
# garbage-collected at arbitrary moments.

pytestmark = pytest.mark.slow

EXAMPLES_PER_OPERATION = 8


@pytest.fixture
async def token(http: httpx.AsyncClient, app_host) -> str:
    login = await http.post("/api/auth/login", json={"email": app_host.demo_email, "password": app_host.demo_password})
    return str(login.json()["token"])


async def test_fuzzed_requests_never_get_a_5xx_and_errors_are_problem_json(app_host, token):
    schema = schemathesis.openapi.from_url(f"{app_host.base_url}/api/openapi.json")
    session = requests.Session()
    failures: list[str] = []
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 20

    for operation in operations:
        @settings(max_examples=EXAMPLES_PER_OPERATION, deadline=None, database=None, derandomize=True,
                  suppress_health_check=list(HealthCheck))
        @given(case=operation.as_strategy())
        def exercise(case) -> None:
            response = case.call(base_url=app_host.base_url, session=session,
                                 headers={"Authorization": f"Bearer {token}"}, timeout=10)
            label = f"{case.method} {case.formatted_path} -> {response.status_code}"
            if response.status_code >= 500:
                failures.append(f"{label}: {response.text[:200]}")
            content_type = response.headers.get("content-type", [""])
            content_type = content_type[0] if isinstance(content_type, list) else content_type
            if 400 <= response.status_code < 500 and not content_type.startswith("application/problem+json"):
                failures.append(f"{label}: not problem+json")

        exercise()
    assert failures == []
