"""Pure statistics behind every benchmark figure: percentiles, latency summaries, arrival
schedules and rates over time.

No I/O here, so the numbers a benchmark reports can be checked by unit tests
(``tests/unit/test_bench_stats.py``) without any service running.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

MAX_SCHEDULED_REQUESTS = 2_000_000
"""An arrival schedule longer than this is a mistake (2,000/s for 1,000 s)."""


def percentile(values: Sequence[float], share: float) -> float:
    """The nearest-rank percentile: the smallest value with at least ``share`` of the values at
    or below it (so p100 is the maximum and p0 the minimum). ValueError on no values."""
    if not values:
        raise ValueError("percentile of no values")
    assert 0.0 <= share <= 1.0, share
    ordered = sorted(values)
    rank = max(1, math.ceil(share * len(ordered)))
    return ordered[rank - 1]


def latency_summary_ms(latencies_seconds: Sequence[float]) -> dict[str, float | int | None]:
    """p50 / p95 / p99 / max in milliseconds (None when there were no latencies), and the count."""
    if not latencies_seconds:
        return {"count": 0, "p50_ms": None, "p95_ms": None, "p99_ms": None, "max_ms": None}
    return {
        "count": len(latencies_seconds),
        **{f"p{round(share * 100)}_ms": round(percentile(latencies_seconds, share) * 1000, 1)
           for share in (0.50, 0.95, 0.99)},
        "max_ms": round(max(latencies_seconds) * 1000, 1),
    }


def arrival_schedule(rate_per_second: float, seconds: float) -> list[float]:
    """Offsets (seconds from the start) at which an open-loop generator sends each request:
    a fixed arrival rate, one request every ``1 / rate`` seconds, whatever earlier requests
    are doing. ``rate * seconds`` requests, rounded to the nearest whole request."""
    assert rate_per_second > 0 and seconds > 0, (rate_per_second, seconds)
    count = round(rate_per_second * seconds)
    assert count <= MAX_SCHEDULED_REQUESTS, count
    return [index / rate_per_second for index in range(count)]


def per_second_counts(offsets_seconds: Sequence[float], seconds: float) -> list[int]:
    """How many events fell in each whole second ``[i, i + 1)`` from 0 to ``seconds`` (rounded
    up); events outside that span are left out."""
    buckets = [0] * max(0, math.ceil(seconds))
    for offset in offsets_seconds:
        index = math.floor(offset)
        if 0 <= index < len(buckets):
            buckets[index] += 1
    return buckets


def ratio(figure: float | None, reference: float | None) -> float | None:
    """figure / reference, or None when either is missing or the reference is zero."""
    if figure is None or reference is None or reference == 0:
        return None
    return figure / reference


def highest_rate_within(steps: Sequence[dict[str, object]], p99_limit_ms: float,
                        min_answered_share: float = 0.99) -> float | None:
    """The highest offered rate whose authorization p99 stayed under ``p99_limit_ms`` while
    at least ``min_answered_share`` of its requests were answered 201/202 (a rate that sheds or
    drops its load does not count, however fast its few answers were); None if no rate did.

    Each step is a dict with ``rate_per_second``, ``latency`` (from ``latency_summary_ms``)
    and ``answered_share``."""
    qualifying = []
    for step in steps:
        latency = step.get("latency")
        p99 = latency.get("p99_ms") if isinstance(latency, dict) else None
        answered = step.get("answered_share")
        rate = step.get("rate_per_second")
        if (isinstance(p99, int | float) and isinstance(answered, int | float)
                and isinstance(rate, int | float)
                and p99 < p99_limit_ms and answered >= min_answered_share):
            qualifying.append(float(rate))
    return max(qualifying) if qualifying else None
