"""HTTP plumbing shared by every API function: parsing, auth, errors as problem+json, headers.

Each endpoint is declared once with `api(...)`: that registers the Azure Function on its blueprint
and records the route (method, path, body and response models) for `GET /api/openapi.json`, so the
OpenAPI description cannot drift from the code.
"""

from __future__ import annotations

import json
import logging
import re
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

import azure.durable_functions as df
import azure.functions as func
from pydantic import BaseModel, ConfigDict, TypeAdapter, ValidationError, model_validator

from shared.domain.errors import DomainError, Invalid, RateLimited
from shared.domain.models import Principal
from shared.json_limits import JsonTooDeep, loads_bounded
from shared.runtime import AppContext, get_context
from shared.security import PEER_HEADER, bearer_token, client_address
from shared.telemetry import bind_log_context

log = logging.getLogger("ghost_pirates.http")

MAX_BODY_BYTES = 1024 * 1024
_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")

SECURITY_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "strict-origin-when-cross-origin",
    "X-Frame-Options": "DENY",
    "Cache-Control": "no-store",
}


class BadRequest(DomainError):
    status = 400
    title = "Bad Request"


class PayloadTooLarge(DomainError):
    status = 413
    title = "Payload Too Large"


class QueryParams(BaseModel):
    """Query strings: unknown parameters are ignored (cache busters), NUL characters refused."""

    model_config = ConfigDict(extra="ignore")

    @model_validator(mode="before")
    @classmethod
    def _no_nul_characters(cls, data: Any) -> Any:
        if isinstance(data, dict) and any("\x00" in str(v) for v in data.values()):
            raise ValueError("query parameters must not contain NUL (U+0000) characters")
        return data


@dataclass(frozen=True)
class RouteSpec:
    method: str
    path: str
    name: str
    summary: str
    tag: str
    body: type[BaseModel] | None
    response: Any
    status: int
    auth: bool
    query: type[BaseModel] | None
    path_params: tuple[str, ...]


ROUTES: list[RouteSpec] = []


@dataclass
class Request:
    """What a handler sees: the raw request, the caller, and the app context."""

    raw: func.HttpRequest
    ctx: AppContext
    request_id: str
    principal: Principal | None = None
    client: Any = None
    extra_headers: dict[str, str] = field(default_factory=dict)

    @property
    def user(self) -> Principal:
        assert self.principal is not None, "route declared auth=False"
        return self.principal

    def route_uuid(self, name: str) -> uuid.UUID:
        try:
            return uuid.UUID(self.raw.route_params.get(name, ""))
        except ValueError:
            # An id that cannot exist is simply not found (never leak why).
            from shared.domain.errors import NotFound

            raise NotFound(f"no such {name.removesuffix('_id') or 'resource'}") from None

    def client_address(self) -> str:
        """The caller's address for rate limits: the socket peer, or what a trusted proxy appended."""
        return client_address(self.raw.headers.get("x-forwarded-for"), self.raw.headers.get(PEER_HEADER),
                              trusted_hops=self.ctx.settings.TRUSTED_PROXY_HOPS)


def next_link(request: Request, path: str, cursor: str) -> dict[str, str]:
    """The `Link: <...>; rel="next"` header of a keyset page."""
    params = {k: v for k, v in request.raw.params.items() if k != "cursor"} | {"cursor": cursor}
    return {"Link": f'<{path}?{urlencode(params)}>; rel="next"'}


class Reply:
    """A handler's result: a body (model, list, dict) with a status and extra headers."""

    def __init__(self, body: Any = None, *, status: int = 200, headers: dict[str, str] | None = None,
                 raw_json: bytes | None = None) -> None:
        self.body = body
        self.status = status
        self.headers = headers or {}
        self.raw_json = raw_json


_ANY = TypeAdapter(Any)
_RESPONSE_ADAPTERS: dict[str, TypeAdapter[Any]] = {}


