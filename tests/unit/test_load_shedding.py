"""Load shedding refuses requests past the in-flight bound at once, and never health checks."""

from __future__ import annotations

import asyncio
from typing import Any

from api.shedding import AdaptiveLimit, LoadShedding


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


def test_a_slow_answer_cuts_the_bound_below_what_is_in_flight_once_per_round_trip() -> None:
    limit = AdaptiveLimit(target_seconds=0.5, floor=4, ceiling=256)
    limit.record(started=10.0, finished=11.0, in_flight=50)
    assert limit.limit == 40.0  # 0.8 x the 50 in flight, not 0.8 x the ceiling
    assert not limit.admits(40) and limit.admits(39)
    limit.record(started=10.1, finished=11.2, in_flight=45)  # admitted before the cut
    assert limit.limit == 40.0
    limit.record(started=11.5, finished=12.3, in_flight=30)  # admitted after it
    assert limit.limit == 24.0


def test_fast_answers_raise_the_bound_by_about_one_per_bound_of_answers_up_to_the_ceiling() -> None:
    limit = AdaptiveLimit(target_seconds=0.5, floor=4, ceiling=12, limit=10.0)
    for i in range(10):
        limit.record(started=float(i), finished=i + 0.1, in_flight=5)
    assert 10.9 < limit.limit < 11.0
    for i in range(100):
        limit.record(started=20.0 + i, finished=20.1 + i, in_flight=5)
    assert limit.limit == 12.0


def test_below_the_floor_nothing_is_shed_however_slow_the_answers() -> None:
    limit = AdaptiveLimit(target_seconds=0.5, floor=16, ceiling=256)
    for i in range(20):
        limit.record(started=float(i), finished=i + 5.0, in_flight=3)
    assert limit.limit == 16.0
    assert limit.admits(15) and not limit.admits(16)


async def test_the_middleware_sheds_past_the_adaptive_bound_once_answers_are_slow() -> None:
    clock = {"delay": 0.0}
    sent: list[dict[str, Any]] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        await asyncio.sleep(clock["delay"])
        await send({"type": "http.response.start", "status": 201, "headers": []})

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b""}

    # Target and delay far above the scheduling jitter of a loaded machine: the requests of
    # one gather are admitted together, before any of them has waited past the target.
    shedding = LoadShedding(app, max_in_flight=100, min_in_flight=2,
                            latency_target_seconds=0.2)
    http = {"type": "http", "path": "/v1/payments"}
    clock["delay"] = 0.4  # slower than the target
    await asyncio.gather(*(shedding(http, receive, send) for _ in range(10)))
    assert shedding.stats.limit == 8.0 and shedding.shed == 0
    await asyncio.gather(*(shedding(http, receive, send) for _ in range(10)))
    assert shedding.shed == 2 and shedding.in_flight == 0
    assert shedding.stats.limit == 6.4
    statuses = [m["status"] for m in sent if m["type"] == "http.response.start"]
    assert statuses.count(503) == 2 and statuses.count(201) == 18


def test_a_request_waiting_past_the_target_cuts_the_bound_before_any_slow_answer() -> None:
    limit = AdaptiveLimit(target_seconds=0.5, floor=4, ceiling=256)
    limit.waiting(oldest_started=10.0, now=10.4, in_flight=60)
    assert limit.limit == 256.0
    limit.waiting(oldest_started=10.0, now=10.6, in_flight=60)
    assert limit.limit == 48.0
    limit.record(started=10.0, finished=11.0, in_flight=55)  # the same request, answered
    assert limit.limit == 48.0
