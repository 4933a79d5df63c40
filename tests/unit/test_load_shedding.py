"""Load shedding refuses requests past the in-flight bound at once, and never health checks."""

from __future__ import annotations

import asyncio
from typing import Any

from api.shedding import LoadShedding


async def test_requests_past_the_bound_get_503_with_retry_after_and_health_checks_pass() -> None:
    release = asyncio.Event()
    sent: list[dict[str, Any]] = []

    async def slow_app(scope: Any, receive: Any, send: Any) -> None:
        await release.wait()
        await send({"type": "http.response.start", "status": 200, "headers": []})

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b""}

    shedding = LoadShedding(slow_app, max_in_flight=2)
    http = {"type": "http", "path": "/v1/payments"}
    held = [asyncio.create_task(shedding(http, receive, send)) for _ in range(2)]
    await asyncio.sleep(0)
    await shedding(http, receive, send)
    health = asyncio.create_task(shedding({"type": "http", "path": "/healthz"}, receive, send))
    await asyncio.sleep(0)
    assert sent[0]["status"] == 503
    assert (b"retry-after", b"1") in sent[0]["headers"]
    assert shedding.in_flight == 2 and shedding.shed == 1
    release.set()
    await asyncio.gather(*held, health)
    assert [m["status"] for m in sent if m["type"] == "http.response.start"] == [503, 200, 200,
                                                                                 200]
    assert shedding.in_flight == 0
