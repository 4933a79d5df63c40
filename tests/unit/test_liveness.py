"""A consumer is stuck when records wait on a partition it owns and its committed offset has
not moved for the stall limit, while the broker answers and no dependency is away; idle, slow
and outage-bound consumers are not stuck."""

from __future__ import annotations

import pytest

from payflow.liveness import Excuse, Offsets, ProgressWatch, Stall

LIMIT = 60.0


def watch_over(observations: list[tuple[float, dict[str, Offsets]]]) -> Stall | None:
    watch = ProgressWatch(LIMIT)
    verdict = None
    for now, partitions in observations:
        verdict = watch.observe(now, partitions)
    return verdict


def test_records_waiting_at_an_offset_that_never_moves_make_a_stall_at_the_limit() -> None:
    stuck = {"risk.cards-2": Offsets(committed=40, end=95)}

    assert watch_over([(0.0, stuck), (59.0, stuck)]) is None
    assert watch_over([(0.0, stuck), (30.0, stuck), (60.0, stuck)]) == \
        Stall("risk.cards-2", offset=40, waiting=55, seconds=60.0)


def test_the_stall_names_the_partition_the_records_and_the_time() -> None:
    stall = Stall("risk.cards-2", offset=40, waiting=55, seconds=61.4)

    assert stall.describe() == \
        "partition risk.cards-2: 55 records waiting at offset 40, no progress for 61 s"


def test_a_slow_consumer_whose_offset_moves_is_not_stuck() -> None:
    observations = [(t * 10.0, {"p-0": Offsets(committed=100 + t, end=10_000)})
                    for t in range(30)]

    assert watch_over(observations) is None


def test_an_idle_consumer_with_nothing_waiting_is_not_stuck() -> None:
    idle = {"p-0": Offsets(committed=500, end=500)}

    assert watch_over([(t * 10.0, idle) for t in range(30)]) is None


def test_the_clock_starts_when_records_start_waiting_not_when_the_offset_last_moved() -> None:
    idle, busy = Offsets(committed=500, end=500), Offsets(committed=500, end=520)

    assert watch_over([(0.0, {"p": idle}), (100.0, {"p": busy}), (150.0, {"p": busy})]) is None
    assert watch_over([(0.0, {"p": idle}), (100.0, {"p": busy}), (160.0, {"p": busy})]) == \
        Stall("p", offset=500, waiting=20, seconds=60.0)


def test_progress_on_one_partition_does_not_hide_a_stall_on_another() -> None:
    def at(t: int) -> dict[str, Offsets]:
        return {"p-0": Offsets(committed=t, end=10_000), "p-1": Offsets(committed=7, end=9)}

    stall = watch_over([(float(t), at(t)) for t in range(0, 70, 5)])

    assert stall is not None and stall.partition == "p-1"


def test_the_longest_stall_is_the_one_reported() -> None:
    watch = ProgressWatch(LIMIT)
    watch.observe(0.0, {"a": Offsets(1, 5)})
    watch.observe(20.0, {"a": Offsets(1, 5), "b": Offsets(3, 9)})

    stall = watch.observe(90.0, {"a": Offsets(1, 5), "b": Offsets(3, 9)})

    assert stall == Stall("a", offset=1, waiting=4, seconds=90.0)


def test_a_partition_that_moved_to_another_worker_and_back_starts_afresh() -> None:
    waiting = {"p": Offsets(committed=7, end=9)}

    assert watch_over([(0.0, waiting), (30.0, {}), (70.0, waiting), (100.0, waiting)]) is None


def test_time_the_consumer_spends_waiting_out_an_outage_does_not_count() -> None:
    watch = ProgressWatch(LIMIT)
    waiting = {"p": Offsets(committed=7, end=9)}
    watch.observe(0.0, waiting)
    watch.observe(50.0, waiting)
    watch.pause()  # PostgreSQL away, or the broker could not be asked

    assert watch.observe(200.0, waiting) is None
    assert watch.observe(259.0, waiting) is None
    assert watch.observe(260.0, waiting) == Stall("p", offset=7, waiting=2, seconds=60.0)


def test_a_committed_offset_beyond_the_end_is_nothing_waiting() -> None:
    odd = {"p": Offsets(committed=12, end=9)}

    assert watch_over([(0.0, odd), (500.0, odd)]) is None


def test_a_watch_needs_a_positive_limit() -> None:
    with pytest.raises(AssertionError):
        ProgressWatch(0.0)


def test_a_rebalance_or_recovery_excuses_a_stall_only_up_to_its_limit() -> None:
    excuse = Excuse(limit_seconds=900)
    assert not excuse.excused(False, now=0.0)
    assert excuse.excused(True, now=10.0)  # recovery starts
    assert excuse.excused(True, now=900.0)  # a long recovery is not a hang
    assert not excuse.excused(True, now=910.0)  # past the limit it is one
    assert not excuse.excused(False, now=920.0)
    assert excuse.excused(True, now=1000.0)  # the next rebalance starts its own clock
