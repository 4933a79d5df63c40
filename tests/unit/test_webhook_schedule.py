"""The retry schedule and the auto-disable policy of webhook endpoints (pure)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from api.webhooks.schedule import DisablePolicy, RetrySchedule
from payflow.settings import Settings

DEFAULT = RetrySchedule.from_settings(Settings())
NOW = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)


def test_the_default_schedule_retries_within_seconds_and_spans_more_than_a_day() -> None:
    assert DEFAULT.delays_seconds == (5, 300, 1800, 7200, 18000, 36000, 36000)
    assert DEFAULT.delay_after(1, 0.0) == 5
    assert DEFAULT.span_seconds >= 24 * 3600
    assert DEFAULT.max_attempts == 8


def test_after_the_last_delay_the_delivery_is_given_up() -> None:
    assert DEFAULT.delay_after(7, 0.0) == 36000
    assert DEFAULT.delay_after(8, 0.0) is None
    assert DEFAULT.delay_after(50, 0.5) is None


@given(attempt=st.integers(1, 7), fraction=st.floats(0, 1))
def test_jitter_only_ever_lengthens_a_wait_and_by_at_most_its_fraction(
    attempt: int, fraction: float
) -> None:
    base = DEFAULT.delays_seconds[attempt - 1]
    delay = DEFAULT.delay_after(attempt, fraction)
    assert delay is not None
    assert base <= delay <= base * (1 + DEFAULT.jitter)


def test_waits_grow_from_one_attempt_to_the_next() -> None:
    delays = [DEFAULT.delay_after(n, 0.0) for n in range(1, 8)]
    assert delays == sorted(delays)  # type: ignore[type-var]


def test_tests_can_use_a_schedule_in_fractions_of_a_second() -> None:
    settings = Settings(webhooks_retry_schedule_seconds=(0.2, 0.5), webhooks_retry_jitter=0)
    schedule = RetrySchedule.from_settings(settings)
    assert schedule.delay_after(1, 0.9) == 0.2
    assert schedule.max_attempts == 3


def test_a_schedule_with_a_zero_or_negative_delay_is_refused_at_start_up() -> None:
    with pytest.raises(ValueError, match="positive"):
        Settings(webhooks_retry_schedule_seconds=(5, 0))


def test_an_endpoint_is_disabled_only_after_failing_long_enough_and_often_enough() -> None:
    policy = DisablePolicy(after_seconds=3 * 24 * 3600, min_failures=10)
    long_ago = NOW - timedelta(days=3)
    assert policy.should_disable(long_ago, 10, NOW)
    assert not policy.should_disable(long_ago, 9, NOW)
    assert not policy.should_disable(NOW - timedelta(days=2, hours=23), 100, NOW)
    assert not policy.should_disable(None, 100, NOW)


def test_by_default_an_endpoint_failing_for_three_days_is_disabled() -> None:
    policy = DisablePolicy.from_settings(Settings())
    assert policy.after_seconds == 3 * 24 * 3600
    assert policy.min_failures == 10
