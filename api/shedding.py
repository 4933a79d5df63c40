"""Load shedding: past an adaptive bound of concurrent requests, answer 503 at once.

A request that cannot be served in time still costs every process it touches; taking it
anyway makes everyone slower until nobody is served in time (goodput collapse, measured on
this kind of machine). Refusing early, with ``Retry-After``, keeps the accepted requests within
their latency budget; the client's retry lands when there is room. Health checks are never
shed.

How many requests may be in flight is found at run time (``AdaptiveLimit``): a payment waits
for its decision, so the API's in-flight requests are the queue of the whole pipeline (Kafka,
the worker, the ledger). A fixed bound cannot fit both a quiet and a loaded machine: 256
waiting payments are several seconds of work where the pipeline decides 50 a second. The
bound is what the pipeline answers in a share of the latency target, so the queue it admits is
drained within the target however fast the machine is at the moment.

A request's wait starts before this middleware sees it: on a saturated machine it waits for the
process to be scheduled and for its event loop to read it. ``LoopLag`` measures that wait (how
late a short timer fires), and a request counts as admitted that much earlier, so answers late
because the API itself was starved cut the share as answers late in the pipeline do.
"""

from __future__ import annotations

import asyncio
import json
import math
import time
from collections import deque
from dataclasses import dataclass, field

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.errors import error_body

UNSHED_PATHS = frozenset({"/healthz", "/readyz", "/metrics"})


@dataclass
class AdaptiveLimit:
    """The in-flight bound: what the pipeline answers in a share of the target (Little's law),
    the share found by additive increase / multiplicative decrease on answers past the target
    (as TCP's congestion window, or Netflix's concurrency-limits AIMD, but on the wait rather
    than on a count).

    Requests in flight are the pipeline's queue: at ``rate`` answers a second, ``n`` requests in
    flight wait ``n / rate`` on average (Little's law). Admitting no more than ``rate *
    target_seconds * share`` keeps that mean wait at ``share`` of the target, and it holds from
    the first request of an overload: the rate is what the pipeline has been answering, so the
    bound does not wait for a slow answer to learn that arrivals doubled. (A bound on the count
    alone, falling only on slow answers, lets a round trip's worth of queue in at each onset.)

    How far the mean may go depends on how widely answers spread around it, which the pipeline
    decides: an answer slower than the target cuts the share by ``backoff``, once per round trip
    (a slow answer from a request admitted before the last cut says nothing new), and a request
    still waiting past the target says so as early as it can (``waiting``); each answer within
    the target adds ``growth`` over the bound (about ``growth`` per round trip). The share stays
    within ``[min_share, max_share]``: at most 0.7, so that an onset from a quiet pipeline holds
    the mean wait well within the target while the first slow answers arrive. The bound stays
    within ``[floor, ceiling]``: below ``floor`` requests in flight nothing is shed, so a small
    burst is never refused. Pure: the caller passes the clock."""

    target_seconds: float
    floor: int
    ceiling: int
    share: float = 0.5
    min_share: float = 0.2
    max_share: float = 0.7
    backoff: float = 0.8
    growth: float = 0.02
    rate_window_seconds: float = 2.0
    last_decrease: float = -math.inf
    answers: deque[float] = field(default_factory=deque)
    """When each answer of the last ``rate_window_seconds`` was given, oldest first."""
    first_answer: float | None = None

    def __post_init__(self) -> None:
        assert self.target_seconds > 0 and 0 < self.backoff < 1, self
        assert 0 < self.min_share <= self.share <= self.max_share <= 1, self
        assert self.rate_window_seconds > 0 and self.growth > 0, self
        assert 1 <= self.floor <= self.ceiling, self

    def answer_rate(self, now: float) -> float:
        """Answers a second over the last ``rate_window_seconds`` (over the time since the
        first answer, while that is shorter, but at least the target or the window, whichever
        is shorter: a handful of early answers are not a rate yet)."""
        while self.answers and self.answers[0] <= now - self.rate_window_seconds:
            self.answers.popleft()
        if self.first_answer is None:
            return 0.0
        return len(self.answers) / min(self.rate_window_seconds,
                                       max(now - self.first_answer, self.target_seconds))

    def bound(self, now: float) -> int:
        """How many requests may be in flight at ``now``."""
        queue = self.answer_rate(now) * self.target_seconds * self.share
        return max(self.floor, min(self.ceiling, math.floor(queue)))

    def admits(self, in_flight: int, now: float) -> bool:
        return in_flight < self.bound(now)

    def record(self, started: float, finished: float) -> None:
        """One answered request: admitted at ``started``, answered at ``finished``."""
        assert finished >= started, (started, finished)
        self.answers.append(finished)
        if self.first_answer is None:
            self.first_answer = finished
        if finished - started > self.target_seconds:
            self._slow(started, finished)
        else:
            self.share = min(self.max_share, self.share + self.growth / self.bound(finished))

    def waiting(self, oldest_started: float, now: float) -> None:
        """The oldest request in flight was admitted at ``oldest_started``: once it has waited
        past the target the queue is standing already, before any slow answer says so."""
        if now - oldest_started > self.target_seconds:
            self._slow(oldest_started, now)

    def _slow(self, started: float, now: float) -> None:
        if started > self.last_decrease:
            self.share = max(self.min_share, self.share * self.backoff)
            self.last_decrease = now


