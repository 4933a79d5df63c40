"""The window pieces prune only when something can have gone stale; what they hold and count is
what pruning after every addition gives, whatever order events arrive in; and their state stays
the ordered, JSON-ready list a table stores."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from models.windows import BucketedCounter, BucketsState, RecencySet, RecencyState

events = st.lists(st.tuples(st.integers(0, 400), st.sampled_from("abcdefgh")), max_size=60)
"""(time, value) in any order: requests reach a stage out of order, late ones included."""


def pruned_counter(counter: BucketedCounter, state: BucketsState) -> BucketsState:
    newest = max(index for index, _, _ in state)
    return sorted(entry for entry in state if entry[0] > newest - counter.buckets)


@settings(max_examples=200, deadline=None)
@given(events)
def test_a_bucketed_counter_holds_what_pruning_after_every_addition_holds(
    added: list[tuple[int, str]],
) -> None:
    counter = BucketedCounter(width_seconds=10, buckets=6)
    state: BucketsState = []
    reference: dict[int, list[float]] = {}
    for t, _ in added:
        counter.add(state, float(t), 2.5)
        assert state == pruned_counter(counter, state)
        assert counter.window(state, float(t)) == counter.window(state, float(t), 6)
        entry = reference.setdefault(t // 10, [0.0, 0.0])
        entry[0], entry[1] = entry[0] + 1, entry[1] + 2.5
        newest = max(reference)
        if newest == t // 10:  # a plain dict of every bucket, pruned at its newest
            reference = {i: e for i, e in reference.items() if i > newest - 6}
        live = {i: e for i, e in reference.items() if i > max(reference) - 6}
        assert state == [[float(i), *e] for i, e in sorted(live.items())]


def pruned_set(recency: RecencySet, state: RecencyState) -> RecencyState:
    newest = max(t for _, t in state)
    return [entry for entry in state if entry[1] > newest - recency.window_seconds]


@settings(max_examples=200, deadline=None)
@given(events)
def test_a_recency_set_holds_what_pruning_after_every_addition_holds(
    added: list[tuple[int, str]],
) -> None:
    recency = RecencySet(window_seconds=60.0, capacity=64)
    state: RecencyState = []
    for t, value in added:
        recency.add(state, value, float(t))
        assert state == pruned_set(recency, state)
        assert [v for v, _ in state] == sorted({v for v, _ in state})


def test_a_recency_set_keeps_its_newest_values_up_to_capacity() -> None:
    recency = RecencySet(window_seconds=1000.0, capacity=3)
    state: RecencyState = []
    for t, value in enumerate("dcbae"):
        recency.add(state, value, float(t))
    assert state == [["a", 3.0], ["b", 2.0], ["e", 4.0]]
    assert recency.distinct(state, 4.0) == 3


def test_a_value_older_than_the_window_is_forgotten_at_once() -> None:
    recency = RecencySet(window_seconds=60.0, capacity=64)
    state: RecencyState = []
    recency.add(state, "a", 1000.0)
    recency.add(state, "late", 900.0)  # 100 s before the newest: outside the window already
    assert not RecencySet.holds(state, "late")
    assert recency.distinct(state, 900.0) == 0
