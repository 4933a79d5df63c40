"""``/v1/payments`` and ``/v1/payment_methods``: thin handlers around the services."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Body, Query
from fastapi.responses import Response

from api import repository
from api.commands import run_command
from api.deps import IdempotencyKey, MerchantId, ServicesDep
from api.idempotency import run_idempotent
from api.ids import new_id
from api.listing import PaymentFilters, parse_filters
from api.payments import create_payment, raise_if_missing
from api.schemas import (
    CaptureIn,
    DisputeIn,
    EmptyIn,
    PaymentCreate,
    PaymentList,
    PaymentMethodIn,
    PaymentResult,
    RefundIn,
)
from api.tokenize import tokenize
from ingest.contracts import (
    Capture,
    CapturePayment,
    DisputeCommand,
    DisputePayment,
    PaymentMethodSummary,
    RefundCommand,
    RefundPayment,
    Transaction,
    Void,
    VoidPayment,
)

router = APIRouter(prefix="/v1", tags=["payments"])
Endpoint = Callable[..., Awaitable[Response]]
SOURCE = "payflow/api"

ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"description": "Malformed request (bad JSON, bad query parameter)"},
    401: {"description": "Missing or invalid API key"},
    404: {"description": "No such object for this merchant"},
    409: {"description": "Invalid state, or the same Idempotency-Key is in progress"},
    422: {"description": "Invalid parameters, or Idempotency-Key reused with another body"},
    503: {"description": "A dependency is unavailable; retry after Retry-After seconds"},
}
COMMAND_RESPONSES: dict[int | str, dict[str, Any]] = {
    202: {"model": Transaction, "description": "Accepted; applied shortly (budget ran out)"},
    **ERRORS,
}


@router.post(
    "/payments",
    status_code=201,
    response_model=PaymentResult,
    responses={202: {"model": PaymentResult, "description": "Accepted; decision pending"},
               **ERRORS},
)
async def create(
    body: PaymentCreate, merchant_id: MerchantId, services: ServicesDep, key: IdempotencyKey = None
) -> Response:
    """Create a payment; answers once decided (201) or when the time budget ends (202)."""
    minted = new_id("pay")  # any other id is a crashed attempt's, taken over by this retry
    return await run_idempotent(
        services, merchant_id, key, "POST", "/v1/payments", body,
        lambda: minted,
        lambda payment_id: create_payment(services, merchant_id, body, payment_id,
                                          resumed=payment_id != minted),
    )


@router.get("/payments/{payment_id}", response_model=Transaction, responses=ERRORS)
async def get_one(payment_id: str, merchant_id: MerchantId, services: ServicesDep) -> Transaction:
    async with services.pool.connection() as conn:
        transaction = await repository.get_transaction(conn, merchant_id, payment_id)
    return raise_if_missing(transaction, payment_id)


@router.get("/payments", response_model=PaymentList, responses=ERRORS)
async def list_payments(
    merchant_id: MerchantId,
    services: ServicesDep,
    filters: Annotated[PaymentFilters, Query()],
) -> PaymentList:
    """The merchant's payments, newest first, filtered; page by ``page`` or ``starting_after``."""
    parsed = parse_filters(filters)
    async with services.pool.connection() as conn:
        rows, total, has_more = await repository.list_transactions(conn, merchant_id, parsed)
    return PaymentList(data=rows, total=total, page=filters.page, limit=filters.limit,
                       has_more=has_more)


def _command_route(path: str, summary: str) -> Callable[[Endpoint], Endpoint]:
    return router.post(path, response_model=Transaction, responses=COMMAND_RESPONSES,
                       summary=summary)


