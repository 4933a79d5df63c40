"""Load shedding: past ``max_in_flight`` concurrent requests, answer 503 at once.

A request that cannot be served in time still costs every process it touches; taking it
anyway makes everyone slower until nobody is served in time (goodput collapse, measured on
this kind of machine). Refusing early, with ``Retry-After``, keeps the accepted requests within
their latency budget; the client's retry lands when there is room. Health checks are never
shed.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from starlette.types import ASGIApp, Receive, Scope, Send

from api.errors import error_body

UNSHED_PATHS = frozenset({"/healthz", "/readyz", "/metrics"})


@dataclass
class SheddingStats:
    """Shared with ``/metrics``."""

    in_flight: int = 0
    shed: int = 0


class LoadShedding:
    def __init__(self, app: ASGIApp, max_in_flight: int,
                 stats: SheddingStats | None = None) -> None:
        assert max_in_flight >= 1
        self.app = app
        self.max_in_flight = max_in_flight
        self.stats = stats or SheddingStats()

    @property
    def in_flight(self) -> int:
        return self.stats.in_flight

    @property
    def shed(self) -> int:
        return self.stats.shed

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in UNSHED_PATHS:
            await self.app(scope, receive, send)
            return
        if self.stats.in_flight >= self.max_in_flight:
            self.stats.shed += 1
            await _overloaded(send)
            return
        self.stats.in_flight += 1
        try:
            await self.app(scope, receive, send)
        finally:
            self.stats.in_flight -= 1


async def _overloaded(send: Send) -> None:
    body = json.dumps(error_body("api_error", "overloaded",
                                 "The API is at capacity; retry after a second.", None)).encode()
    await send({"type": "http.response.start", "status": 503, "headers": [
        (b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
        (b"retry-after", b"1")]})
    await send({"type": "http.response.body", "body": body})
