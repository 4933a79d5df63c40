"""Dashboard sessions in Redis, and the failed-login limiter.

A session is a random 256-bit token held by the browser side in an HttpOnly cookie (the
Streamlit server, for the dashboard). Redis stores the session under an HMAC of the token keyed
with ``PAYFLOW_SESSION_SECRET``, so a copy of Redis holds no usable token. Each session expires
``session_ttl_seconds`` after login (Redis TTL); every login makes a new token and deletes the
one the client presented (rotation), and logout deletes it.

Each session carries its own CSRF token: a cookie-authenticated POST/PUT/PATCH/DELETE must echo
it in ``X-CSRF-Token`` (checked in ``api.auth``).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
import time
from dataclasses import asdict, dataclass

from redis.asyncio import Redis

from api.users import User

TOKEN_BYTES = 32


@dataclass(frozen=True, slots=True)
class Session:
    user_id: str
    email: str
    role: str
    merchant_id: str | None
    """The user's own merchant (None for analysts and admins without one)."""
    csrf_token: str
    expires_at: float
    """Unix time when the session ends."""


class SessionStore:
    def __init__(self, redis: Redis, secret: bytes, ttl_seconds: int, namespace: str = "") -> None:
        assert secret and ttl_seconds > 0
        self.redis = redis
        self.secret = secret
        self.ttl_seconds = ttl_seconds
        self.namespace = namespace

    def _key(self, token: str) -> str:
        digest = hmac.new(self.secret, token.encode(), hashlib.sha256).hexdigest()
        return f"{self.namespace}payflow:session:{digest}"

    async def create(self, user: User, replacing: str | None = None) -> tuple[str, Session]:
        """A fresh session for ``user``; the presented old token (if any) stops working."""
        if replacing:
            await self.delete(replacing)
        token = secrets.token_urlsafe(TOKEN_BYTES)
        session = Session(
            user_id=user.id, email=user.email, role=user.role, merchant_id=user.merchant_id,
            csrf_token=secrets.token_urlsafe(TOKEN_BYTES),
            expires_at=time.time() + self.ttl_seconds,
        )
        await self.redis.set(self._key(token), json.dumps(asdict(session)), ex=self.ttl_seconds)
        return token, session

    async def load(self, token: str) -> Session | None:
        if not token or len(token) > 128:
            return None
        raw = await self.redis.get(self._key(token))
        if raw is None:
            return None
        session = Session(**json.loads(raw))
        return session if session.expires_at > time.time() else None

    async def delete(self, token: str) -> None:
        if token and len(token) <= 128:
            await self.redis.delete(self._key(token))


class LoginLimiter:
    """Counts failed logins per email and per client address in fixed Redis windows."""

    def __init__(self, redis: Redis, *, per_email: int, per_address: int,
                 window_seconds: int, namespace: str = "") -> None:
        self.redis = redis
        self.limits = {"email": per_email, "address": per_address}
        self.window_seconds = window_seconds
        self.namespace = namespace

    def _keys(self, email: str, address: str) -> dict[str, str]:
        email_id = hashlib.sha256(email.strip().lower().encode()).hexdigest()[:32]
        base = f"{self.namespace}payflow:login-failures"
        return {"email": f"{base}:email:{email_id}", "address": f"{base}:address:{address}"}

    async def retry_after(self, email: str, address: str) -> int | None:
        """Seconds until another attempt is allowed, or None when allowed now."""
        keys = self._keys(email, address)
        async with self.redis.pipeline(transaction=False) as pipe:
            for key in keys.values():
                pipe.get(key)
                pipe.ttl(key)
            answers = await pipe.execute()
        for index, kind in enumerate(keys):
            count, ttl = answers[2 * index], answers[2 * index + 1]
            if count is not None and int(count) >= self.limits[kind]:
                return max(int(ttl), 1)
        return None

    async def record_failure(self, email: str, address: str) -> None:
        async with self.redis.pipeline(transaction=True) as pipe:
            for key in self._keys(email, address).values():
                pipe.incr(key)
                pipe.expire(key, self.window_seconds, nx=True)
            await pipe.execute()

    async def reset(self, email: str, address: str) -> None:
        """A successful login clears its email's count (the address keeps its own)."""
        await self.redis.delete(self._keys(email, address)["email"])
