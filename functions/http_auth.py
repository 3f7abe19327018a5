"""Auth endpoints: register a company, log in, who am I."""

from __future__ import annotations

import azure.durable_functions as df

from functions.http_common import Reply, Request, api
from shared.domain.errors import RateLimited
from shared.domain.models import LoginRequest, RegisterRequest, TokenResponse, UserPublic

bp = df.Blueprint()


@api(bp, "POST", "/api/auth/register", summary="Register a company and its admin", tag="auth",
     body=RegisterRequest, response=TokenResponse, status=201, auth=False)
async def auth_register(request: Request, body: RegisterRequest) -> Reply:
    wait = await request.ctx.limiter.hit(f"reg:{request.client_address()}",
                                         limit=request.ctx.settings.RATE_LIMIT_LOGIN_PER_MINUTE)
    if wait:
        raise RateLimited("too many registrations from this address", retry_after=wait)
    user = await request.ctx.services.auth.register(body)
    issued = await request.ctx.tokens.issue(user)
    return Reply(TokenResponse(token=issued.token, expires_at=issued.expires_at, user=user), status=201)


@api(bp, "POST", "/api/auth/login", summary="Log in", tag="auth", body=LoginRequest, response=TokenResponse,
     auth=False)
async def auth_login(request: Request, body: LoginRequest) -> TokenResponse:
    limit = request.ctx.settings.RATE_LIMIT_LOGIN_PER_MINUTE
    for bucket in (f"login:e:{body.email.strip().lower()}", f"login:a:{request.client_address()}"):
        wait = await request.ctx.limiter.hit(bucket, limit=limit)
        if wait:
            raise RateLimited("too many login attempts; try again later", retry_after=wait)
    user = await request.ctx.services.auth.login(body.email, body.password)
    issued = await request.ctx.tokens.issue(user)
    return TokenResponse(token=issued.token, expires_at=issued.expires_at, user=user)


@api(bp, "GET", "/api/auth/me", summary="The caller's account", tag="auth", response=UserPublic)
async def auth_me(request: Request, _: None) -> UserPublic:
    return await request.ctx.services.auth.get_user(request.user.user_id, request.user.company_id)
