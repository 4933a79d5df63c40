"""Authentication for ``/v1`` and ``/api``, as ASGI middleware so that it runs before the body
is read: a request without valid credentials gets 401 whatever its body holds.

Keys are looked up by their prefix and compared by hash in constant time (``api.keys``). Found
keys are cached in-process for ``CACHE_SECONDS`` to keep the hot path free of a database round
trip; a deleted or expired key therefore stops working within that time.
"""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime
from typing import Any

from starlette.types import ASGIApp, Receive, Scope, Send

from api import repository
from api.errors import error_body
from api.keys import key_matches, lookup_of
from api.repository import StoredKey

CACHE_SECONDS = 30.0
CACHE_MAX_ENTRIES = 10_000


PROTECTED_PREFIXES = ("/v1/", "/api/")
PUBLIC_PATHS = frozenset({"/api/auth/login"})


class ApiKeyAuth:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self._cache: dict[str, tuple[float, StoredKey | None]] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] != "http"
            or not scope["path"].startswith(PROTECTED_PREFIXES)
            or scope["path"] in PUBLIC_PATHS
        ):
            await self.app(scope, receive, send)
            return
        merchant_id = await self._authenticate(scope)
        if merchant_id is None:
            await _unauthorized(send)
            return
        scope.setdefault("state", {})["merchant_id"] = merchant_id
        await self.app(scope, receive, send)

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


async def _unauthorized(send: Send) -> None:
    body = json.dumps(
        error_body(
            "authentication_error",
            "invalid_api_key",
            "Provide a valid API key as 'Authorization: Bearer sk_test_...'.",
            None,
        )
    ).encode()
    await send({
        "type": "http.response.start",
        "status": 401,
        "headers": [
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode()),
            (b"www-authenticate", b'Bearer realm="payflow"'),
        ],
    })
    await send({"type": "http.response.body", "body": body})
