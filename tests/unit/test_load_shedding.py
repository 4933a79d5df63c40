"""Load shedding refuses requests past the in-flight bound at once, and never health checks."""

from __future__ import annotations

import asyncio
import math
import time
from typing import Any

from api.shedding import AdaptiveLimit, LagWindow, LoadShedding, LoopLag


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


def answered(limit: AdaptiveLimit, rate: float, seconds: float, latency: float,
             start: float = 0.0) -> float:
    """``rate`` answers a second for ``seconds``, each taking ``latency``; the time of the
    last answer."""
    finished = start
    for i in range(round(rate * seconds)):
        finished = start + (i + 1) / rate
        limit.record(finished - latency, finished)
    return finished


def test_the_bound_is_what_the_pipeline_answers_in_a_share_of_the_target() -> None:
    limit = AdaptiveLimit(target_seconds=1.0, floor=2, ceiling=256, share=0.5, max_share=0.5)
    now = answered(limit, rate=40.0, seconds=3.0, latency=0.4)
    assert limit.answer_rate(now) == 40.0
    assert limit.bound(now) == 20  # 40 answers/s x 1.0 s x 0.5: a mean wait of 0.5 s
    assert limit.admits(19, now) and not limit.admits(20, now)


def test_at_the_onset_of_an_overload_the_bound_holds_before_any_answer_is_slow() -> None:
    """Arrivals double; what the pipeline answers does not: the bound stays where it was, so
    the queue admitted stays what it drains in a share of the target."""
    limit = AdaptiveLimit(target_seconds=1.0, floor=2, ceiling=256)
    now = answered(limit, rate=40.0, seconds=30.0, latency=0.4)
    assert limit.share == 0.7  # answers within the target: the share at its ceiling
    admitted = sum(limit.admits(in_flight, now) for in_flight in range(16, 100))
    assert admitted == 12  # 16..27 of the 84 a doubled arrival rate would bring


def test_answers_within_the_target_raise_the_share_by_about_growth_per_round_trip() -> None:
    limit = AdaptiveLimit(target_seconds=1.0, floor=2, ceiling=256)
    now = answered(limit, rate=40.0, seconds=2.0, latency=0.2)  # the rate is known now
    limit.share = 0.3
    now = answered(limit, rate=40.0, seconds=2.0, latency=0.2, start=now)
    # 80 answers with the bound near 40 x 0.3..0.34 = 12..13: about 80 / 13 x 0.02 = 0.13 more
    assert 0.41 < limit.share < 0.46, limit.share
    assert limit.bound(now) == math.floor(40 * limit.share)


def test_without_answers_for_a_window_the_bound_falls_back_to_the_floor() -> None:
    limit = AdaptiveLimit(target_seconds=1.0, floor=16, ceiling=256, share=0.5, max_share=0.5)
    assert limit.bound(0.0) == 16  # a fresh process admits its floor, then what it answers
    now = answered(limit, rate=100.0, seconds=2.0, latency=0.2)
    assert limit.bound(now) == 50
    assert limit.bound(now + 1.0) == 25  # half the window's answers are older than it
    assert limit.bound(now + 2.0) == 16


def test_a_slow_answer_cuts_the_share_once_per_round_trip() -> None:
    limit = AdaptiveLimit(target_seconds=0.5, floor=4, ceiling=256, share=0.5)
    limit.record(started=9.0, finished=10.0)
    assert limit.share == 0.4
    limit.record(started=9.1, finished=10.2)  # admitted before the cut: nothing new
    assert limit.share == 0.4
    limit.record(started=10.5, finished=11.3)  # admitted after it
    assert abs(limit.share - 0.32) < 1e-9
    for i in range(20):
        limit.record(started=20.0 + i, finished=21.0 + i)
    assert limit.share == 0.2  # never below min_share


def test_below_the_floor_nothing_is_shed_however_slow_the_answers() -> None:
    limit = AdaptiveLimit(target_seconds=0.5, floor=16, ceiling=256)
    for i in range(20):
        limit.record(started=float(i), finished=i + 5.0)
    assert limit.bound(25.0) == 16
    assert limit.admits(15, 25.0) and not limit.admits(16, 25.0)


def test_the_bound_never_passes_the_ceiling() -> None:
    limit = AdaptiveLimit(target_seconds=1.0, floor=2, ceiling=32)
    now = answered(limit, rate=1000.0, seconds=2.0, latency=0.01)
    assert limit.bound(now) == 32


def answering_after(seconds: float) -> Any:
    """An ASGI app that answers 201 after ``seconds``."""

    async def app(scope: Any, receive: Any, send: Any) -> None:
        await asyncio.sleep(seconds)
        await send({"type": "http.response.start", "status": 201, "headers": []})

    return app


