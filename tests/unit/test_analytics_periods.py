"""The dashboard's analytics arithmetic: periods, zero-filled series, KPIs and their change."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from api.analytics import fill_periods, kpis, period_start, revenue_range, summary_window


def test_weeks_start_on_monday_and_months_on_the_first() -> None:
    assert period_start(date(2025, 3, 6), "week") == date(2025, 3, 3)
    assert period_start(date(2025, 3, 6), "month") == date(2025, 3, 1)
    assert period_start(date(2025, 3, 6), "day") == date(2025, 3, 6)


def test_a_revenue_range_defaults_by_granularity_and_refuses_nonsense() -> None:
    today = date(2025, 3, 6)
    assert revenue_range("day", None, None, today) == (date(2025, 2, 5), date(2025, 3, 7))
    assert revenue_range("month", date(2025, 1, 15), date(2025, 3, 1), today)[0] == date(
        2025, 1, 1)
    with pytest.raises(ValueError):
        revenue_range("day", date(2025, 3, 6), date(2025, 3, 6), today)
    with pytest.raises(ValueError):
        revenue_range("day", date(2015, 1, 1), None, today)


def test_a_series_has_every_period_and_currency_with_zeros_where_nothing_happened() -> None:
    rows = [{"period_start": date(2025, 1, 1), "currency": "USD", "gross_volume": 900,
             "approvals": 3, "payment_count": 4}]
    series = fill_periods(rows, "month", date(2025, 1, 1), date(2025, 4, 1), ["USD", "EUR"])
    assert [(p["period_start"], p["currency"]) for p in series] == [
        (date(2025, m, 1), c) for m in (1, 2, 3) for c in ("EUR", "USD")]
    january_usd = series[1]
    assert january_usd["gross_volume"] == 900 and january_usd["average_ticket"] == 300
    assert series[2]["gross_volume"] == 0


def test_kpis_compare_with_the_previous_period() -> None:
    result = kpis({"payment_count": 10, "approvals": 9, "declines": 1, "fraud_declines": 1,
                   "gross_volume": 9000, "net_amount": 8000},
                  {"payment_count": 5, "approvals": 5, "gross_volume": 4500})
    assert result["payments"].value == 10 and result["payments"].change == 1.0
    assert result["approval_rate"].value == 0.9 and result["fraud_rate"].value == 0.1
    ticket = result["average_ticket"]
    assert ticket.value == 1000 and ticket.change == pytest.approx(1000 / 900 - 1)
    assert result["net_revenue"].change is None  # nothing before: no percentage


def test_a_summary_window_ends_with_the_current_hour() -> None:
    window = summary_window("24h", datetime(2025, 3, 6, 10, 30, tzinfo=UTC))
    assert window.end == datetime(2025, 3, 6, 11, tzinfo=UTC)
    assert window.current_start == datetime(2025, 3, 5, 11, tzinfo=UTC)
    assert window.previous_start == datetime(2025, 3, 4, 11, tzinfo=UTC)


def test_dates_at_the_far_ends_of_the_calendar_are_refused_not_a_server_error() -> None:
    import pytest

    for start, end in ((None, date(1, 1, 2)), (date(9999, 12, 31), None)):
        with pytest.raises(ValueError, match="between"):
            revenue_range("week", start, end, date(2026, 11, 26))
