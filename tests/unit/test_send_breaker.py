"""The API's Kafka send breaker: closed until a failure, open for its window, then probing."""

from __future__ import annotations

from api.breaker import SendBreaker


def test_sends_are_tried_until_one_fails() -> None:
    breaker = SendBreaker(open_seconds=2.0)
    assert breaker.allows(0.0) and breaker.allows(100.0)


def test_after_a_failure_sends_are_skipped_for_the_window_then_tried_again() -> None:
    breaker = SendBreaker(open_seconds=2.0)
    breaker.failed(10.0)
    assert not breaker.allows(10.0)
    assert not breaker.allows(11.9)
    assert breaker.allows(12.0)


def test_a_late_report_of_an_older_failure_never_shortens_the_window() -> None:
    breaker = SendBreaker(open_seconds=2.0)
    breaker.failed(10.0)
    breaker.failed(9.0)
    assert not breaker.allows(11.5)
