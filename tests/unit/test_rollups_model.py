"""What each public event adds to the analytics rollups (pure, no Kafka or SQL)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from ingest.contracts import (
    DisputeEvent,
    DisputeObject,
    PaymentEvent,
    RefundEvent,
    RefundObject,
    Transaction,
)
from streams.rollups.model import (
    BatchRollup,
    RollupKey,
    buckets,
    contribution,
    review_contribution,
    score_bucket,
)

AT = datetime(2025, 3, 4, 15, 42, 7, tzinfo=UTC)
HOUR = datetime(2025, 3, 4, 15, tzinfo=UTC)
DAY = datetime(2025, 3, 4, tzinfo=UTC)


def transaction(**changes: Any) -> Transaction:
    card = {"brand": "visa", "funding": "credit", "last4": "4242", "exp_month": 12,
            "exp_year": 2030, "fingerprint": "fp"}
    fields: dict[str, Any] = {
        "id": "pay_1", "merchant_id": "mer_1", "amount": 2500, "currency": "EUR",
        "captured_amount": 0, "refunded_amount": 0, "status": "authorized", "fraud_score": 42,
        "risk_level": "medium", "fraud_flags": ("High transaction velocity",),
        "decline_code": None, "processor_ref": "psr_1",
        "payment_method": {"id": "pm_1", "type": "card", "card": card},
        "description": None, "customer": None, "metadata": {}, "created_at": AT,
        "updated_at": AT,
    }
    fields.update(changes)
    return Transaction.model_validate(fields)


def event(kind: str, **changes: Any) -> PaymentEvent:
    return PaymentEvent(type=kind, source="test", merchant_id="mer_1", subject="pay_1",  # type: ignore[arg-type]
                        time=AT, data=transaction(**changes))


def rollup_of(*events: Any) -> BatchRollup:
    return BatchRollup().extend(c for c in map(contribution, events) if c is not None)


def test_an_approved_and_captured_card_payment_counts_once_with_its_volume() -> None:
    batch = rollup_of(event("payment.authorized.v1"),
                      event("payment.captured.v1", status="captured", captured_amount=2500))
    for granularity, start in (("hour", HOUR), ("day", DAY)):
        measures = batch.rollups[RollupKey("mer_1", "EUR", granularity, start)]
        assert (measures.payment_count, measures.approvals, measures.declines) == (1, 1, 0)
        assert measures.gross_volume == 2500 and measures.captured_amount == 2500
        assert measures.score_histogram == [0, 0, 0, 0, 1, 0, 0, 0, 0, 0]
    assert batch.flags == {("mer_1", DAY.date(), "High transaction velocity"): 1}


def test_a_fraud_decline_counts_as_decided_declined_and_fraudulent_without_volume() -> None:
    batch = rollup_of(event("payment.failed.v1", status="failed", decline_code="fraudulent",
                            fraud_score=100, risk_level="high"))
    measures = batch.rollups[RollupKey("mer_1", "EUR", "day", DAY)]
    assert (measures.payment_count, measures.declines, measures.fraud_declines) == (1, 1, 1)
    assert measures.gross_volume == 0 and measures.score_histogram[9] == 1


def test_a_cleared_bank_transfer_is_approved_when_captured() -> None:
    bank = {"id": "pm_2", "type": "bank_transfer",
            "bank_account": {"last4": "6789", "routing_number": "110000000"}}
    batch = rollup_of(event("payment.captured.v1", status="captured", captured_amount=2500,
                            payment_method=bank))
    measures = batch.rollups[RollupKey("mer_1", "EUR", "day", DAY)]
    assert (measures.payment_count, measures.approvals, measures.captured_amount) == (1, 1, 2500)


def test_refunds_and_disputes_add_money_out_and_voids_add_nothing() -> None:
    refund = RefundEvent(source="t", merchant_id="mer_1", subject="pay_1", time=AT,
                         data=RefundObject(id="re_1", payment_id="pay_1", merchant_id="mer_1",
                                           amount=700, currency="EUR", reason=None,
                                           created_at=AT))
    dispute = DisputeEvent(source="t", merchant_id="mer_1", subject="pay_1", time=AT,
                           data=DisputeObject(id="dp_1", payment_id="pay_1", merchant_id="mer_1",
                                              amount=1800, currency="EUR", reason="fraud",
                                              card_fingerprint=None, payment_created_at=AT,
                                              created_at=AT))
    assert contribution(event("payment.voided.v1", status="voided")) is None
    assert contribution(event("payment.refunded.v1", status="refunded")) is None
    measures = rollup_of(refund, dispute).rollups[RollupKey("mer_1", "EUR", "hour", HOUR)]
    assert (measures.refunded_amount, measures.refunds) == (700, 1)
    assert (measures.disputed_amount, measures.disputes) == (1800, 1)


def test_a_batch_sums_per_bucket_and_orders_its_keys() -> None:
    batch = BatchRollup().extend([review_contribution("mer_2", "USD", AT),
                                  review_contribution("mer_1", "USD", AT),
                                  review_contribution("mer_1", "USD", AT)])
    keys = [key for key, _ in batch.sorted_rollups()]
    assert keys == sorted(keys) and keys[0].merchant_id == "mer_1"
    assert batch.rollups[RollupKey("mer_1", "USD", "hour", HOUR)].reviews == 2


def test_scores_fall_into_deciles_with_100_in_the_last() -> None:
    assert [score_bucket(s) for s in (0, 9, 10, 55, 99, 100)] == [0, 0, 1, 5, 9, 9]
    assert buckets(AT) == (HOUR, DAY)
