"""The API's ASGI application: ``create_app(settings)`` builds it; nothing connects at import.

``payflow api`` serves it with uvicorn (uvloop + httptools, no access log on the hot path).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from api.auth import ApiKeyAuth
from api.errors import install_error_handlers
from api.routes import health, payments
from api.services import Services
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
    app.add_middleware(ApiKeyAuth)
    return app
