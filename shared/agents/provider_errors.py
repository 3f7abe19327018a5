"""Map an HTTP answer from an LLM API to a ClassifiedFailure (the table is in docs/agents.md).

Both SDKs raise errors of the same shape (status code, headers, decoded body), so the mapping lives
here once and each provider only unpacks its SDK's exception.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

from shared.domain.failures import ClassifiedFailure, FailureType

#: Phrases the APIs use when the prompt does not fit (Anthropic: "prompt is too long: N tokens > M
#: maximum"; OpenAI: code `context_length_exceeded`; vLLM/Ollama: "maximum context length").
_CONTEXT_MARKERS = (
    "context_length_exceeded",
    "prompt is too long",
    "maximum context length",
    "context length",
    "context window",
    "too many tokens",
)
#: Content-policy rejections (OpenAI/Azure OpenAI codes and wording).
_CONTENT_MARKERS = (
    "content_filter",
    "content_policy_violation",
    "responsible_ai_policy",
    "content management policy",
)
_OVERLOADED_MARKERS = ("overloaded_error", "overloaded", "api_error", "server_error")


def error_details(body: object) -> tuple[str, str]:
    """(error type or code, message) from an Anthropic or OpenAI error body; empty strings when absent."""
    if isinstance(body, Mapping):
        inner = body.get("error", body)
        if isinstance(inner, Mapping):
            kind = inner.get("code") or inner.get("type") or ""
            message = inner.get("message") or ""
            return str(kind), str(message)
        if isinstance(inner, str):
            return "", inner
    if isinstance(body, str):
        return "", body
    return "", ""


def parse_retry_after(headers: Mapping[str, str], *, now: datetime | None = None) -> float | None:
    """Seconds to wait from `retry-after-ms`, or `retry-after` as seconds or an HTTP date."""
    milliseconds = headers.get("retry-after-ms")
    if milliseconds is not None:
        try:
            return max(0.0, float(milliseconds) / 1000.0)
        except ValueError:
            pass
    value = headers.get("retry-after")
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())


def classify_http_error(
    status_code: int, *, headers: Mapping[str, str], body: object, provider: str
) -> ClassifiedFailure:
    """The failure type for an error status, looking into the body where the status is ambiguous."""
    kind, detail = error_details(body)
    haystack = f"{kind} {detail}".lower()
    message = f"{provider} answered {status_code}" + (f" ({kind}): {detail}" if kind else f": {detail}")
    message = message[:500]

    if status_code in (401, 403):
        return ClassifiedFailure(FailureType.AUTH_FAILED, message)
    if status_code == 429:
        return ClassifiedFailure(FailureType.RATE_LIMITED, message, retry_after=parse_retry_after(headers))
    if status_code in (408, 504):
        return ClassifiedFailure(FailureType.NETWORK_TIMEOUT, message)
    if status_code == 413 or any(marker in haystack for marker in _CONTEXT_MARKERS):
        return ClassifiedFailure(FailureType.CONTEXT_TOO_LONG, message)
    if any(marker in haystack for marker in _CONTENT_MARKERS):
        return ClassifiedFailure(FailureType.CONTENT_REFUSED, message)
    if status_code >= 500 or any(marker in kind.lower() for marker in _OVERLOADED_MARKERS):
        return ClassifiedFailure(FailureType.PROVIDER_UNAVAILABLE, message)
    return ClassifiedFailure(FailureType.UNKNOWN, message)


def network_failure(provider: str, exc: Exception, *, timed_out: bool) -> ClassifiedFailure:
    what = "did not answer in time" if timed_out else "could not be reached"
    return ClassifiedFailure(FailureType.NETWORK_TIMEOUT, f"{provider} {what}: {type(exc).__name__}")


def garbage_body_failure(provider: str, detail: str) -> ClassifiedFailure:
    """A 2xx whose HTTP body is not the API's JSON: the service (or a proxy) is broken, not the model."""
    return ClassifiedFailure(
        FailureType.PROVIDER_UNAVAILABLE, f"{provider} returned an unreadable body: {detail}"
    )