def to_json(body: Any, response: Any = None) -> bytes:
    """JSON of a handler's result; with the route's declared `response` type, exactly that shape
    (a service's richer record, e.g. `TaskRecord`, answers with only the public fields)."""
    if response is not None:
        key = repr(response)
        adapter = _RESPONSE_ADAPTERS.get(key)
        if adapter is None:
            adapter = _RESPONSE_ADAPTERS[key] = TypeAdapter(response)
        return adapter.dump_json(body)
    if isinstance(body, BaseModel):
        return body.model_dump_json().encode()
    return _ANY.dump_json(body)


def problem(status: int, title: str, detail: str = "", *, errors: list[dict[str, Any]] | None = None,
            request_id: str = "", headers: dict[str, str] | None = None) -> func.HttpResponse:
    body: dict[str, Any] = {"type": "about:blank", "title": title, "status": status}
    if detail:
        body["detail"] = detail
    if errors:
        body["errors"] = errors
    out = {**SECURITY_HEADERS, **(headers or {}), "X-Request-Id": request_id}
    return func.HttpResponse(json.dumps(body), status_code=status, headers=out,
                             mimetype="application/problem+json", charset="utf-8")


def _pydantic_errors(exc: ValidationError) -> list[dict[str, Any]]:
    return [{"loc": list(e["loc"]), "msg": e["msg"]} for e in exc.errors(include_url=False, include_input=False)]


def parse_body(raw: func.HttpRequest, model: type[BaseModel]) -> BaseModel:
    data = raw.get_body() or b""
    if len(data) > MAX_BODY_BYTES:
        raise PayloadTooLarge(f"the body is larger than {MAX_BODY_BYTES} bytes")
    if not data.strip():
        data = b"{}"
    try:
        payload = loads_bounded(data)
    except JsonTooDeep as exc:
        raise BadRequest(f"the body is not accepted: {exc}") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise BadRequest("the body is not valid JSON") from exc
    try:
        return model.model_validate(payload)
    except ValidationError as exc:
        raise Invalid("the body is not valid", errors=_pydantic_errors(exc)) from exc


def parse_query(raw: func.HttpRequest, model: type[BaseModel]) -> BaseModel:
    try:
        return model.model_validate(dict(raw.params))
    except ValidationError as exc:
        raise BadRequest("invalid query parameter", errors=_pydantic_errors(exc)) from exc


def cors_headers(ctx: AppContext | None, origin: str | None) -> dict[str, str]:
    """CORS answer headers for `origin`. The API authenticates with a bearer header, never cookies,
    so no answer allows credentials; `*` answers `*` and never echoes the caller's origin."""
    if not origin or ctx is None:
        return {}
    allowed = ctx.settings.cors_origins
    exposed = {"Access-Control-Expose-Headers": "Link, X-Request-Id, Retry-After"}
    if origin in allowed:
        return {"Access-Control-Allow-Origin": origin, "Vary": "Origin", **exposed}
    if "*" in allowed:
        return {"Access-Control-Allow-Origin": "*", **exposed}
    return {}


#: Sent on every response over HTTPS (API and dashboard): browsers then refuse plain HTTP for a year.
HSTS = "max-age=31536000; includeSubDomains"


def served_over_https(raw: func.HttpRequest) -> bool:
    """HTTPS at the client: the URL, or the front end's X-Forwarded-Proto (a client forging it only
    gets an HSTS header over plain HTTP, which browsers ignore, RFC 6797 §8.1)."""
    return raw.url.startswith("https://") or str(raw.headers.get("x-forwarded-proto", "")) == "https"


Handler = Callable[[Request, Any], Awaitable[Reply | BaseModel | Sequence[Any] | dict[str, Any] | None]]


async def run(raw: func.HttpRequest, spec: RouteSpec, handler: Handler, client: Any = None) -> func.HttpResponse:
    given = raw.headers.get("x-request-id", "")
    request_id = given if _REQUEST_ID.match(given) else uuid.uuid4().hex
    with bind_log_context(request_id=request_id):
        return await _run(raw, spec, handler, client, request_id)


