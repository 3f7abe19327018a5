"""Domain errors: one type per meaning, mapped to problem+json once at the HTTP edge.

    DomainError
    ├── NotFound          404 (also: belongs to another company)
    ├── Conflict          409 (illegal transition, lost race, stale version, duplicate)
    │   └── IllegalTransition
    ├── Forbidden         403
    ├── Unauthorized      401
    ├── Invalid           422
    ├── RateLimited       429 (carries retry_after seconds)
    └── DependencyDown    503
"""

from __future__ import annotations

from typing import Any


class DomainError(Exception):
    status = 400
    title = "Bad Request"

    def __init__(self, detail: str = "", *, errors: list[dict[str, Any]] | None = None) -> None:
        super().__init__(detail or self.title)
        self.detail = detail
        self.errors = errors or []


class NotFound(DomainError):
    status = 404
    title = "Not Found"


class Conflict(DomainError):
    status = 409
    title = "Conflict"


class IllegalTransition(Conflict):
    def __init__(self, entity: str, current: str, target: str) -> None:
        super().__init__(f"{entity} cannot go from {current!r} to {target!r}")
        self.entity = entity
        self.current = current
        self.target = target

    def with_detail(self, detail: str) -> IllegalTransition:
        self.detail = detail
        self.args = (detail,)
        return self


class Forbidden(DomainError):
    status = 403
    title = "Forbidden"


class Unauthorized(DomainError):
    status = 401
    title = "Unauthorized"


class Invalid(DomainError):
    status = 422
    title = "Unprocessable Content"


class RateLimited(DomainError):
    status = 429
    title = "Too Many Requests"

    def __init__(self, detail: str = "", *, retry_after: int = 1) -> None:
        super().__init__(detail)
        self.retry_after = retry_after


class DependencyDown(DomainError):
    status = 503
    title = "Service Unavailable"