async def receive() -> dict[str, Any]:
    return {"type": "http.request", "body": b""}


async def test_the_middleware_admits_what_it_has_been_answering_and_sheds_the_rest() -> None:
    sent: list[dict[str, Any]] = []

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    shedding = LoadShedding(answering_after(0.01), max_in_flight=100, min_in_flight=2,
                            latency_target_seconds=0.2)
    http = {"type": "http", "path": "/v1/payments"}
    assert shedding.stats.limit == 2  # nothing answered yet: the floor
    for _ in range(40):  # one at a time: about 100 answers a second on a quiet machine
        await shedding(http, receive, send)
    assert shedding.shed == 0
    assert shedding.adaptive is not None
    bound = shedding.adaptive.bound(time.monotonic())
    assert 2 < bound < 20, bound  # the answer rate x 0.1 s (half the target)
    await asyncio.gather(*(shedding(http, receive, send) for _ in range(20)))
    assert bound - 1 <= 20 - shedding.shed <= bound, (bound, shedding.shed)
    statuses = [m["status"] for m in sent if m["type"] == "http.response.start"]
    assert statuses.count(503) == shedding.shed and statuses.count(201) == 60 - shedding.shed
    assert shedding.in_flight == 0


def test_a_request_waiting_past_the_target_cuts_the_share_before_any_slow_answer() -> None:
    limit = AdaptiveLimit(target_seconds=0.5, floor=4, ceiling=256, share=0.5)
    limit.waiting(oldest_started=10.0, now=10.4)
    assert limit.share == 0.5
    limit.waiting(oldest_started=10.0, now=10.6)
    assert limit.share == 0.4
    limit.record(started=10.0, finished=11.0)  # the same request, answered
    assert limit.share == 0.4


def test_the_lag_window_holds_the_largest_lag_of_its_last_second() -> None:
    window = LagWindow(window_seconds=1.0)
    assert window.current(0.0) == 0.0
    window.record(0.0, 0.050)
    window.record(0.2, 0.010)
    window.record(0.4, 0.030)
    assert window.current(0.5) == 0.050
    assert window.current(1.1) == 0.030  # the 50 ms stall left the window; 30 ms is the largest
    assert window.current(1.5) == 0.0
    assert len(window.samples) == 0


async def test_a_request_counts_as_admitted_when_the_starved_loop_would_have_seen_it() -> None:
    """An answer that is within the target after the middleware saw the request, but past it
    counting the loop's lag before, cuts the share as a slow answer from the pipeline does."""
    sent: list[dict[str, Any]] = []

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    shedding = LoadShedding(answering_after(0.03), max_in_flight=64, min_in_flight=2,
                            latency_target_seconds=0.1)
    assert shedding.adaptive is not None
    share = shedding.adaptive.share
    await shedding({"type": "http", "path": "/v1/payments"}, receive, send)
    assert shedding.adaptive.share > share  # 30 ms: within the target
    share = shedding.adaptive.share
    shedding.lag.window.record(time.monotonic(), 0.08)  # the loop ran 80 ms late just now
    await shedding({"type": "http", "path": "/v1/payments"}, receive, send)
    assert shedding.stats.loop_lag == 0.08
    assert shedding.adaptive.share == share * shedding.adaptive.backoff  # 80 + 30 ms > 100 ms


async def test_loop_lag_measures_how_late_a_blocked_loop_runs_its_timer() -> None:
    lag = LoopLag(interval_seconds=0.01, window_seconds=5.0)
    lag.start()
    await asyncio.sleep(0.02)
    time.sleep(0.1)  # noqa: ASYNC251 - blocks the loop on purpose: the timer fires ~90 ms late
    await asyncio.sleep(0.03)
    assert 0.07 < lag.current(time.monotonic()) < 1.0
    lag.stop()


def test_a_target_longer_than_the_rate_window_does_not_dilute_the_rate() -> None:
    """The rate is over the window once answers have been coming for that long, whatever the
    target (a 24 s target once divided the last 2 s of answers by 24 s: a twelfth of the rate)."""
    limit = AdaptiveLimit(target_seconds=24.0, floor=2, ceiling=10_000)
    now = answered(limit, rate=100.0, seconds=0.5, latency=0.2)
    assert limit.answer_rate(now) == 50 / 2.0  # half a second of answers over the whole window
    now = answered(limit, rate=100.0, seconds=30.0, latency=0.2, start=now)
    assert limit.answer_rate(now) == 100.0