async def _run(raw: func.HttpRequest, spec: RouteSpec, handler: Handler, client: Any,
               request_id: str) -> func.HttpResponse:
    ctx: AppContext | None = None
    extra: dict[str, str] = {}
    try:
        ctx = await get_context()
        extra = cors_headers(ctx, raw.headers.get("origin"))
        if served_over_https(raw):
            extra["Strict-Transport-Security"] = HSTS
        request = Request(raw=raw, ctx=ctx, request_id=request_id, client=client)
        if spec.auth:
            # Writes read the user row itself; reads may trust the short session cache.
            request.principal = await ctx.sessions.authenticate(bearer_token(raw.headers.get("authorization")),
                                                                fresh=spec.method != "GET")
            if spec.method != "GET":
                wait = await ctx.limiter.hit(f"w:{request.principal.user_id}",
                                             limit=ctx.settings.RATE_LIMIT_WRITES_PER_MINUTE)
                if wait:
                    raise RateLimited("too many writes; slow down", retry_after=wait)
        args: Any = None
        if spec.body is not None:
            args = parse_body(raw, spec.body)
        elif spec.query is not None:
            args = parse_query(raw, spec.query)
        result = await handler(request, args)
        reply = result if isinstance(result, Reply) else Reply(result, status=spec.status)
        headers = {**SECURITY_HEADERS, **extra, **request.extra_headers, **reply.headers, "X-Request-Id": request_id}
        if reply.body is None and reply.raw_json is None:
            return func.HttpResponse(status_code=reply.status, headers=headers)
        declared = spec.response if reply.status == spec.status else None
        body = reply.raw_json if reply.raw_json is not None else to_json(reply.body, declared)
        return func.HttpResponse(body, status_code=reply.status, headers=headers, mimetype="application/json",
                                 charset="utf-8")
    except DomainError as exc:
        headers = dict(extra)
        if isinstance(exc, RateLimited):
            headers["Retry-After"] = str(exc.retry_after)
        if exc.status == 401:
            headers["WWW-Authenticate"] = 'Bearer realm="ghost-pirates"'
        return problem(exc.status, exc.title, exc.detail, errors=exc.errors, request_id=request_id, headers=headers)
    except Exception:
        log.exception("unhandled error in %s %s", spec.method, spec.path, extra={"request_id": request_id})
        return problem(500, "Internal Server Error", "an unexpected error occurred; quote the request id",
                       request_id=request_id, headers=extra)


def api(
    bp: df.Blueprint,
    method: str,
    path: str,
    *,
    summary: str,
    tag: str,
    body: type[BaseModel] | None = None,
    query: type[BaseModel] | None = None,
    response: Any = None,
    status: int = 200,
    auth: bool = True,
    durable_client: bool = False,
) -> Callable[[Handler], Handler]:
    """Declare an endpoint: registers the function and records the route for OpenAPI."""

    def register(handler: Handler) -> Handler:
        name = handler.__name__
        spec = RouteSpec(method, path, name, summary, tag, body, response, status, auth, query,
                         tuple(re.findall(r"{(\w+)", path)))
        ROUTES.append(spec)
        route = path.removeprefix("/")
        if durable_client:
            async def with_client(req: func.HttpRequest, client: df.DurableOrchestrationClient) -> func.HttpResponse:
                return await run(req, spec, handler, client)

            with_client.__name__ = name
            bp.function_name(name)(bp.route(route=route, methods=[method])(bp.durable_client_input(
                client_name="client")(with_client)))
        else:
            async def plain(req: func.HttpRequest) -> func.HttpResponse:
                return await run(req, spec, handler)

            plain.__name__ = name
            bp.function_name(name)(bp.route(route=route, methods=[method])(plain))
        return handler

    return register
