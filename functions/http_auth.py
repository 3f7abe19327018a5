"""Auth endpoints: register a company, log in, who am I, renew, log out everywhere, change password."""

from __future__ import annotations

import azure.durable_functions as df

from functions.http_common import Reply, Request, api
from shared.domain.errors import RateLimited
from shared.domain.models import LoginRequest, PasswordChange, RegisterRequest, TokenResponse, UserPublic

bp = df.Blueprint()


async def _limit(request: Request, bucket: str, limit: int, detail: str) -> None:
    wait = await request.ctx.limiter.hit(bucket, limit=limit)
    if wait:
        raise RateLimited(detail, retry_after=wait)


@api(bp, "POST", "/api/auth/register", summary="Register a company and its admin", tag="auth",
     body=RegisterRequest, response=TokenResponse, status=201, auth=False)
async def auth_register(request: Request, body: RegisterRequest) -> Reply:
    await _limit(request, f"reg:{request.client_address()}", request.ctx.settings.RATE_LIMIT_LOGIN_PER_MINUTE,
                 "too many registrations from this address")
    user = await request.ctx.services.auth.register(body)
    issued = await request.ctx.sessions.issue(user)
    return Reply(TokenResponse(token=issued.token, expires_at=issued.expires_at, user=user), status=201)


@api(bp, "POST", "/api/auth/login", summary="Log in", tag="auth", body=LoginRequest, response=TokenResponse,
     auth=False)
async def auth_login(request: Request, body: LoginRequest) -> TokenResponse:
    settings = request.ctx.settings
    # Per email: slows guessing one account's password, from anywhere, and only that account.
    await _limit(request, f"login:e:{body.email.strip().lower()}", settings.RATE_LIMIT_LOGIN_PER_MINUTE,
                 "too many login attempts for this account; try again later")
    # Per client address (the socket peer or what the trusted proxy saw): slows one client's spraying.
    await _limit(request, f"login:a:{request.client_address()}", settings.login_limit_per_address,
                 "too many login attempts from this address; try again later")
    user = await request.ctx.services.auth.login(body.email, body.password)
    issued = await request.ctx.sessions.issue(user)
    return TokenResponse(token=issued.token, expires_at=issued.expires_at, user=user)


@api(bp, "GET", "/api/auth/me", summary="The caller's account", tag="auth", response=UserPublic)
async def auth_me(request: Request, _: None) -> UserPublic:
    return await request.ctx.services.auth.get_user(request.user.user_id, request.user.company_id)


@api(bp, "POST", "/api/auth/refresh", summary="Renew the caller's token (same session, new expiry)", tag="auth",
     response=TokenResponse)
async def auth_refresh(request: Request, _: None) -> TokenResponse:
    user = await request.ctx.services.auth.get_user(request.user.user_id, request.user.company_id)
    issued = await request.ctx.sessions.renew(request.user, user)
    return TokenResponse(token=issued.token, expires_at=issued.expires_at, user=user)


@api(bp, "POST", "/api/auth/logout-all", summary="Log out everywhere: revoke every token of the caller",
     tag="auth", status=204)
async def auth_logout_all(request: Request, _: None) -> Reply:
    await request.ctx.sessions.revoke_all(request.user)
    return Reply(status=204)


@api(bp, "POST", "/api/auth/password", summary="Change the password; other sessions end, this one gets a new token",
     tag="auth", body=PasswordChange, response=TokenResponse)
async def auth_change_password(request: Request, body: PasswordChange) -> TokenResponse:
    principal = request.user
    await _limit(request, f"pw:{principal.user_id}", request.ctx.settings.RATE_LIMIT_LOGIN_PER_MINUTE,
                 "too many password changes; try again later")
    await request.ctx.services.auth.change_password(principal, body.current_password, body.new_password)
    request.ctx.sessions.forget(principal.user_id)
    user = await request.ctx.services.auth.get_user(principal.user_id, principal.company_id)
    issued = await request.ctx.sessions.issue(user)
    return TokenResponse(token=issued.token, expires_at=issued.expires_at, user=user)
