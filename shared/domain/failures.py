"""Failure classification and the policy that turns a failure into retry, escalate or fail.

The policy is pure: orchestrators call it during replay, so given the same inputs it must give the
same decision. Jitter therefore comes from a caller-supplied seed (e.g. the instance id), never from
a random source.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from enum import StrEnum


class FailureType(StrEnum):
    NETWORK_TIMEOUT = "network_timeout"
    RATE_LIMITED = "rate_limited"
    PROVIDER_UNAVAILABLE = "provider_unavailable"
    TOOL_UNAVAILABLE = "tool_unavailable"  #: a tool server did not answer (connect/read timeout, refused, 5xx)
    INVALID_OUTPUT = "invalid_output"
    CONTEXT_TOO_LONG = "context_too_long"
    AUTH_FAILED = "auth_failed"
    BUDGET_EXCEEDED = "budget_exceeded"
    CONTENT_REFUSED = "content_refused"
    TEAM_STOPPED = "team_stopped"  #: the team was cancelled or finished meanwhile
    DATABASE_UNAVAILABLE = "database_unavailable"  #: our own database is down or kept losing conflicts
    UNKNOWN = "unknown"


_RETRY_AFTER = re.compile(r"\[retry_after=([0-9]+(?:\.[0-9]+)?)\]")


class ClassifiedFailure(Exception):
    """An error that knows its failure type; raised by activities and agents.

    Its text carries what must survive the Durable boundary, where the host turns an activity's
    exception into a plain string (protocols/DURABLE_BACKEND.md §4): the `[type]` prefix and, when the
    provider asked for one, a `[retry_after=N]` suffix, read back by `parse_failure`.
    """

    def __init__(self, failure_type: FailureType, message: str, *, retry_after: float | None = None) -> None:
        suffix = f" [retry_after={retry_after:g}]" if retry_after is not None and retry_after >= 0 else ""
        super().__init__(f"[{failure_type.value}] {message}{suffix}")
        self.failure_type = failure_type
        self.message = message
        self.retry_after = retry_after


#: The Functions host's text for an invocation that ran past host.json's `functionTimeout`
#: (WebJobs `FunctionTimeoutException`: "Timeout value of 00:10:00 was exceeded by function:
#: Functions.name"); the Durable extension hands it to the orchestrator as the activity's failure.
HOST_FUNCTION_TIMEOUT = "was exceeded by function: "


def parse_failure_type(text: str) -> FailureType:
    """Recover the failure type from an error message that crossed the Durable boundary.

    The host turns activity exceptions into plain strings (protocols/DURABLE_BACKEND.md §4), so the
    `[type]` prefix written by `ClassifiedFailure` is the only thing that survives. A function
    timeout carries no prefix (the host, not our code, ended the call); it is a `network_timeout`:
    what hangs an activity past the timeout is a call that never answered, and that type's
    retries with backoff, then escalation, are what such a failure needs.
    """
    for failure_type in FailureType:
        if f"[{failure_type.value}]" in text:
            return failure_type
    if HOST_FUNCTION_TIMEOUT in text:
        return FailureType.NETWORK_TIMEOUT
    return FailureType.UNKNOWN


def parse_failure(text: str) -> tuple[FailureType, float | None]:
    """The failure type and the provider's `Retry-After` (seconds) from a failure's text."""
    found = _RETRY_AFTER.search(text)
    return parse_failure_type(text), float(found.group(1)) if found else None


@dataclass(frozen=True)
class ExponentialBackoff:
    base: float = 1.0  #: seconds before the first retry
    factor: float = 2.0
    max: float = 60.0
    jitter: float = 0.1  #: fraction of the delay added or removed, derived from the seed

    def delay(self, attempt: int, seed: str = "") -> float:
        """Delay before retry number `attempt` (1-based)."""
        raw = min(self.max, self.base * self.factor ** max(0, attempt - 1))
        if not self.jitter:
            return raw
        digest = hashlib.sha256(f"{seed}:{attempt}".encode()).digest()
        unit = int.from_bytes(digest[:8], "big") / 2**64  # deterministic in [0, 1)
        return max(0.0, min(self.max, raw * (1 + self.jitter * (2 * unit - 1))))


@dataclass(frozen=True)
class FixedDelay:
    seconds: float = 1.0

    def delay(self, attempt: int, seed: str = "") -> float:
        return self.seconds


RetryStrategy = ExponentialBackoff | FixedDelay


@dataclass(frozen=True)
class Retry:
    strategy: RetryStrategy
    delay: float


@dataclass(frozen=True)
class Escalate:
    reason: str


@dataclass(frozen=True)
class Fail:
    reason: str


Decision = Retry | Escalate | Fail


@dataclass(frozen=True)
class FailurePolicy:
    """How many attempts each failure type gets, and what happens after the last one."""

    max_attempts: dict[FailureType, int] = field(
        default_factory=lambda: {
            FailureType.NETWORK_TIMEOUT: 4,
            FailureType.RATE_LIMITED: 6,
            FailureType.PROVIDER_UNAVAILABLE: 4,
            FailureType.TOOL_UNAVAILABLE: 4,
            FailureType.INVALID_OUTPUT: 3,
            FailureType.DATABASE_UNAVAILABLE: 8,
            FailureType.UNKNOWN: 2,
        }
    )
    #: failure types that go straight to a human, no retry
    escalate_at_once: frozenset[FailureType] = frozenset(
        {FailureType.BUDGET_EXCEEDED, FailureType.CONTENT_REFUSED, FailureType.CONTEXT_TOO_LONG}
    )
    #: failure types that no retry or human can fix in this run
    fail_at_once: frozenset[FailureType] = frozenset({FailureType.AUTH_FAILED, FailureType.TEAM_STOPPED})
    backoff: ExponentialBackoff = ExponentialBackoff()
    rate_limit_backoff: ExponentialBackoff = ExponentialBackoff(base=5.0, factor=2.0, max=120.0)


class FailureHandler:
    """Maps (failure type, attempt, policy) to Retry, Escalate or Fail."""

    def __init__(self, policy: FailurePolicy | None = None) -> None:
        self.policy = policy or FailurePolicy()

    def decide(
        self, failure_type: FailureType, attempt: int, *, seed: str = "", retry_after: float | None = None
    ) -> Decision:
        """`attempt` is the number of the attempt that just failed (1 for the first)."""
        policy = self.policy
        if failure_type in policy.fail_at_once:
            return Fail(f"{failure_type.value}: not retryable")
        if failure_type in policy.escalate_at_once:
            return Escalate(f"{failure_type.value}: needs a human decision")
        allowed = policy.max_attempts.get(failure_type, 1)
        if attempt >= allowed:
            return Escalate(f"{failure_type.value}: still failing after {attempt} attempts")
        strategy = policy.rate_limit_backoff if failure_type is FailureType.RATE_LIMITED else policy.backoff
        delay = strategy.delay(attempt, seed)
        if retry_after is not None:
            delay = max(delay, min(retry_after, strategy.max))
        return Retry(strategy, delay)
