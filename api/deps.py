"""What routes need, as nouns: ``ServicesDep``, ``MerchantId``, ``IdempotencyKey``,
``CurrentSession`` (the dashboard user), ``StaffSession`` (an analyst's or admin's),
``SessionsDep`` and ``LoginLimiterDep``.

The providers are ``async def`` although they never await: FastAPI runs a plain ``def``
dependency in its thread pool, a thread hand-off per dependency per request."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Header, Request

from api.errors import ApiError
from api.services import Services
from api.sessions import LoginLimiter, Session, SessionStore
from api.users import SWITCHING_ROLES


async def get_services(request: Request) -> Services:
    services: Services = request.app.state.services
    return services


async def get_merchant_id(request: Request) -> str:
    merchant_id: str = request.state.merchant_id  # set by api.auth.ApiKeyAuth
    return merchant_id


async def get_session(request: Request) -> Session:
    """The dashboard session that authenticated this request (401 for API-key requests)."""
    session: Session | None = getattr(request.state, "session", None)  # set by api.auth
    if session is None:
        raise ApiError(401, "not_logged_in", "This needs a dashboard session: log in first.",
                       type="authentication_error")
    return session


async def get_staff_session(request: Request) -> Session:
    """An analyst's or admin's dashboard session: platform-internal data (the fraud model) is
    403 for merchant users and for API keys, which always act for one merchant."""
    session: Session | None = getattr(request.state, "session", None)  # set by api.auth
    if session is None or session.role not in SWITCHING_ROLES:
        raise ApiError(403, "staff_only",
                       "Only analysts and admins, logged in to the dashboard, may see this.")
    return session


async def get_session_store(request: Request) -> SessionStore:
    store: SessionStore = request.app.state.sessions
    return store


async def get_login_limiter(request: Request) -> LoginLimiter:
    limiter: LoginLimiter = request.app.state.login_limiter
    return limiter


ServicesDep = Annotated[Services, Depends(get_services)]
CurrentSession = Annotated[Session, Depends(get_session)]
StaffSession = Annotated[Session, Depends(get_staff_session)]
SessionsDep = Annotated[SessionStore, Depends(get_session_store)]
LoginLimiterDep = Annotated[LoginLimiter, Depends(get_login_limiter)]
MerchantId = Annotated[str, Depends(get_merchant_id)]
IdempotencyKey = Annotated[
    str | None,
    Header(
        alias="Idempotency-Key",
        min_length=1,
        max_length=255,
        description="Retries with the same key and body replay the first answer (kept 24 h).",
    ),
]
