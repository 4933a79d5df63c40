"""Authentication for ``/v1`` and ``/api``, as ASGI middleware so that it runs before the body
is read: a request without valid credentials gets 401 whatever its body holds.

Two kinds of credentials, one per kind of client:

- ``Authorization: Bearer sk_test_...`` (API clients). Keys are looked up by their prefix and
  compared by hash in constant time (``api.keys``). Found keys are cached in-process for
  ``CACHE_SECONDS`` to keep the hot path free of a database round trip; a deleted or expired
  key therefore stops working within that time.
- the dashboard's session cookie (``api.sessions``), when no Authorization header is sent. A
  cookie-authenticated POST/PUT/PATCH/DELETE must carry the session's ``X-CSRF-Token`` (403
  otherwise). ``merchant`` users act for their own merchant; ``analyst`` and ``admin`` users
  pick one with the ``X-Merchant-Id`` header, which is ignored for everyone else. (A header,
  not a query parameter: the routes' strict query validation stays untouched.)

On success the request's state holds ``merchant_id`` and, for sessions, ``session``.
"""

from __future__ import annotations

import json
import secrets
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from starlette.requests import cookie_parser
from starlette.types import ASGIApp, Receive, Scope, Send

from api import repository, users
from api.errors import error_body
from api.keys import key_matches, lookup_of
from api.repository import StoredKey
from api.sessions import Session

CACHE_SECONDS = 30.0
CACHE_MAX_ENTRIES = 10_000


PROTECTED_PREFIXES = ("/v1/", "/api/")
PUBLIC_PATHS = frozenset({"/api/auth/login"})
MERCHANTLESS_PREFIXES = ("/api/auth/", "/api/merchants", "/api/models")
"""Session routes that work before an analyst or admin has picked a merchant (``/api/models``
is about the platform, not a merchant)."""
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
DEFAULT_SESSION_COOKIE = "payflow_session"


@dataclass(frozen=True, slots=True)
class Rejection:
    """Why a request is refused, as the error object's status, type, code and message."""

    status: int
    type: str
    code: str
    message: str
    param: str | None = None


NOT_AUTHENTICATED = Rejection(
    401, "authentication_error", "invalid_api_key",
    "Provide a valid API key as 'Authorization: Bearer sk_test_...' or log in.",
)
BAD_CSRF = Rejection(
    403, "authentication_error", "csrf_token_invalid",
    "A state-changing request with the session cookie needs the session's X-CSRF-Token header.",
)
MERCHANT_REQUIRED = Rejection(
    400, "invalid_request_error", "merchant_required",
    "Choose a merchant with the X-Merchant-Id header.", "X-Merchant-Id",
)
UNKNOWN_MERCHANT = Rejection(
    404, "invalid_request_error", "resource_missing", "No such merchant.", "X-Merchant-Id",
)


class ApiKeyAuth:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self._cache: dict[str, tuple[float, StoredKey | None]] = {}
        self._merchants: dict[str, float] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] != "http"
            or not scope["path"].startswith(PROTECTED_PREFIXES)
            or scope["path"] in PUBLIC_PATHS
        ):
            await self.app(scope, receive, send)
            return
        headers = dict(scope["headers"])
        if b"authorization" in headers:
            merchant_id = await self._authenticate(scope)
            if merchant_id is None:
                await _reject(send, NOT_AUTHENTICATED)
                return
            scope.setdefault("state", {})["merchant_id"] = merchant_id
        else:
            rejection = await self._authenticate_session(scope, headers)
            if rejection is not None:
                await _reject(send, rejection)
                return
        await self.app(scope, receive, send)

    async def _authenticate_session(
        self, scope: Scope, headers: dict[bytes, bytes]
    ) -> Rejection | None:
        """Check the session cookie (and CSRF token); on success fill the request's state."""
        app_state: Any = scope["app"].state
        cookie_name = getattr(app_state, "session_cookie_name", DEFAULT_SESSION_COOKIE)
        token = cookie_parser(headers.get(b"cookie", b"").decode("latin-1")).get(cookie_name)
        store = getattr(app_state, "sessions", None)
        session = await store.load(token) if token and store is not None else None
        if session is None:
            return NOT_AUTHENTICATED
        if scope["method"] not in SAFE_METHODS:
            presented = headers.get(b"x-csrf-token", b"").decode("latin-1")
            if not secrets.compare_digest(presented, session.csrf_token):
                return BAD_CSRF
        merchant_id = session.merchant_id
        if session.role in users.SWITCHING_ROLES:
            chosen = headers.get(b"x-merchant-id", b"").decode("latin-1").strip() or None
            if chosen and chosen != merchant_id and not await self._merchant_exists(scope, chosen):
                return UNKNOWN_MERCHANT
            merchant_id = chosen or merchant_id
        if merchant_id is None and not scope["path"].startswith(MERCHANTLESS_PREFIXES):
            return MERCHANT_REQUIRED
        state = scope.setdefault("state", {})
        state["session"] = session
        if merchant_id is not None:
            state["merchant_id"] = merchant_id
        return None

    async def _merchant_exists(self, scope: Scope, merchant_id: str) -> bool:
        """Merchants are never deleted, so a found id is remembered for the process's life."""
        if merchant_id in self._merchants:
            return True
        if len(merchant_id) > 64:
            return False
        services: Any = scope["app"].state.services
        async with services.pool.connection() as conn:
            found = await users.merchant_exists(conn, merchant_id)
        if found:
            if len(self._merchants) >= CACHE_MAX_ENTRIES:
                self._merchants.clear()
            self._merchants[merchant_id] = time.monotonic()
        return found

    async def _authenticate(self, scope: Scope) -> str | None:
        header = dict(scope["headers"]).get(b"authorization", b"").decode("latin-1")
        scheme, _, key = header.partition(" ")
        if scheme.lower() != "bearer":
            return None
        lookup = lookup_of(key.strip())
        if lookup is None:
            return None
        stored = await self._find(scope, lookup)
        if stored is None or not key_matches(key.strip(), stored.key_hash):
            return None
        if stored.expires_at is not None and stored.expires_at <= datetime.now(UTC):
            return None
        return stored.merchant_id

    async def _find(self, scope: Scope, lookup: str) -> StoredKey | None:
        now = time.monotonic()
        cached = self._cache.get(lookup)
        if cached and now - cached[0] < CACHE_SECONDS:
            return cached[1]
        services: Any = scope["app"].state.services
        async with services.pool.connection() as conn:
            stored = await repository.find_key(conn, lookup)
        if len(self._cache) >= CACHE_MAX_ENTRIES:
            self._cache.clear()
        self._cache[lookup] = (now, stored)
        return stored


async def _reject(send: Send, rejection: Rejection) -> None:
    body = json.dumps(
        error_body(rejection.type, rejection.code, rejection.message, rejection.param)
    ).encode()
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
    ]
    if rejection.status == 401:
        headers.append((b"www-authenticate", b'Bearer realm="payflow"'))
    await send({"type": "http.response.start", "status": rejection.status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


__all__ = ["ApiKeyAuth", "Session"]