@_command_route("/payments/{payment_id}/capture", "Capture all or part of an authorization")
async def capture(
    payment_id: str, merchant_id: MerchantId, services: ServicesDep,
    body: Annotated[CaptureIn | None, Body()] = None, key: IdempotencyKey = None,
) -> Response:
    params = body or CaptureIn()

    def build(command_id: str, reply_to: str) -> CapturePayment:
        return CapturePayment(id=command_id, source=SOURCE, merchant_id=merchant_id,
                              subject=payment_id, data=Capture(
                                  payment_id=payment_id, amount=params.amount,
                                  reply_to=reply_to))

    return await _run(services, merchant_id, payment_id, key, "capture", params, "cap", build)


@_command_route("/payments/{payment_id}/void", "Release an authorization")
async def void(
    payment_id: str, merchant_id: MerchantId, services: ServicesDep,
    body: Annotated[EmptyIn | None, Body()] = None, key: IdempotencyKey = None,
) -> Response:
    def build(command_id: str, reply_to: str) -> VoidPayment:
        return VoidPayment(id=command_id, source=SOURCE, merchant_id=merchant_id,
                           subject=payment_id,
                           data=Void(payment_id=payment_id, reply_to=reply_to))

    return await _run(services, merchant_id, payment_id, key, "void", body or EmptyIn(), "vd",
                      build)


@_command_route("/payments/{payment_id}/refund", "Refund all or part of a captured payment")
async def refund(
    payment_id: str, merchant_id: MerchantId, services: ServicesDep,
    body: Annotated[RefundIn | None, Body()] = None, key: IdempotencyKey = None,
) -> Response:
    params = body or RefundIn()

    def build(command_id: str, reply_to: str) -> RefundPayment:
        return RefundPayment(id=command_id, source=SOURCE, merchant_id=merchant_id,
                             subject=payment_id, data=RefundCommand(
                                 payment_id=payment_id, refund_id=command_id,
                                 amount=params.amount, reason=params.reason,
                                 reply_to=reply_to))

    return await _run(services, merchant_id, payment_id, key, "refund", params, "re", build)


@_command_route("/payments/{payment_id}/dispute", "Sandbox: open a chargeback")
async def dispute(
    payment_id: str, body: DisputeIn, merchant_id: MerchantId, services: ServicesDep,
    key: IdempotencyKey = None,
) -> Response:
    def build(command_id: str, reply_to: str) -> DisputePayment:
        return DisputePayment(id=command_id, source=SOURCE, merchant_id=merchant_id,
                              subject=payment_id, data=DisputeCommand(
                                  payment_id=payment_id, dispute_id=command_id,
                                  reason=body.reason, reply_to=reply_to))

    return await _run(services, merchant_id, payment_id, key, "dispute", body, "dp", build)


async def _run(services: ServicesDep, merchant_id: str, payment_id: str, key: str | None,
               action: str, params: Any, id_prefix: str, build: Any) -> Response:
    return await run_idempotent(
        services, merchant_id, key, "POST", f"/v1/payments/{payment_id}/{action}", params,
        lambda: new_id(id_prefix),
        lambda command_id: run_command(services, merchant_id, payment_id,
                                       lambda reply_to: build(command_id, reply_to)),
    )


@router.post("/payment_methods", status_code=201, response_model=PaymentMethodSummary,
             responses=ERRORS)
async def create_payment_method(
    body: PaymentMethodIn, merchant_id: MerchantId, services: ServicesDep,
    key: IdempotencyKey = None,
) -> Response:
    """Tokenize a card or bank account; the number is kept only encrypted."""

    async def action(_: str) -> tuple[int, PaymentMethodSummary]:
        summary, ciphertext = tokenize(
            body, vault=services.vault, fingerprint_key=services.fingerprint_key,
            today=datetime.now(UTC).date(), param="",
        )
        async with services.pool.connection() as conn:
            await repository.insert_payment_method(conn, merchant_id, summary, ciphertext)
        return 201, summary

    return await run_idempotent(
        services, merchant_id, key, "POST", "/v1/payment_methods", body,
        lambda: new_id("pm"), action,
    )


__all__ = ["router"]
