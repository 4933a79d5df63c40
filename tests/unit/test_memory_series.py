"""The soak's memory figures: RSS parsed from /proc, and growth measured after the warm-up
between the first and the last third of the samples (medians, so one spike does not count)."""

from __future__ import annotations

import os

from tests.faults.load import MemorySeries, group_rss_bytes, parse_rss_bytes

MIB = 2**20


def test_rss_is_read_from_the_status_text_in_bytes() -> None:
    status = "Name:\tpython\nVmHWM:\t  300000 kB\nVmRSS:\t  204800 kB\nThreads:\t4\n"
    assert parse_rss_bytes(status) == 200 * MIB
    assert parse_rss_bytes("Name:\tzombie\nState:\tZ\n") is None


def test_a_process_group_counts_this_process() -> None:
    assert group_rss_bytes(os.getpgrp()) > 0


def test_a_steady_process_shows_no_growth_whatever_its_warm_up_and_one_spike() -> None:
    samples = [(0.0, 100 * MIB), (5.0, 180 * MIB)] + [
        (10.0 + 5 * i, (200 + (50 if i == 4 else 0)) * MIB) for i in range(9)]
    figures = MemorySeries(samples).summary(warm_up_seconds=10.0)
    assert figures == {"start_mib": 100.0, "after_warm_up_mib": 200.0, "peak_mib": 250.0,
                       "end_mib": 200.0, "last_third_mib": 200.0, "growth_mib": 0.0}


def test_a_leak_shows_as_growth_between_the_first_and_the_last_third() -> None:
    samples = [(5.0 * i, (200 + i) * MIB) for i in range(12)]
    figures = MemorySeries(samples).summary(warm_up_seconds=0.0)
    assert figures["growth_mib"] == 8.0  # medians of 200..203 and 208..211
