"""The benchmark's arithmetic: percentiles, latency summaries, the open-loop arrival schedule,
rates over time, and which rate counts as 'p99 under the limit'. No services, no timing."""

from __future__ import annotations

import itertools
import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bench.stats import (
    arrival_schedule,
    highest_rate_within,
    latency_summary_ms,
    per_second_counts,
    percentile,
    ratio,
)


def test_percentile_is_the_nearest_rank() -> None:
    values = [float(v) for v in range(1, 101)]  # 1 .. 100
    assert percentile(values, 0.50) == 50.0
    assert percentile(values, 0.99) == 99.0
    assert percentile(values, 1.0) == 100.0
    assert percentile(values, 0.0) == 1.0
    assert percentile([3.0, 1.0, 2.0], 0.5) == 2.0  # order of the input does not matter


def test_percentile_of_nothing_is_an_error() -> None:
    with pytest.raises(ValueError):
        percentile([], 0.5)


@settings(deadline=None)
@given(st.lists(st.floats(min_value=0, max_value=1e6), min_size=1, max_size=200),
       st.floats(min_value=0, max_value=1))
def test_a_percentile_is_one_of_the_values_with_at_least_its_share_at_or_below(
        values: list[float], share: float) -> None:
    found = percentile(values, share)
    assert found in values
    assert sum(v <= found for v in values) >= share * len(values)
    assert sum(v < found for v in values) < max(1, math.ceil(share * len(values)))


def test_latency_summary_is_in_milliseconds_and_empty_when_nothing_answered() -> None:
    summary = latency_summary_ms([0.010] * 98 + [0.200, 1.5])
    assert summary == {"count": 100, "p50_ms": 10.0, "p95_ms": 10.0, "p99_ms": 200.0,
                       "max_ms": 1500.0}
    assert latency_summary_ms([]) == {"count": 0, "p50_ms": None, "p95_ms": None,
                                      "p99_ms": None, "max_ms": None}


def test_the_open_loop_schedule_sends_at_a_fixed_rate_whatever_happens() -> None:
    schedule = arrival_schedule(200, 20)
    assert len(schedule) == 4000
    assert schedule[0] == 0.0 and schedule[1] == pytest.approx(0.005)
    assert schedule[-1] == pytest.approx(19.995)
    gaps = {round(b - a, 9) for a, b in itertools.pairwise(schedule)}
    assert gaps == {0.005}


@settings(deadline=None, max_examples=50)
@given(st.floats(min_value=0.5, max_value=2000), st.floats(min_value=0.1, max_value=60))
def test_a_schedule_holds_rate_times_seconds_requests_within_the_window(
        rate: float, seconds: float) -> None:
    schedule = arrival_schedule(rate, seconds)
    assert len(schedule) == round(rate * seconds)
    assert all(0 <= t < seconds + 1 / rate for t in schedule)
    assert schedule == sorted(schedule)


def test_a_schedule_refuses_nonsense() -> None:
    with pytest.raises(AssertionError):
        arrival_schedule(0, 10)
    with pytest.raises(AssertionError):
        arrival_schedule(100_000, 1_000)  # far past the bound


def test_per_second_counts_bucket_by_whole_seconds_and_drop_what_is_outside() -> None:
    assert per_second_counts([0.0, 0.5, 0.99, 1.0, 2.5, 7.0, -0.1], 3) == [3, 1, 1]
    assert per_second_counts([], 2.5) == [0, 0, 0]


def test_ratio_needs_both_figures_and_a_nonzero_reference() -> None:
    assert ratio(50.0, 200.0) == 0.25
    assert ratio(None, 2.0) is None and ratio(1.0, None) is None and ratio(1.0, 0.0) is None


def _step(rate: float, p99_ms: float | None, answered: float) -> dict[str, object]:
    return {"rate_per_second": rate, "latency": {"p99_ms": p99_ms}, "answered_share": answered}


def test_the_highest_rate_within_a_limit_ignores_rates_that_shed_their_load() -> None:
    steps = [_step(200, 40, 1.0), _step(500, 180, 1.0), _step(1000, 900, 0.999),
             _step(2000, 90, 0.40)]  # fast answers, but most requests were shed
    assert highest_rate_within(steps, 250) == 500
    assert highest_rate_within(steps, 2000) == 1000
    assert highest_rate_within(steps, 10) is None
    assert highest_rate_within([_step(100, None, 0.0)], 2000) is None
