"""The status-to-failure table and retry-after parsing, without any HTTP."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from shared.agents.provider_errors import classify_http_error, error_details, parse_retry_after
from shared.domain.failures import FailureType


@pytest.mark.parametrize(
    ("status", "body", "expected"),
    [
        (401, {}, FailureType.AUTH_FAILED),
        (403, {}, FailureType.AUTH_FAILED),
        (429, {}, FailureType.RATE_LIMITED),
        (408, {}, FailureType.NETWORK_TIMEOUT),
        (504, {}, FailureType.NETWORK_TIMEOUT),
        (
            413,
            {"type": "error", "error": {"type": "request_too_large", "message": "too big"}},
            FailureType.CONTEXT_TOO_LONG,
        ),
        (400, {"error": {"code": "content_filter", "message": "filtered"}}, FailureType.CONTENT_REFUSED),
        (
            400,
            {"error": {"message": "blocked by the content management policy"}},
            FailureType.CONTENT_REFUSED,
        ),
        (400, {"error": {"message": "max_tokens: field required"}}, FailureType.UNKNOWN),
        (404, {"error": {"message": "model not found"}}, FailureType.UNKNOWN),
        (500, "Internal Server Error", FailureType.PROVIDER_UNAVAILABLE),
        (529, {}, FailureType.PROVIDER_UNAVAILABLE),
        (
            409,
            {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}},
            FailureType.PROVIDER_UNAVAILABLE,
        ),
    ],
)
def test_status_and_body_map_to_a_failure_type(status: int, body: object, expected: FailureType):
    assert classify_http_error(status, headers={}, body=body, provider="p").failure_type is expected


def test_error_details_read_both_api_shapes():
    assert error_details({"type": "error", "error": {"type": "overloaded_error", "message": "m"}}) == (
        "overloaded_error",
        "m",
    )
    assert error_details({"error": {"code": "rate_limit_exceeded", "type": "requests", "message": "m"}}) == (
        "rate_limit_exceeded",
        "m",
    )
    assert error_details(None) == ("", "")


def test_retry_after_prefers_milliseconds_then_seconds_then_an_http_date():
    now = datetime(2025, 1, 1, 12, 0, 0, tzinfo=UTC)
    assert parse_retry_after({"retry-after-ms": "1500", "retry-after": "9"}) == 1.5
    assert parse_retry_after({"retry-after": "2.5"}) == 2.5
    assert parse_retry_after({"retry-after": "Wed, 01 Jan 2025 12:00:30 GMT"}, now=now) == 30.0
    assert parse_retry_after({"retry-after": "Wed, 01 Jan 2025 11:00:00 GMT"}, now=now) == 0.0
    assert parse_retry_after({"retry-after": "soon"}) is None
    assert parse_retry_after({}) is None
