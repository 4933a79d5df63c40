"""The window pieces prune only when something can have gone stale; what they hold and count is
what pruning after every addition gives, whatever order events arrive in."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from models.windows import BucketedCounter, RecencySet

events = st.lists(st.tuples(st.integers(0, 400), st.sampled_from("abcdefgh")), max_size=60)
"""(time, value) in any order: requests reach a stage out of order, late ones included."""


def pruned_counter(counter: BucketedCounter) -> dict[int, list[float]]:
    newest = max(counter.counts)
    return {i: entry for i, entry in counter.counts.items() if i > newest - counter.buckets}


@settings(max_examples=200, deadline=None)
@given(events)
def test_a_bucketed_counter_holds_what_pruning_after_every_addition_holds(
    added: list[tuple[int, str]],
) -> None:
    counter = BucketedCounter(width_seconds=10, buckets=6)
    for t, _ in added:
        counter.add(float(t), 2.5)
        assert counter.counts == pruned_counter(counter)
        assert counter.window(float(t)) == counter.window(float(t), 6)


def pruned_set(recency: RecencySet) -> dict[str, float]:
    newest = max(recency.last_seen.values())
    return {v: t for v, t in recency.last_seen.items() if t > newest - recency.window_seconds}


@settings(max_examples=200, deadline=None)
@given(events)
def test_a_recency_set_holds_what_pruning_after_every_addition_holds(
    added: list[tuple[int, str]],
) -> None:
    recency = RecencySet(window_seconds=60.0, capacity=64)
    for t, value in added:
        recency.add(value, float(t))
        assert recency.last_seen == pruned_set(recency)


def test_a_value_older_than_the_window_is_forgotten_at_once() -> None:
    recency = RecencySet(window_seconds=60.0, capacity=64)
    recency.add("a", 1000.0)
    recency.add("late", 900.0)  # 100 s before the newest: outside the window already
    assert "late" not in recency
    assert recency.distinct(900.0) == 0
