"""Read-only ledger views: a payment's timeline and ledger entries, balances, payouts with their
settlement reports, and the event history (``/v1`` for API clients, ``/api`` for the dashboard,
same handlers)."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Any, Generic, Literal, TypeVar

from fastapi import APIRouter, Query
from fastapi.responses import Response
from pydantic import BaseModel

from api import ledger_reads
from api.deps import MerchantId, ServicesDep
from api.errors import not_found

router = APIRouter(tags=["ledger"])
ERRORS: dict[int | str, dict[str, Any]] = {401: {"description": "Not authenticated"},
                                           404: {"description": "No such object"}}


class TimelineItem(BaseModel):
    id: str
    type: str
    created_at: datetime
    actor: str
    data: dict[str, Any]


class LedgerEntry(BaseModel):
    id: int
    entry_id: int
    kind: str
    account: str
    direction: Literal["debit", "credit"]
    amount: int
    currency: str
    created_at: datetime


class Balance(BaseModel):
    currency: str
    pending: int
    available: int
    in_transit: int
    paid_out: int
    held: int


class Payout(BaseModel):
    id: str
    amount: int
    currency: str
    status: Literal["pending", "paid"]
    settlement_date: date
    created_at: datetime
    paid_at: datetime | None


class Event(BaseModel):
    id: str
    type: str
    created_at: datetime
    data: dict[str, Any]


T = TypeVar("T")


class ListOf(BaseModel, Generic[T]):
    data: list[T]
    has_more: bool = False


async def _require_payment(services: ServicesDep, merchant_id: str, payment_id: str) -> None:
    async with services.pool.connection() as conn:
        if not await ledger_reads.payment_exists(conn, merchant_id, payment_id):
            raise not_found("payment", payment_id)


@router.get("/v1/payments/{payment_id}/timeline", response_model=ListOf[TimelineItem],
            responses=ERRORS)
async def timeline(payment_id: str, merchant_id: MerchantId,
                   services: ServicesDep) -> ListOf[TimelineItem]:
    """Every state change and human action on the payment, oldest first."""
    await _require_payment(services, merchant_id, payment_id)
    async with services.pool.connection() as conn:
        rows = await ledger_reads.timeline(conn, merchant_id, payment_id)
    return ListOf[TimelineItem](data=[TimelineItem(**row) for row in rows])


@router.get("/v1/payments/{payment_id}/ledger_entries", response_model=ListOf[LedgerEntry],
            responses=ERRORS)
async def ledger_entries(payment_id: str, merchant_id: MerchantId,
                         services: ServicesDep) -> ListOf[LedgerEntry]:
    """The payment's postings: every debit and credit its capture, refunds and disputes made."""
    await _require_payment(services, merchant_id, payment_id)
    async with services.pool.connection() as conn:
        rows = await ledger_reads.ledger_entries(conn, merchant_id, payment_id)
    return ListOf[LedgerEntry](data=[LedgerEntry(**row) for row in rows])


@router.get("/v1/balance", response_model=ListOf[Balance], responses=ERRORS)
@router.get("/api/balances", response_model=ListOf[Balance], responses=ERRORS)
async def balances(merchant_id: MerchantId, services: ServicesDep) -> ListOf[Balance]:
    """Balances per currency: pending (not yet settled), available, in transit, paid out."""
    async with services.pool.connection() as conn:
        rows = await ledger_reads.balances(conn, merchant_id)
    return ListOf[Balance](data=[Balance(**row) for row in rows])


@router.get("/v1/payouts", response_model=ListOf[Payout], responses=ERRORS)
@router.get("/api/payouts", response_model=ListOf[Payout], responses=ERRORS)
async def payouts(merchant_id: MerchantId, services: ServicesDep,
                  limit: Annotated[int, Query(ge=1, le=100)] = 25) -> ListOf[Payout]:
    async with services.pool.connection() as conn:
        rows = await ledger_reads.payouts(conn, merchant_id, limit)
    return ListOf[Payout](data=[Payout(**row) for row in rows])


@router.get("/v1/payouts/{payout_id}/report.csv", responses=ERRORS,
            response_class=Response)
@router.get("/api/payouts/{payout_id}/report.csv", responses=ERRORS,
            response_class=Response)
async def payout_report(payout_id: str, merchant_id: MerchantId,
                        services: ServicesDep) -> Response:
    """The settlement report behind a payout: every payment, refund, fee and dispute in it."""
    async with services.pool.connection() as conn:
        report = await ledger_reads.payout_report(conn, merchant_id, payout_id)
    if report is None:
        raise not_found("payout", payout_id)
    return Response(report, media_type="text/csv", headers={
        "Content-Disposition": f'attachment; filename="{payout_id}.csv"'})


@router.get("/v1/events", response_model=ListOf[Event], responses=ERRORS)
async def events(
    merchant_id: MerchantId, services: ServicesDep,
    limit: Annotated[int, Query(ge=1, le=100)] = 25,
    starting_after: Annotated[str | None, Query(
        min_length=1, max_length=64,
        description="id of the last event of the previous page")] = None,
    type: Annotated[str | None, Query(max_length=100, pattern=r"^[a-z_.]+$")] = None,
) -> ListOf[Event]:
    """The merchant's events, newest first: the same objects webhooks deliver."""
    async with services.pool.connection() as conn:
        rows = await ledger_reads.events(conn, merchant_id, limit + 1, starting_after, type)
    data = [Event(id=r["id"], type=r["type"].rsplit(".", 1)[0], created_at=r["created_at"],
                  data=r["data"]) for r in rows[:limit]]
    return ListOf[Event](data=data, has_more=len(rows) > limit)
