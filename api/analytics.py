"""Analytics arithmetic for the dashboard, pure: periods, zero-filled series, KPIs with change.

The SQL lives in ``api.analytics_store``; these functions turn its rows into the answers of
``/api/analytics/*``. Money stays in integer minor units; rates are fractions (0.97 = 97 %).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Literal

Granularity = Literal["day", "week", "month"]
SummaryPeriod = Literal["24h", "7d", "30d", "90d"]
PERIOD_LENGTHS: dict[str, timedelta] = {
    "24h": timedelta(hours=24), "7d": timedelta(days=7),
    "30d": timedelta(days=30), "90d": timedelta(days=90),
}
DEFAULT_SPANS: dict[str, timedelta] = {
    "day": timedelta(days=30), "week": timedelta(weeks=12), "month": timedelta(days=365),
}
MAX_SPAN = timedelta(days=3 * 366)
EARLIEST, LATEST = date(2000, 1, 1), date(2100, 1, 1)
"""Dates outside these are refused (far ends would overflow date arithmetic: a 500, found by
the schemathesis fuzz test)."""
SERIES_FIELDS = (
    "payment_count", "gross_volume", "captured_amount", "refunded_amount", "disputed_amount",
    "fee_amount", "net_amount", "approvals", "declines", "fraud_declines", "reviews", "disputes",
    "refunds",
)
"""The summable measures of a rollup row, as the API names them."""


def period_start(day: date, granularity: Granularity) -> date:
    """The first day of the day, ISO week (Monday) or month containing ``day``."""
    if granularity == "week":
        return day - timedelta(days=day.weekday())
    if granularity == "month":
        return day.replace(day=1)
    return day


def next_period(start: date, granularity: Granularity) -> date:
    if granularity == "week":
        return start + timedelta(days=7)
    if granularity == "month":
        return (start.replace(day=28) + timedelta(days=4)).replace(day=1)
    return start + timedelta(days=1)


def revenue_range(
    granularity: Granularity, start: date | None, end: date | None, today: date
) -> tuple[date, date]:
    """[start, end) of a revenue series: defaults by granularity, start aligned to a period."""
    for given in (start, end):
        if given is not None and not EARLIEST <= given <= LATEST:
            raise ValueError(f"dates must lie between {EARLIEST} and {LATEST}")
    end = end or today + timedelta(days=1)
    start = start or end - DEFAULT_SPANS[granularity]
    if start >= end:
        raise ValueError("start must be before end")
    if end - start > MAX_SPAN:
        raise ValueError("the range may span at most three years")
    return period_start(start, granularity), end


def fill_periods(
    rows: Iterable[Mapping[str, object]], granularity: Granularity, start: date, end: date,
    currencies: Iterable[str],
) -> list[dict[str, object]]:
    """One row per period and currency in [start, end), zeros where nothing happened."""
    found = {(row["period_start"], row["currency"]): row for row in rows}
    series: list[dict[str, object]] = []
    period = start
    for _ in range(5000):  # bounded: three years of days is under 1,100 periods
        if period >= end:
            break
        for currency in sorted(currencies):
            row = found.get((period, currency), {})
            measures = {name: int(row.get(name) or 0) for name in SERIES_FIELDS}  # type: ignore[call-overload]
            series.append({"period_start": period, "currency": currency, **measures,
                           "average_ticket": average_ticket(measures)})
        period = next_period(period, granularity)
    return series


def average_ticket(measures: Mapping[str, int]) -> int:
    approvals = measures.get("approvals", 0)
    return measures.get("gross_volume", 0) // approvals if approvals else 0


@dataclass(frozen=True, slots=True)
class SummaryWindow:
    previous_start: datetime
    current_start: datetime
    end: datetime


def summary_window(period: SummaryPeriod, now: datetime) -> SummaryWindow:
    """The current period ends with the current hour; the previous one is as long, before it."""
    end = now.astimezone(UTC).replace(minute=0, second=0, microsecond=0) + timedelta(hours=1)
    length = PERIOD_LENGTHS[period]
    return SummaryWindow(end - 2 * length, end - length, end)


@dataclass(frozen=True, slots=True)
class Kpi:
    value: float
    previous: float
    change: float | None
    """(value - previous) / previous; None when the previous period had nothing."""


def kpis(current: Mapping[str, int], previous: Mapping[str, int]) -> dict[str, Kpi]:
    """The Overview's KPI cards from two periods' summed measures."""
    def figures(m: Mapping[str, int]) -> dict[str, float]:
        count = m.get("payment_count", 0)
        return {
            "gross_volume": m.get("gross_volume", 0),
            "net_revenue": m.get("net_amount", 0),
            "payments": count,
            "approval_rate": _rate(m.get("approvals", 0), count),
            "decline_rate": _rate(m.get("declines", 0), count),
            "fraud_rate": _rate(m.get("fraud_declines", 0), count),
            "dispute_rate": _rate(m.get("disputes", 0), m.get("approvals", 0)),
            "refunds": m.get("refunded_amount", 0),
            "refund_count": m.get("refunds", 0),
            "average_ticket": average_ticket(m),
        }

    now, before = figures(current), figures(previous)
    return {name: Kpi(now[name], before[name], _change(now[name], before[name])) for name in now}


def _rate(part: int, whole: int) -> float:
    return part / whole if whole else 0.0


def _change(value: float, previous: float) -> float | None:
    return (value - previous) / abs(previous) if previous else None


HISTOGRAM_LABELS = tuple(f"{10 * i}-{10 * i + 9 if i < 9 else 100}" for i in range(10))
