"""Compact event-time window aggregates: bucketed counters, recency sets and running moments.

Every per-key feature state is built from these three pieces so that one small record holds all
of a key's windows (one table write per event, not one per feature). They are plain mutable
values with no I/O; ``models.features`` copies a state before changing it, so callers see
pure functions. Each piece encodes to a short JSON-ready list (``to_list``/``from_list``) for
the stream worker's tables, and the encoding round-trips floats exactly.

Windows are bucketed: a window of ``buckets`` x ``width_seconds`` at time t covers the buckets
whose index is in (index(t) - buckets, index(t)]. This slightly widens a sliding window (by up to
one bucket) in exchange for a bounded record; online and offline use the same rule, so both see
the same numbers.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field


@dataclass(slots=True)
class BucketedCounter:
    """Count and sum of values in fixed-width time buckets, keeping the newest ``buckets``."""

    width_seconds: int
    buckets: int
    counts: dict[int, list[float]] = field(default_factory=dict)
    """bucket index -> [count, sum]"""

    def add(self, time_seconds: float, value: float) -> None:
        index = int(time_seconds // self.width_seconds)
        entry = self.counts.get(index)
        if entry is not None:
            entry[0] += 1.0
            entry[1] += value
            return
        self.counts[index] = [1.0, 0.0 + value]
        # Only a new bucket can make others stale: the newest index moves only then.
        newest = max(self.counts)
        for stale in [i for i in self.counts if i <= newest - self.buckets]:
            del self.counts[stale]

    def window(self, time_seconds: float, buckets: int | None = None) -> tuple[float, float]:
        """(count, sum) over the newest ``buckets`` (default all) up to ``time_seconds``;
        buckets after it are ignored."""
        span = self.buckets if buckets is None else buckets
        assert 0 < span <= self.buckets, span
        current = int(time_seconds // self.width_seconds)
        count = total = 0.0
        for index, (bucket_count, bucket_sum) in self.counts.items():
            if current - span < index <= current:
                count += bucket_count
                total += bucket_sum
        return count, total

    def to_list(self) -> list[list[float]]:
        return [[float(index), entry[0], entry[1]] for index, entry in sorted(self.counts.items())]

    def load(self, encoded: list[list[float]]) -> BucketedCounter:
        self.counts = {int(index): [count, total] for index, count, total in encoded}
        return self


@dataclass(slots=True)
class RecencySet:
    """Distinct values seen within ``window_seconds``, each with its latest time; at most
    ``capacity`` values (the oldest are forgotten first, so a count saturates at capacity)."""

    window_seconds: float
    capacity: int
    last_seen: dict[str, float] = field(default_factory=dict)

    def add(self, value: str, time_seconds: float) -> None:
        self.last_seen[value] = max(time_seconds, self.last_seen.get(value, time_seconds))
        newest = max(self.last_seen.values())
        horizon = newest - self.window_seconds
        # Only a new newest time can make others stale, or a value added already stale.
        if newest == time_seconds or self.last_seen[value] <= horizon:
            for stale in [v for v, t in self.last_seen.items() if t <= horizon]:
                del self.last_seen[stale]
        if len(self.last_seen) > self.capacity:
            ordered = sorted(self.last_seen.items(), key=lambda item: (item[1], item[0]))
            self.last_seen = dict(ordered[-self.capacity :])

    def distinct(self, time_seconds: float) -> int:
        start = time_seconds - self.window_seconds
        return sum(1 for t in self.last_seen.values() if start < t <= time_seconds)

    def __contains__(self, value: str) -> bool:
        return value in self.last_seen

    def to_list(self) -> list[list[str | float]]:
        return [[value, t] for value, t in sorted(self.last_seen.items())]

    def load(self, encoded: list[list[str | float]]) -> RecencySet:
        self.last_seen = {str(value): float(t) for value, t in encoded}
        return self


@dataclass(slots=True)
class RunningMoments:
    """Count, mean and spread of every value seen (Welford's algorithm: stable, one pass)."""

    count: int = 0
    mean: float = 0.0
    m2: float = 0.0

    def add(self, value: float) -> None:
        self.count += 1
        delta = value - self.mean
        self.mean += delta / self.count
        self.m2 += delta * (value - self.mean)

    @property
    def std(self) -> float:
        return math.sqrt(self.m2 / (self.count - 1)) if self.count > 1 else 0.0

    def zscore(self, value: float, cap: float = 50.0) -> float:
        """How many spreads ``value`` lies from the mean (0 without two prior values).

        The spread is floored at 10 % of the mean so that a card that always pays the same amount
        does not turn every small change into an infinite score; the result is clipped to +-cap.
        """
        if self.count < 2:
            return 0.0
        spread = max(self.std, 0.1 * abs(self.mean), 1.0)
        return max(-cap, min(cap, (value - self.mean) / spread))

    def to_list(self) -> list[float]:
        return [float(self.count), self.mean, self.m2]

    def load(self, encoded: list[float]) -> RunningMoments:
        self.count, self.mean, self.m2 = int(encoded[0]), float(encoded[1]), float(encoded[2])
        return self
