"""Public events for webhook tests, built from the real contracts."""

from __future__ import annotations

from datetime import UTC, datetime

from ingest.contracts import CardSummary, PaymentEvent, PaymentMethodSummary, Transaction


def transaction(merchant_id: str, payment_id: str = "pay_test", amount: int = 2500) -> Transaction:
    now = datetime.now(UTC)
    return Transaction(
        id=payment_id, merchant_id=merchant_id, amount=amount, currency="USD",
        captured_amount=amount, refunded_amount=0, status="captured", fraud_score=12,
        risk_level="low", fraud_flags=(), decline_code=None, processor_ref="psr_1",
        payment_method=PaymentMethodSummary(
            id="pm_1", type="card",
            card=CardSummary(brand="visa", funding="credit", last4="4242", exp_month=12,
                             exp_year=2030, fingerprint="f" * 32)),
        description="order 1", customer=None, metadata={"order": "1"},
        created_at=now, updated_at=now,
    )


def captured(merchant_id: str, payment_id: str = "pay_test", amount: int = 2500) -> PaymentEvent:
    """A ``payment.captured.v1`` event of ``merchant_id``, happening now."""
    return PaymentEvent(type="payment.captured.v1", source="tests", merchant_id=merchant_id,
                        subject=payment_id, data=transaction(merchant_id, payment_id, amount))
