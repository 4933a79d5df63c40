"""When a failed delivery is tried again, when it is given up, and when an endpoint is disabled.

Retry schedule (``PAYFLOW_WEBHOOKS_RETRY_SCHEDULE_SECONDS``): after failed attempt *n* the next
attempt waits ``delays[n-1]`` seconds plus up to ``jitter`` of that at random (so retries of many
deliveries that failed together spread out instead of arriving together). The default, 5 s,
5 min, 30 min, 2 h, 5 h, 10 h, 10 h, is roughly exponential and spans 27.6 h over 8 attempts;
after the last delay's attempt fails the delivery is dead-lettered (status ``failed``).

Auto-disable (``PAYFLOW_WEBHOOKS_DISABLE_AFTER_SECONDS``, ``..._DISABLE_MIN_FAILURES``): an
endpoint whose attempts have all failed since ``failing_since`` for at least that long, with at
least that many failures in a row, is disabled; any 2xx answer resets the streak.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from payflow.settings import Settings


@dataclass(frozen=True, slots=True)
class RetrySchedule:
    delays_seconds: tuple[float, ...]
    """Wait before attempt 2, 3, ...: ``delays_seconds[n-1]`` follows failed attempt ``n``."""
    jitter: float
    """Each wait is stretched by up to this fraction, at random."""

    def __post_init__(self) -> None:
        assert self.delays_seconds and all(d > 0 for d in self.delays_seconds), self
        assert 0 <= self.jitter <= 1, self

    @classmethod
    def from_settings(cls, settings: Settings) -> RetrySchedule:
        return cls(tuple(settings.webhooks_retry_schedule_seconds), settings.webhooks_retry_jitter)

    @property
    def max_attempts(self) -> int:
        return len(self.delays_seconds) + 1

    @property
    def span_seconds(self) -> float:
        """From the first attempt to the last, without jitter (the shortest it can be)."""
        return sum(self.delays_seconds)

    def delay_after(self, failed_attempt: int, random_fraction: float) -> float | None:
        """Seconds to wait after failed attempt ``failed_attempt`` (1-based); None: give up.

        ``random_fraction`` in [0, 1) is the caller's randomness, so the schedule stays pure.
        """
        assert failed_attempt >= 1, failed_attempt
        assert 0 <= random_fraction <= 1, random_fraction
        if failed_attempt > len(self.delays_seconds):
            return None
        base = self.delays_seconds[failed_attempt - 1]
        return base * (1 + self.jitter * random_fraction)


@dataclass(frozen=True, slots=True)
class DisablePolicy:
    after_seconds: float
    min_failures: int

    @classmethod
    def from_settings(cls, settings: Settings) -> DisablePolicy:
        return cls(settings.webhooks_disable_after_seconds, settings.webhooks_disable_min_failures)

    def should_disable(
        self, failing_since: datetime | None, consecutive_failures: int, now: datetime
    ) -> bool:
        """Whether an endpoint failing since ``failing_since`` is to be disabled ``now``."""
        if failing_since is None:
            return False
        return (
            consecutive_failures >= self.min_failures
            and now - failing_since >= timedelta(seconds=self.after_seconds)
        )
