"""``/v1/payments`` and ``/v1/payment_methods``: thin handlers around ``api.payments``."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query
from fastapi.responses import Response

from api import repository
from api.deps import IdempotencyKey, MerchantId, ServicesDep
from api.errors import ApiError
from api.idempotency import run_idempotent
from api.ids import new_id
from api.payments import create_payment, raise_if_missing
from api.schemas import PaymentCreate, PaymentList, PaymentMethodIn, PaymentResult
from api.tokenize import tokenize
from ingest.contracts import PaymentMethodSummary, Transaction

router = APIRouter(prefix="/v1", tags=["payments"])

ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"description": "Malformed request (bad JSON, bad query parameter)"},
    401: {"description": "Missing or invalid API key"},
    404: {"description": "No such object for this merchant"},
    409: {"description": "Invalid state, or the same Idempotency-Key is in progress"},
    422: {"description": "Invalid parameters, or Idempotency-Key reused with another body"},
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
    return await run_idempotent(
        services, merchant_id, key, "POST", "/v1/payments", body,
        lambda: new_id("pay"),
        lambda payment_id: create_payment(services, merchant_id, body, payment_id),
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
    page: Annotated[int, Query(ge=1, le=100_000)] = 1,
    limit: Annotated[int, Query(ge=1, le=100)] = 25,
) -> PaymentList:
    """The merchant's payments, newest first."""
    async with services.pool.connection() as conn:
        rows, total = await repository.list_transactions(
            conn, merchant_id, limit=limit, offset=(page - 1) * limit
        )
    return PaymentList(data=rows, total=total, page=page, limit=limit,
                       has_more=page * limit < total)


@router.post("/payment_methods", status_code=201, response_model=PaymentMethodSummary,
             responses=ERRORS)
async def create_payment_method(
    body: PaymentMethodIn, merchant_id: MerchantId, services: ServicesDep,
    key: IdempotencyKey = None,
) -> Response:
    """Tokenize a card or bank account; the number is kept only encrypted."""
    from datetime import UTC, datetime

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


__all__ = ["ApiError", "router"]
