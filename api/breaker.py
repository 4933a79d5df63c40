"""A circuit breaker for the API's Kafka sends: after a send failed, skip sends for a moment.

With the broker down, every send waits out the rest of the decision budget before it fails, so
every payment holds its request for the whole budget, the load shedding reads that as overload,
and most requests are refused (measured by the dependency-restart fault test: 85 % shed while
Kafka was down). The payment is safe either way — its pending row is the outbox, re-sent by the
ledger's sweep — so after a failure the next ``open_seconds`` of sends are skipped and answered
at once (202 pending; a command 503). The first send after the window probes the broker again.
Pure: the caller passes the clock.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class SendBreaker:
    open_seconds: float = 2.0
    open_until: float = 0.0

    def __post_init__(self) -> None:
        assert self.open_seconds > 0, self

    def allows(self, now: float) -> bool:
        """Whether a send should be tried at ``now``."""
        return now >= self.open_until

    def failed(self, now: float) -> None:
        """A send failed at ``now``: skip sends until ``open_seconds`` later."""
        self.open_until = max(self.open_until, now + self.open_seconds)
