"""Creating a payment: tokenize, record it as pending, send it to Kafka, wait for the outcome.

The pending row holds the request message itself (the outbox for ``payments.requests``), so a
request that never reached Kafka — the broker down, the process killed — is re-sent by the
ledger's sweep and still decided. The answer is 201 once the ledger has committed the decision
within the time budget, else 202 with the pending transaction; either way the outcome is
reachable by ``GET`` and by webhook.
"""

from __future__ import annotations

import asyncio
import logging
import time
from datetime import UTC, datetime

from aiokafka.errors import KafkaError

from api import repository
from api.errors import not_found
from api.schemas import PaymentCreate, PaymentResult
from api.services import Services
from api.tokenize import tokenize
from ingest.contracts import PaymentMethodSummary, PaymentRequest, PaymentRequested, Transaction
from ingest.topics import PAYMENT_REQUESTS

log = logging.getLogger(__name__)
SOURCE = "payflow/api"
MIN_SEND_SECONDS = 0.25
"""A send is given this long even when the database took the whole budget."""
PENDING_WARNING = (
    "The decision was not ready within the time budget; the final outcome will follow by "
    "webhook and GET /v1/payments/{id}."
)


async def create_payment(
    services: Services, merchant_id: str, body: PaymentCreate, payment_id: str,
    resumed: bool = True,
) -> tuple[int, PaymentResult]:
    """``resumed=False`` says ``payment_id`` was just minted, so no row can hold it yet and the
    look-up for an attempt that crashed midway is skipped."""
    started = time.monotonic()
    request = None
    if resumed:
        async with services.autocommit() as conn:
            request = await repository.get_request(conn, merchant_id, payment_id)
    if request is None:  # a new payment (else: resuming an attempt that crashed)
        request = await _record_pending(services, merchant_id, body, payment_id)
    transaction = None
    budget = services.settings.decision_budget_seconds
    with services.replies.expecting(payment_id) as reply:
        if await _send_request(services, merchant_id, request,
                               max(budget - (time.monotonic() - started), MIN_SEND_SECONDS)):
            outcome = await reply.wait_until(started + budget)
            transaction = outcome.transaction if outcome else None
    if transaction is None:
        async with services.autocommit() as conn:
            transaction = await repository.get_transaction(conn, merchant_id, payment_id)
        assert transaction is not None, payment_id
    return _result(transaction)


def _result(transaction: Transaction) -> tuple[int, PaymentResult]:
    pending = transaction.status == "pending"
    return (202 if pending else 201), PaymentResult(
        transaction=transaction,
        fraud_score=transaction.fraud_score,
        warnings=[PENDING_WARNING] if pending else [],
    )


async def _record_pending(
    services: Services, merchant_id: str, body: PaymentCreate, payment_id: str
) -> PaymentRequest:
    # The transaction shows who paid; the IP address and device travel only to risk.
    customer = (body.customer.model_dump(include={"id", "email"}, exclude_none=True)
                if body.customer else None)
    if body.payment_method is not None:
        method, ciphertext = tokenize(
            body.payment_method, vault=services.vault,
            fingerprint_key=services.fingerprint_key, today=datetime.now(UTC).date(),
            param="payment_method",
        )
        request = _request(body, payment_id, method, services.replies.channel)
        async with services.autocommit() as conn:
            await repository.insert_payment_with_method(
                conn, merchant_id, request, customer, ciphertext)
        return request
    assert body.payment_method_id is not None
    async with services.autocommit() as conn, conn.transaction():
        found = await repository.get_payment_method(conn, merchant_id, body.payment_method_id)
        if found is None:
            raise not_found("payment_method", body.payment_method_id)
        request = _request(body, payment_id, found, services.replies.channel)
        await repository.insert_payment(conn, merchant_id, request, customer)
    return request


def _request(
    body: PaymentCreate, payment_id: str, method: PaymentMethodSummary, reply_to: str
) -> PaymentRequest:
    customer = body.customer
    return PaymentRequest(
        payment_id=payment_id,
        amount=body.amount,
        currency=body.currency,
        capture=body.capture,
        payment_method=method,
        customer_id=customer.id if customer else None,
        ip_address=str(customer.ip_address) if customer and customer.ip_address else None,
        device_id=customer.device_id if customer else None,
        description=body.description,
        metadata=body.metadata,
        reply_to=reply_to,
    )


async def _send_request(services: Services, merchant_id: str, request: PaymentRequest,
                        timeout_seconds: float) -> bool:
    """Send the request to Kafka within ``timeout_seconds`` (what is left of the budget);
    if Kafka is unreachable or slower, the outbox sweep sends it later.

    Bounded here because the producer's own limits are not: with the broker down, a send
    measured up to 30 s (waiting for metadata and a producer id) where the budget is 1.5 s. A
    send given up may still reach Kafka; the request is then decided twice, which the ledger
    applies once, as it does for the sweep's re-sends."""
    message = PaymentRequested(
        source=SOURCE, merchant_id=merchant_id, subject=request.payment_id, data=request
    )
    topic = PAYMENT_REQUESTS.name_for(services.settings.topic_prefix)
    if not services.kafka_breaker.allows(time.monotonic()):
        return False  # a send failed a moment ago (api.breaker): the sweep sends this one
    try:
        async with asyncio.timeout(timeout_seconds):
            await services.producer.send_and_wait(topic, message.encode(), key=message.key())
    except (KafkaError, TimeoutError) as error:
        services.kafka_breaker.failed(time.monotonic())
        log.warning("payment %s left for the outbox sweep: %r", request.payment_id, error)
        return False
    return True


def raise_if_missing(transaction: Transaction | None, payment_id: str) -> Transaction:
    if transaction is None:
        raise not_found("payment", payment_id)
    return transaction


__all__ = ["create_payment", "raise_if_missing"]
