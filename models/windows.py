"""Compact event-time window aggregates: bucketed counters, recency sets and running moments.

Every per-key feature state is built from these three pieces so that one small record holds all
of a key's windows (one table write per event, not one per feature). Each piece's state is a
short JSON-ready list, exactly what the stream worker's tables store; the pieces here are
immutable descriptions of a window (its width, its capacity) whose methods read and update such
a list in place. The worker decodes a record and updates it without building anything else: an
object per window, decoded and re-encoded per event, cost more than the arithmetic.

Windows are bucketed: a window of ``buckets`` x ``width_seconds`` at time t covers the buckets
whose index is in (index(t) - buckets, index(t)]. This slightly widens a sliding window (by up to
one bucket) in exchange for a bounded record; online and offline use the same rule, so both see
the same numbers.
"""

from __future__ import annotations

import math
from bisect import bisect_left
from dataclasses import dataclass
from operator import itemgetter
from typing import Any

BucketsState = list[list[float]]
"""[[bucket index, count, sum], ...] in index order (indices are integral floats)."""
RecencyState = list[list[Any]]
"""[[value, latest time], ...] in value order."""
MomentsState = list[float]
"""[count, mean, m2]."""

_value, _time = itemgetter(0), itemgetter(1)


@dataclass(frozen=True, slots=True)
class BucketedCounter:
    """Count and sum of values in fixed-width time buckets, keeping the newest ``buckets``."""

    width_seconds: int
    buckets: int

    def add(self, state: BucketsState, time_seconds: float, value: float) -> None:
        index = float(time_seconds // self.width_seconds)
        position = len(state)
        while position and state[position - 1][0] > index:  # events come mostly in order
            position -= 1
        if position and state[position - 1][0] == index:
            entry = state[position - 1]
            entry[1] += 1.0
            entry[2] += value
            return
        state.insert(position, [index, 1.0, 0.0 + value])
        # Only a new bucket can make others stale: the newest index moves only then.
        horizon = state[-1][0] - self.buckets
        stale = 0
        while stale < len(state) and state[stale][0] <= horizon:
            stale += 1
        del state[:stale]

    def window(self, state: BucketsState, time_seconds: float,
               buckets: int | None = None) -> tuple[float, float]:
        """(count, sum) over the newest ``buckets`` (default all) up to ``time_seconds``;
        buckets after it are ignored."""
        span = self.buckets if buckets is None else buckets
        assert 0 < span <= self.buckets, span
        current = float(time_seconds // self.width_seconds)
        oldest = current - span
        count = total = 0.0
        for index, bucket_count, bucket_sum in state:
            if oldest < index <= current:
                count += bucket_count
                total += bucket_sum
        return count, total


@dataclass(frozen=True, slots=True)
class RecencySet:
    """Distinct values seen within ``window_seconds``, each with its latest time; at most
    ``capacity`` values (the oldest are forgotten first, so a count saturates at capacity)."""

    window_seconds: float
    capacity: int

    def add(self, state: RecencyState, value: str, time_seconds: float) -> None:
        position = bisect_left(state, value, key=_value)
        if position < len(state) and state[position][0] == value:
            entry = state[position]
            entry[1] = max(time_seconds, entry[1])
            latest = entry[1]
        else:
            state.insert(position, [value, time_seconds])
            latest = time_seconds
        newest = max(state, key=_time)[1]
        horizon = newest - self.window_seconds
        # Only a new newest time can make others stale, or a value added already stale.
        if (newest == time_seconds or latest <= horizon) and min(state, key=_time)[1] <= horizon:
            state[:] = [entry for entry in state if entry[1] > horizon]
        if len(state) > self.capacity:
            kept = sorted(state, key=lambda entry: (entry[1], entry[0]))[-self.capacity:]
            state[:] = sorted(kept, key=_value)

    def distinct(self, state: RecencyState, time_seconds: float) -> int:
        start = time_seconds - self.window_seconds
        return sum(1 for _, t in state if start < t <= time_seconds)

    @staticmethod
    def holds(state: RecencyState, value: str) -> bool:
        position = bisect_left(state, value, key=_value)
        return position < len(state) and state[position][0] == value


class RunningMoments:
    """Count, mean and spread of every value seen (Welford's algorithm: stable, one pass),
    over a ``MomentsState``."""

    @staticmethod
    def add(state: MomentsState, value: float) -> None:
        count = state[0] + 1.0
        delta = value - state[1]
        mean = state[1] + delta / count
        state[:] = [count, mean, state[2] + delta * (value - mean)]

    @staticmethod
    def std(state: MomentsState) -> float:
        count = state[0]
        return math.sqrt(state[2] / (count - 1)) if count > 1 else 0.0

    @staticmethod
    def zscore(state: MomentsState, value: float, cap: float = 50.0) -> float:
        """How many spreads ``value`` lies from the mean (0 without two prior values).

        The spread is floored at 10 % of the mean so that a card that always pays the same amount
        does not turn every small change into an infinite score; the result is clipped to +-cap.
        """
        if state[0] < 2:
            return 0.0
        mean = state[1]
        spread = max(RunningMoments.std(state), 0.1 * abs(mean), 1.0)
        return max(-cap, min(cap, (value - mean) / spread))
