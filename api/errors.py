"""The API's error object and the one place where failures become HTTP answers.

Every 4xx is ``{"error": {"type", "code", "message", "param"}}``; ``param`` names the field at
fault as a dotted path, or is null. Validation failures never reach a handler, so they never
change state or consume an idempotency key.
"""

from __future__ import annotations

import logging
from typing import Any

import psycopg
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from psycopg_pool import PoolTimeout
from redis.exceptions import ConnectionError as RedisConnectionError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

log = logging.getLogger(__name__)


class ApiError(Exception):
    """An expected failure with its HTTP status and error object."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        *,
        type: str = "invalid_request_error",
        param: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.type = type
        self.param = param
        self.headers = headers

    def body(self) -> dict[str, Any]:
        return error_body(self.type, self.code, self.message, self.param)

    def response(self) -> JSONResponse:
        return JSONResponse(self.body(), status_code=self.status, headers=self.headers)


def error_body(type: str, code: str, message: str, param: str | None) -> dict[str, Any]:
    return {"error": {"type": type, "code": code, "message": message, "param": param}}


def not_found(what: str, object_id: str) -> ApiError:
    return ApiError(404, "resource_missing", f"No such {what}: '{object_id}'", param="id")


def _param_of(location: tuple[Any, ...]) -> str | None:
    parts = [str(part) for part in location[1:] if not str(part).startswith("function-")]
    return ".".join(parts) or None


def _validation_response(error: RequestValidationError) -> JSONResponse:
    errors = error.errors()
    first = errors[0] if errors else {"type": "invalid", "msg": "invalid", "loc": ()}
    location = tuple(first.get("loc", ()))
    if first.get("type") == "json_invalid":
        body = error_body("invalid_request_error", "invalid_json",
                          "The request body is not valid JSON.", None)
        return JSONResponse(body, status_code=400)
    if first.get("type") == "missing" and location == ("body",):
        body = error_body("invalid_request_error", "missing_body",
                          "The request needs a JSON object body.", None)
        return JSONResponse(body, status_code=400)
    param = _param_of(location) if location and location[0] in {"body", "query", "path"} else None
    if location and location[0] == "header":
        param = str(location[-1])
    message = str(first.get("msg", "Invalid value"))
    if param:
        message = f"{message} ({param})"
    code = "parameter_missing" if first.get("type") == "missing" else (
        "parameter_unknown" if first.get("type") == "extra_forbidden" else "parameter_invalid"
    )
    return JSONResponse(error_body("invalid_request_error", code, message, param),
                        status_code=422 if location and location[0] == "body" else 400)


DEPENDENCY_ERRORS = (psycopg.OperationalError, PoolTimeout, RedisConnectionError)
"""PostgreSQL or Redis unreachable (or no pooled connection in time)."""


def dependency_down(error: Exception) -> JSONResponse:
    """PostgreSQL or Redis is unreachable: a temporary condition, not a bug — 503 and when to
    retry, never a 500; nothing was changed (the transaction did not commit)."""
    log.warning("dependency unavailable: %s", error)
    return JSONResponse(
        error_body("api_error", "service_unavailable",
                   "A dependency is temporarily unavailable; retry shortly.", None),
        status_code=503, headers={"Retry-After": "2"},
    )


class DependencyErrors:
    """ASGI middleware around the API's own middlewares (authentication's key look-up, the
    rate limit's merchant limits, the session store): the app's exception handlers see only
    what routes raise, so a database or Redis outage met in a middleware was a 500."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        started = False

        async def send_and_note(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, receive, send_and_note)
        except DEPENDENCY_ERRORS as error:
            if started or scope["type"] != "http":
                raise
            await dependency_down(error)(scope, receive, send)


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(ApiError)
    async def _api_error(_: Request, error: ApiError) -> JSONResponse:
        return error.response()

    @app.exception_handler(RequestValidationError)
    async def _invalid(_: Request, error: RequestValidationError) -> JSONResponse:
        return _validation_response(error)

    @app.exception_handler(StarletteHTTPException)
    async def _http(_: Request, error: StarletteHTTPException) -> JSONResponse:
        code = {404: "not_found", 405: "method_not_allowed"}.get(error.status_code, "http_error")
        return JSONResponse(
            error_body("invalid_request_error", code, str(error.detail), None),
            status_code=error.status_code,
            headers=getattr(error, "headers", None),
        )

    @app.exception_handler(psycopg.OperationalError)
    @app.exception_handler(PoolTimeout)
    @app.exception_handler(RedisConnectionError)
    async def _dependency_down(_: Request, error: Exception) -> JSONResponse:
        return dependency_down(error)

    @app.exception_handler(Exception)
    async def _unexpected(_: Request, error: Exception) -> JSONResponse:
        log.exception("unhandled error")
        return JSONResponse(
            error_body("api_error", "internal_error", "An internal error occurred.", None),
            status_code=500,
        )
