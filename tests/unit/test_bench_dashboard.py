"""The dashboard benchmark's pure parts: the weighted choices its set-based load makes in SQL,
and how a page's time is summed from its calls."""

from __future__ import annotations

import re

from bench.dashboard import CURRENCIES, STATUSES, page_totals, weighted_case


def test_weighted_case_splits_the_unit_interval_by_cumulative_weight() -> None:
    assert weighted_case("u", [("a", 1), ("b", 2), ("c", 1)]) == (
        "CASE WHEN u < 0.25 THEN 'a' WHEN u < 0.75 THEN 'b' ELSE 'c' END")


def test_weighted_case_of_the_benchmark_mixes_keeps_every_choice_in_order() -> None:
    for choices in (STATUSES, CURRENCIES):
        sql = weighted_case("x", choices)
        bounds = [float(b) for b in re.findall(r"x < ([0-9.]+)", sql)]
        assert bounds == sorted(bounds) and bounds[0] > 0 and bounds[-1] < 1
        assert re.findall(r"'(\w+)'", sql) == [choice for choice, _ in choices]


def test_a_page_sums_the_worst_of_cold_and_warm_of_its_calls_and_skips_server_errors() -> None:
    calls = [("Overview", "a", 200, 10.0, 4.0, 12.0), ("Overview", "b", 200, 30.0, 5.0, 6.0),
             ("Webhooks", "c", 404, 9.0, 7.0, 8.0), ("Webhooks", "d", 200, 1.0, 2.0, 3.0),
             ("Risk", "e", 500, 99.0, 99.0, 99.0)]
    assert page_totals(calls) == {"Overview": 42.0, "Webhooks": 12.0}
