"""Per-merchant rate limits for API-key requests: a token bucket in Redis, 429 past it.

Each merchant's bucket holds up to ``burst`` tokens and refills at ``rate`` per second
(defaults from the settings, overridable per merchant in ``merchant_limits``); a request takes
one token, and without one it is answered 429 with ``Retry-After``. The bucket lives in Redis so
that every API instance shares it; one Lua call per request keeps it atomic. If Redis cannot be
reached the request is let through: rate limiting protects capacity, it must not become the
outage.
"""

from __future__ import annotations

import json
import logging
import math
import time
from typing import Any

from redis.commands.core import AsyncScript
from redis.exceptions import RedisError
from starlette.types import ASGIApp, Receive, Scope, Send

from api.errors import error_body

log = logging.getLogger(__name__)
LIMITS_CACHE_SECONDS = 60.0

# KEYS[1] bucket; ARGV: rate per second, burst, now (seconds). Returns {allowed, wait seconds}.
TOKEN_BUCKET = """
local rate, burst, now = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local state = redis.call('HMGET', KEYS[1], 'tokens', 'at')
local tokens = tonumber(state[1]) or burst
local at = tonumber(state[2]) or now
tokens = math.min(burst, tokens + math.max(0, now - at) * rate)
local allowed = 0
local wait = 0
if tokens >= 1 then
  tokens = tokens - 1
  allowed = 1
else
  wait = (1 - tokens) / rate
end
redis.call('HSET', KEYS[1], 'tokens', tokens, 'at', now)
redis.call('EXPIRE', KEYS[1], math.ceil(burst / rate) + 1)
return {allowed, tostring(wait)}
"""


class RateLimit:
    """ASGI middleware after authentication: limits requests authenticated by API key."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self._limits: dict[str, tuple[float, tuple[float, int]]] = {}
        self._bucket: AsyncScript | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        state = scope.get("state") or {}
        merchant_id = state.get("merchant_id")
        if scope["type"] != "http" or merchant_id is None or "session" in state:
            await self.app(scope, receive, send)
            return
        wait = await self._take(scope, merchant_id)
        if wait is not None:
            await _too_many(send, wait)
            return
        await self.app(scope, receive, send)

    async def _take(self, scope: Scope, merchant_id: str) -> float | None:
        services: Any = scope["app"].state.services
        settings = services.settings
        rate, burst = await self._limits_for(services, merchant_id)
        key = f"payflow:{settings.topic_prefix}ratelimit:{merchant_id}"
        # EVALSHA: the script is not re-sent and re-hashed on every request.
        if self._bucket is None or self._bucket.registered_client is not services.redis:
            self._bucket = services.redis.register_script(TOKEN_BUCKET)
        try:
            allowed, wait = await self._bucket(keys=[key], args=[rate, burst, time.time()])
        except (OSError, RedisError) as error:
            log.warning("rate limiter unavailable, letting the request through: %s", error)
            return None
        return None if int(allowed) == 1 else float(wait)

    async def _limits_for(self, services: Any, merchant_id: str) -> tuple[float, int]:
        now = time.monotonic()
        cached = self._limits.get(merchant_id)
        if cached and now - cached[0] < LIMITS_CACHE_SECONDS:
            return cached[1]
        async with services.pool.connection() as conn:
            cursor = await conn.execute(
                "SELECT rate_per_second, burst FROM merchant_limits WHERE merchant_id = %s",
                (merchant_id,))
            row = await cursor.fetchone()
        settings = services.settings
        limits = (float(row[0]), int(row[1])) if row else (
            settings.rate_limit_per_second, settings.rate_limit_burst)
        if len(self._limits) > 10_000:
            self._limits.clear()
        self._limits[merchant_id] = (now, limits)
        return limits


async def _too_many(send: Send, wait_seconds: float) -> None:
    retry_after = max(1, math.ceil(wait_seconds))
    body = json.dumps(error_body("rate_limit_error", "rate_limited",
                                 "Too many requests for this API key; retry after "
                                 f"{retry_after} s.", None)).encode()
    await send({"type": "http.response.start", "status": 429, "headers": [
        (b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
        (b"retry-after", str(retry_after).encode())]})
    await send({"type": "http.response.body", "body": body})
