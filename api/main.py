"""The API's ASGI application: ``create_app(settings)`` builds it; nothing connects at import.

``payflow api`` serves it with uvicorn (uvloop + httptools, no access log on the hot path).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from api.auth import ApiKeyAuth
from api.errors import DependencyErrors, install_error_handlers
from api.limits import RequestLimits
from api.ratelimit import RateLimit
from api.routes import (
    analytics,
    dashboard_auth,
    fraud_models,
    health,
    ledger_views,
    operations,
    payments,
)
from api.services import Services
from api.sessions import LoginLimiter, SessionStore
from api.shedding import LoadShedding, SheddingStats
from api.webhooks import dashboard_routes as webhook_dashboard_routes
from api.webhooks import routes as webhook_routes
from payflow.settings import Settings, get_settings


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()
    problems = settings.check_production()
    if problems:
        raise RuntimeError("refusing to start in production: " + "; ".join(problems))

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        services = Services.build(settings)
        await services.start()
        app.state.services = services
        _attach_sessions(app, services, settings)
        try:
            yield
        finally:
            await services.stop()

    app = FastAPI(
        title="payflow",
        version="1",
        summary="Card and bank-transfer payments: authorize, capture, void, refund.",
        lifespan=lifespan,
    )
    install_error_handlers(app)
    app.include_router(health.router)
    app.include_router(payments.router)
    app.include_router(ledger_views.router)
    app.include_router(operations.router)
    app.include_router(webhook_routes.router)
    app.include_router(webhook_dashboard_routes.router)
    app.include_router(dashboard_auth.router)
    app.include_router(analytics.router)
    app.include_router(fraud_models.router)
    # Outermost last: load shedding, authentication (401 before anything about the body),
    # the rate limit (it needs the merchant), then the body's size and type.
    app.add_middleware(RequestLimits)
    app.add_middleware(RateLimit)
    app.add_middleware(ApiKeyAuth)
    app.add_middleware(DependencyErrors)  # 503, not 500, for an outage met in the above
    app.state.shedding = SheddingStats()
    app.add_middleware(LoadShedding, max_in_flight=settings.api_max_in_flight,
                       min_in_flight=settings.api_min_in_flight,
                       latency_target_seconds=(settings.api_latency_target_seconds
                                               or settings.decision_budget_seconds),
                       stats=app.state.shedding)
    return app


def _attach_sessions(app: FastAPI, services: Services, settings: Settings) -> None:
    """Dashboard sessions and the failed-login limiter, on the API's Redis connection."""
    namespace = settings.topic_prefix  # isolates test runs sharing one Redis
    app.state.session_cookie_name = settings.session_cookie_name
    app.state.sessions = SessionStore(
        services.redis, settings.session_secret.get_secret_value().encode(),
        settings.session_ttl_seconds, namespace,
    )
    app.state.login_limiter = LoginLimiter(
        services.redis, per_email=settings.login_max_failures,
        per_address=settings.login_max_failures_per_ip,
        window_seconds=settings.login_failure_window_seconds, namespace=namespace,
    )