@dataclass
class LagWindow:
    """How late the event loop ran a timer lately: the largest of the samples of the last
    ``window_seconds``. The largest, not a mean, because a request that arrived at the start of
    a stall waited all of it. Pure: the caller passes the clock."""

    window_seconds: float = 1.0
    samples: deque[tuple[float, float]] = field(default_factory=deque)
    """(when, lag) of the samples of the window, oldest first; lags decreasing (a sample hides
    the earlier smaller ones: they can never be the largest again)."""

    def record(self, now: float, lag: float) -> None:
        while self.samples and self.samples[-1][1] <= lag:
            self.samples.pop()
        self.samples.append((now, lag))

    def current(self, now: float) -> float:
        while self.samples and self.samples[0][0] <= now - self.window_seconds:
            self.samples.popleft()
        return self.samples[0][1] if self.samples else 0.0


class LoopLag:
    """Samples the running event loop's lag every ``interval_seconds`` (a timer's delay past
    its due time) into a ``LagWindow``. Costs one wake-up per interval."""

    def __init__(self, interval_seconds: float = 0.02, window_seconds: float = 1.0) -> None:
        self.interval_seconds = interval_seconds
        self.window = LagWindow(window_seconds)
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        """Start sampling on the running loop (again if the loop it ran on ended)."""
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self._sample(),
                                                                name="api-loop-lag")

    def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            self._task = None

    def current(self, now: float) -> float:
        return self.window.current(now)

    async def _sample(self) -> None:
        while True:
            due = time.monotonic() + self.interval_seconds
            await asyncio.sleep(self.interval_seconds)
            now = time.monotonic()
            self.window.record(now, max(0.0, now - due))


@dataclass
class SheddingStats:
    """Shared with ``/metrics``."""

    in_flight: int = 0
    shed: int = 0
    limit: float = 0.0
    share: float = 0.0
    """The adaptive bound's share of the latency target (0 without one)."""
    loop_lag: float = 0.0
    """The event loop's recent lag, seconds (what a request waited before it was seen)."""


class LoadShedding:
    def __init__(self, app: ASGIApp, max_in_flight: int, min_in_flight: int | None = None,
                 latency_target_seconds: float | None = None,
                 stats: SheddingStats | None = None) -> None:
        """Without a latency target the bound is ``max_in_flight``, fixed."""
        self.app = app
        self.max_in_flight = max_in_flight
        self.adaptive = None if latency_target_seconds is None else AdaptiveLimit(
            latency_target_seconds, min(min_in_flight or 1, max_in_flight), max_in_flight)
        self.stats = stats or SheddingStats()
        self.stats.limit = (max_in_flight if self.adaptive is None
                            else self.adaptive.bound(time.monotonic()))
        self.stats.share = 0.0 if self.adaptive is None else self.adaptive.share
        self.lag = LoopLag()
        self._admitted: dict[int, float] = {}
        """When each request in flight was admitted, oldest first (dicts keep insertion order)."""
        self._sequence = 0

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
        now = time.monotonic()
        self.lag.start()
        self.stats.loop_lag = self.lag.current(now)
        started = now - self.stats.loop_lag
        if self.adaptive is not None and self._admitted:
            oldest = next(iter(self._admitted.values()))
            self.adaptive.waiting(oldest, started)
        if self.stats.in_flight >= self.max_in_flight or (
                self.adaptive is not None and not self.adaptive.admits(self.stats.in_flight,
                                                                       started)):
            self.stats.shed += 1
            await _overloaded(send)
            return
        self.stats.in_flight += 1
        self._sequence += 1
        sequence = self._sequence
        self._admitted[sequence] = started
        answered: float | None = None

        async def send_and_time(message: Message) -> None:
            nonlocal answered
            if message["type"] == "http.response.start":
                answered = time.monotonic()
            await send(message)

        try:
            await self.app(scope, receive, send_and_time)
        finally:
            if self.adaptive is not None and answered is not None:
                self.adaptive.record(started, answered)
                self.stats.limit = self.adaptive.bound(answered)
                self.stats.share = self.adaptive.share
            del self._admitted[sequence]
            self.stats.in_flight -= 1


async def _overloaded(send: Send) -> None:
    body = json.dumps(error_body("api_error", "overloaded",
                                 "The API is at capacity; retry after a second.", None)).encode()
    await send({"type": "http.response.start", "status": 503, "headers": [
        (b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
        (b"retry-after", b"1")]})
    await send({"type": "http.response.body", "body": body})
