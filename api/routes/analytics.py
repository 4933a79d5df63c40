"""``/api/analytics/*``: the dashboard's revenue, KPIs and risk figures, from the rollups.

Served from the materialized tables that ``payflow analytics`` keeps current, so each answer
costs a few thousand pre-aggregated rows however many payments there are. Scoped to the
request's merchant like everything else: another merchant's figures are never visible.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query
from pydantic import BaseModel

from api import analytics_store as store
from api.analytics import (
    HISTOGRAM_LABELS,
    Granularity,
    Kpi,
    SummaryPeriod,
    fill_periods,
    kpis,
    revenue_range,
    summary_window,
)
from api.deps import MerchantId, ServicesDep
from api.errors import ApiError
from ingest.money import normalize_currency

router = APIRouter(prefix="/api/analytics", tags=["analytics"])
ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"description": "Bad parameter (unknown currency, start after end, range too long)"},
    401: {"description": "Not logged in and no API key"},
}
CurrencyParam = Annotated[str | None, Query(min_length=3, max_length=3,
                                            description="ISO 4217; any case")]


class RevenuePoint(BaseModel):
    period_start: date
    currency: str
    payment_count: int
    gross_volume: int
    captured_amount: int
    refunded_amount: int
    disputed_amount: int
    fee_amount: int
    net_amount: int
    approvals: int
    declines: int
    fraud_declines: int
    reviews: int
    disputes: int
    refunds: int
    average_ticket: int


class Revenue(BaseModel):
    granularity: Granularity
    start: date
    end: date
    """Exclusive."""
    currencies: list[str]
    data: list[RevenuePoint]


class Summary(BaseModel):
    currency: str | None
    period: SummaryPeriod
    current_start: datetime
    previous_start: datetime
    end: datetime
    currencies: list[str]
    kpis: dict[str, Kpi]


class HistogramBucket(BaseModel):
    scores: str
    payments: int


class FlagCount(BaseModel):
    flag: str
    payments: int


class DecisionPoint(BaseModel):
    """Risk outcomes of one UTC day, all currencies together (counts, not money)."""

    day: date
    payment_count: int
    approvals: int
    declines: int
    fraud_declines: int
    reviews: int
    disputes: int


class Risk(BaseModel):
    start: date
    end: date
    histogram: list[HistogramBucket]
    decisions: list[DecisionPoint]
    top_flags: list[FlagCount]


def _currency(value: str | None) -> str | None:
    if value is None:
        return None
    try:
        return normalize_currency(value)
    except ValueError as error:
        raise ApiError(400, "parameter_invalid", str(error), param="currency") from error


def _range(granularity: Granularity, start: date | None, end: date | None) -> tuple[date, date]:
    try:
        return revenue_range(granularity, start, end, datetime.now(UTC).date())
    except ValueError as error:
        raise ApiError(400, "parameter_invalid", str(error), param="start") from error


@router.get("/currencies", responses=ERRORS)
async def list_currencies(merchant_id: MerchantId, services: ServicesDep) -> dict[str, list[str]]:
    """Currencies the merchant has figures in, busiest first."""
    async with services.pool.connection() as conn:
        return {"data": await store.currencies(conn, merchant_id)}


@router.get("/revenue", response_model=Revenue, responses=ERRORS)
async def revenue(
    merchant_id: MerchantId, services: ServicesDep, granularity: Granularity = "day",
    currency: CurrencyParam = None, start: date | None = None, end: date | None = None,
) -> Revenue:
    """Volume, captures, refunds, fees and net per day, ISO week or month (UTC), per currency;
    periods without payments are zeros. ``end`` is exclusive."""
    code = _currency(currency)
    first, last = _range(granularity, start, end)
    async with services.pool.connection() as conn:
        rows = await store.revenue_rows(conn, merchant_id, granularity, first, last, code)
        known = [code] if code else await store.currencies(conn, merchant_id)
    series = fill_periods(rows, granularity, first, last, known)
    return Revenue(granularity=granularity, start=first, end=last, currencies=known,
                   data=[RevenuePoint.model_validate(point) for point in series])


@router.get("/summary", response_model=Summary, responses=ERRORS)
async def summary(
    merchant_id: MerchantId, services: ServicesDep, currency: CurrencyParam = None,
    period: SummaryPeriod = "30d",
) -> Summary:
    """KPIs of the last ``period`` (ending with the current hour) and their change against the
    period before. Without ``currency``: the merchant's busiest currency."""
    window = summary_window(period, datetime.now(UTC))
    async with services.pool.connection() as conn:
        known = await store.currencies(conn, merchant_id)
        code = _currency(currency) or (known[0] if known else None)
        current: dict[str, int] = {}
        previous: dict[str, int] = {}
        if code is not None:
            current, previous = await store.period_totals(
                conn, merchant_id, code, window.previous_start, window.current_start, window.end
            )
    return Summary(currency=code, period=period, current_start=window.current_start,
                   previous_start=window.previous_start, end=window.end, currencies=known,
                   kpis=kpis(current, previous))


@router.get("/risk", response_model=Risk, responses=ERRORS)
async def risk(
    merchant_id: MerchantId, services: ServicesDep, currency: CurrencyParam = None,
    start: date | None = None, end: date | None = None,
    flags: Annotated[int, Query(ge=1, le=50)] = 10,
) -> Risk:
    """Fraud-score distribution, decisions per day and the most frequent risk flags."""
    code = _currency(currency)
    first, last = _range("day", start, end)
    async with services.pool.connection() as conn:
        counts = await store.histogram(conn, merchant_id, first, last, code)
        rows = await store.revenue_rows(conn, merchant_id, "day", first, last, code)
        flag_rows = await store.top_flags(conn, merchant_id, first, last, flags)
    currencies = {str(row["currency"]) for row in rows} or {"XXX"}
    decisions = _decisions_per_day(fill_periods(rows, "day", first, last, currencies))
    return Risk(
        start=first, end=last,
        histogram=[HistogramBucket(scores=label, payments=count)
                   for label, count in zip(HISTOGRAM_LABELS, counts, strict=True)],
        decisions=decisions,
        top_flags=[FlagCount(**row) for row in flag_rows],
    )


def _decisions_per_day(series: list[dict[str, object]]) -> list[DecisionPoint]:
    """Add the currencies' counts up per day."""
    names = ("payment_count", "approvals", "declines", "fraud_declines", "reviews", "disputes")
    days: dict[object, dict[str, int]] = {}
    for point in series:
        totals = days.setdefault(point["period_start"], dict.fromkeys(names, 0))
        for name in names:
            totals[name] += int(point[name])  # type: ignore[call-overload]
    return [DecisionPoint(day=day, **totals) for day, totals in days.items()]
