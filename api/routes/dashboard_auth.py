"""``/api/auth/*`` and ``/api/merchants``: dashboard login, logout, who am I, merchant list.

Login checks the failed-login limiter first (429 with ``Retry-After``), verifies the argon2id
hash off the event loop, and answers with a fresh session in an HttpOnly, SameSite=Lax cookie
(Secure in production) plus the session's CSRF token. The same 401 answers a wrong password
and an unknown email.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from api import passwords, users
from api.deps import CurrentSession, LoginLimiterDep, ServicesDep, SessionsDep
from api.errors import ApiError
from api.sessions import Session
from payflow.settings import Settings

router = APIRouter(prefix="/api", tags=["dashboard"])

ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"description": "Not logged in, or wrong email or password"},
    403: {"description": "Missing or wrong X-CSRF-Token on a cookie-authenticated change"},
    429: {"description": "Too many failed logins; see Retry-After"},
}


class LoginIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    email: Annotated[str, Field(min_length=3, max_length=320)]
    password: Annotated[str, Field(min_length=1, max_length=passwords.MAX_PASSWORD_LENGTH)]


class UserPublic(BaseModel):
    id: str
    email: str
    role: str
    merchant_id: str | None


class SessionPublic(BaseModel):
    user: UserPublic
    csrf_token: str
    """Send it as ``X-CSRF-Token`` on every POST/PUT/PATCH/DELETE made with the cookie."""
    expires_at: datetime
    merchant_id: str | None = None
    """The merchant this request acted for (the chosen one, for analysts and admins)."""


class MerchantPublic(BaseModel):
    id: str
    name: str
    default_currency: str


class MerchantList(BaseModel):
    data: list[MerchantPublic]


def cookie_options(settings: Settings) -> dict[str, Any]:
    """The session cookie's attributes: HttpOnly, SameSite=Lax, Secure in production."""
    return {"path": "/", "httponly": True, "samesite": "lax",
            "secure": settings.environment == "production"}


def _public(session: Session, merchant_id: str | None = None) -> SessionPublic:
    return SessionPublic(
        user=UserPublic(id=session.user_id, email=session.email, role=session.role,
                        merchant_id=session.merchant_id),
        csrf_token=session.csrf_token,
        expires_at=datetime.fromtimestamp(session.expires_at, UTC),
        merchant_id=merchant_id or session.merchant_id,
    )


@router.post("/auth/login", response_model=SessionPublic, responses=ERRORS)
async def login(body: LoginIn, request: Request, services: ServicesDep, sessions: SessionsDep,
                limiter: LoginLimiterDep) -> JSONResponse:
    """Log in with email and password; sets the session cookie (a new one every time)."""
    address = request.client.host if request.client else "unknown"
    retry_after = await limiter.retry_after(body.email, address)
    if retry_after is not None:
        raise ApiError(429, "too_many_login_attempts",
                       "Too many failed logins. Try again later.", type="rate_limit_error",
                       headers={"Retry-After": str(retry_after)})
    user = await _verified_user(services, body)
    if user is None:
        await limiter.record_failure(body.email, address)
        raise ApiError(401, "invalid_credentials", "Wrong email or password.",
                       type="authentication_error")
    await limiter.reset(body.email, address)
    cookie_name = services.settings.session_cookie_name
    token, session = await sessions.create(user, replacing=request.cookies.get(cookie_name))
    response = JSONResponse(_public(session).model_dump(mode="json"))
    response.set_cookie(cookie_name, token, max_age=sessions.ttl_seconds,
                        **cookie_options(services.settings))
    return response


async def _verified_user(services: ServicesDep, body: LoginIn) -> users.User | None:
    async with services.pool.connection() as conn:
        user = await users.find_by_email(conn, body.email)
    if user is None:
        await run_in_threadpool(passwords.burn_time, body.password)
        return None
    matches, needs_rehash = await run_in_threadpool(
        passwords.verify, user.password_hash, body.password
    )
    if not matches:
        return None
    new_hash = await run_in_threadpool(passwords.hash_password, body.password) if (
        needs_rehash and len(body.password) >= passwords.MIN_PASSWORD_LENGTH) else None
    async with services.pool.connection() as conn:
        await users.record_login(conn, user.id, new_hash)
    return user


@router.post("/auth/logout", responses=ERRORS)
async def logout(request: Request, session: CurrentSession, services: ServicesDep,
                 sessions: SessionsDep) -> JSONResponse:
    """End the session: its token stops working at once and the cookie is cleared."""
    cookie_name = services.settings.session_cookie_name
    await sessions.delete(request.cookies.get(cookie_name, ""))
    response = JSONResponse({"logged_out": True, "user_id": session.user_id})
    response.delete_cookie(cookie_name, **cookie_options(services.settings))
    return response


@router.get("/auth/me", response_model=SessionPublic, responses=ERRORS)
async def me(request: Request, session: CurrentSession) -> SessionPublic:
    """The logged-in user, the session's CSRF token and expiry, and the acting merchant."""
    return _public(session, getattr(request.state, "merchant_id", None))


@router.get("/merchants", response_model=MerchantList, responses=ERRORS)
async def list_merchants(
    request: Request, services: ServicesDep,
    limit: Annotated[int, Query(ge=1, le=1000)] = 200,
) -> MerchantList:
    """Merchants this caller may look at: all for analysts and admins, else its own."""
    session: Session | None = getattr(request.state, "session", None)
    async with services.pool.connection() as conn:
        if session is not None and session.role in users.SWITCHING_ROLES:
            rows = await users.list_merchants(conn, limit)
        else:
            own = getattr(request.state, "merchant_id", None) or ""
            found = await users.get_merchant(conn, own)
            rows = [found] if found else []
    return MerchantList(data=[MerchantPublic(**row) for row in rows])
