"""Replaying imported history through the stream worker: the messages, in event-time order.

``payflow replay`` turns each imported payment into the ``payment.requested`` message the API
would have sent at the time, and each fraud label into the ``dispute.created`` event the ledger
publishes when a payment is disputed, merged in event-time order (a label before a payment of
the same instant, as ``models.history.replay`` orders them). When each may be sent is
``ingest.replay_schedule``'s business; the Kafka and database I/O is ``payflow.replay``'s.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from ingest.contracts import (
    CardSummary,
    DisputeEvent,
    DisputeObject,
    PaymentMethodSummary,
    PaymentRequest,
    PaymentRequested,
)
from ingest.history import HistoricalPayment

SOURCE = "payflow/replay"
LABEL = "label:"
"""Prefix of a label's item id (a payment's item id is the payment id)."""


def request_message(payment: HistoricalPayment) -> PaymentRequested:
    """The request the API would have sent: the card travels as its id (the fingerprint a live
    payment carries); brand, last4 and expiry are placeholders, which no feature reads."""
    card = CardSummary(brand="unknown", funding="unknown", last4="0000", exp_month=12,
                       exp_year=2099, fingerprint=payment.card)
    method = PaymentMethodSummary(id=f"pm_{payment.payment_id}", type="card", card=card)
    request = PaymentRequest(
        payment_id=payment.payment_id, amount=payment.amount_minor, currency=payment.currency,
        payment_method=method, customer_id=payment.customer_id,
        ip_address=payment.ip_address, device_id=payment.device_id, ip_country=payment.country,
        metadata={"source": "payflow-replay"},
    )
    return PaymentRequested(source=SOURCE, merchant_id=payment.merchant_id,
                            subject=payment.payment_id, time=payment.occurred_at, data=request)


def dispute_message(payment: HistoricalPayment) -> DisputeEvent:
    """The fraud label as the ledger publishes it: a dispute at the time the label arrived."""
    assert payment.is_fraud and payment.labelled_at is not None, payment.payment_id
    dispute = DisputeObject(
        id=f"dp_{payment.payment_id}", payment_id=payment.payment_id,
        merchant_id=payment.merchant_id, amount=payment.amount_minor,
        currency=payment.currency, reason="fraudulent", card_fingerprint=payment.card,
        payment_created_at=payment.occurred_at, created_at=payment.labelled_at,
    )
    return DisputeEvent(source=SOURCE, merchant_id=payment.merchant_id,
                        subject=payment.payment_id, time=payment.labelled_at, data=dispute)


@dataclass(frozen=True)
class ReplayItem:
    """One message to replay, at its event time."""

    id: str
    """The payment id, or ``label:`` + the payment id."""
    time_seconds: float
    message: PaymentRequested | DisputeEvent


def replay_items(payments: Iterable[HistoricalPayment],
                 labels: Iterable[HistoricalPayment]) -> Iterator[ReplayItem]:
    """Payments (in occurred_at order) and fraud labels (in labelled_at order) merged by event
    time; at the same instant the label comes first (it was known then)."""
    def requests() -> Iterator[tuple[float, int, ReplayItem]]:
        for p in payments:
            t = p.occurred_at.timestamp()
            yield t, 1, ReplayItem(p.payment_id, t, request_message(p))

    def disputes() -> Iterator[tuple[float, int, ReplayItem]]:
        for p in labels:
            assert p.labelled_at is not None, p.payment_id
            t = p.labelled_at.timestamp()
            yield t, 0, ReplayItem(LABEL + p.payment_id, t, dispute_message(p))

    for _, _, item in heapq.merge(disputes(), requests(), key=lambda e: (e[0], e[1])):
        yield item
