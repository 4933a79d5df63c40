"""What each message adds to the rollups, as pure values: no Kafka, no SQL.

A message contributes ``Measures`` to two buckets — its UTC hour and its UTC day — of its
merchant and currency, at its event time:

- ``payment.authorized`` (cards) or the first ``payment.captured`` of a bank transfer (which has
  no authorization): a decided, approved payment — count, gross volume, approval, score decile,
  flags;
- ``payment.failed``: a decided, declined payment — count, decline (fraud decline when the code
  is ``fraudulent``), score decile, flags;
- ``payment.captured``: money captured;
- ``refund.created`` / ``dispute.created``: money refunded / charged back;
- a decision with outcome ``review`` (from ``payments.decisions``): a review.

``payment.voided``, ``payment.refunded`` (the refund itself counts) and payouts add nothing.
Fees stay 0 until the ledger publishes them.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field, fields
from datetime import UTC, date, datetime

from ingest.contracts import AnyPublicEvent, DisputeEvent, PaymentEvent, RefundEvent, Transaction

HISTOGRAM_BUCKETS = 10
MAX_FLAG_LENGTH = 200


@dataclass(frozen=True, slots=True, order=True)
class RollupKey:
    merchant_id: str
    currency: str
    granularity: str
    """``hour`` or ``day``."""
    bucket_start: datetime


@dataclass(slots=True)
class Measures:
    """Summable figures of one bucket (amounts in minor units of the bucket's currency)."""

    payment_count: int = 0
    gross_volume: int = 0
    captured_amount: int = 0
    refunded_amount: int = 0
    disputed_amount: int = 0
    fee_amount: int = 0
    approvals: int = 0
    declines: int = 0
    fraud_declines: int = 0
    reviews: int = 0
    disputes: int = 0
    refunds: int = 0
    score_histogram: list[int] = field(default_factory=lambda: [0] * HISTOGRAM_BUCKETS)

    def add(self, other: Measures) -> None:
        for item in fields(self):
            if item.name == "score_histogram":
                self.score_histogram = [a + b for a, b in
                                        zip(self.score_histogram, other.score_histogram,
                                            strict=True)]
            else:
                setattr(self, item.name, getattr(self, item.name) + getattr(other, item.name))

    def amounts(self) -> tuple[int, ...]:
        """The scalar measures in declaration order (the store's column order)."""
        return tuple(getattr(self, item.name) for item in fields(self)
                     if item.name != "score_histogram")


MEASURE_COLUMNS = tuple(item.name for item in fields(Measures) if item.name != "score_histogram")


@dataclass(frozen=True, slots=True)
class Contribution:
    merchant_id: str
    currency: str
    time: datetime
    measures: Measures
    flags: tuple[str, ...] = ()


def score_bucket(score: int) -> int:
    """The decile of a 0-100 fraud score; 100 joins 90-99."""
    assert 0 <= score <= 100, score
    return min(score // 10, HISTOGRAM_BUCKETS - 1)


def _decided(transaction: Transaction, approved: bool) -> Measures:
    measures = Measures(payment_count=1)
    if approved:
        measures.approvals = 1
        measures.gross_volume = transaction.amount
    else:
        measures.declines = 1
        measures.fraud_declines = int(transaction.decline_code == "fraudulent")
    if transaction.fraud_score is not None:
        measures.score_histogram[score_bucket(transaction.fraud_score)] = 1
    return measures


def contribution(event: AnyPublicEvent) -> Contribution | None:
    """What one public event adds; None for events the rollups do not count."""
    if isinstance(event, PaymentEvent):
        return _payment_contribution(event)
    if isinstance(event, RefundEvent):
        measures = Measures(refunded_amount=event.data.amount, refunds=1)
        return Contribution(event.merchant_id, event.data.currency, event.time, measures)
    if isinstance(event, DisputeEvent):
        measures = Measures(disputed_amount=event.data.amount, disputes=1)
        return Contribution(event.merchant_id, event.data.currency, event.time, measures)
    return None


def _payment_contribution(event: PaymentEvent) -> Contribution | None:
    transaction = event.data
    kind = event.event_name
    flags: tuple[str, ...] = ()
    if kind in {"payment.authorized", "payment.failed"}:
        measures = _decided(transaction, approved=kind == "payment.authorized")
        flags = transaction.fraud_flags
    elif kind == "payment.captured":
        measures = Measures(captured_amount=transaction.captured_amount)
        if transaction.payment_method.type == "bank_transfer":  # decided without authorizing
            measures.add(_decided(transaction, approved=True))
            flags = transaction.fraud_flags
    else:
        return None
    return Contribution(event.merchant_id, transaction.currency, event.time, measures, flags)


def review_contribution(merchant_id: str, currency: str, time: datetime) -> Contribution:
    return Contribution(merchant_id, currency, time, Measures(reviews=1))


def buckets(time: datetime) -> tuple[datetime, datetime]:
    """The UTC hour and UTC day that contain ``time``."""
    utc = time.astimezone(UTC)
    hour = utc.replace(minute=0, second=0, microsecond=0)
    return hour, hour.replace(hour=0)


@dataclass
class BatchRollup:
    """The summed contributions of one consumed batch, ready to upsert in key order."""

    rollups: dict[RollupKey, Measures] = field(default_factory=dict)
    flags: dict[tuple[str, date, str], int] = field(default_factory=dict)

    def add(self, item: Contribution) -> None:
        hour, day = buckets(item.time)
        for granularity, start in (("hour", hour), ("day", day)):
            key = RollupKey(item.merchant_id, item.currency, granularity, start)
            self.rollups.setdefault(key, Measures()).add(item.measures)
        for flag in dict.fromkeys(item.flags):
            flag_key = (item.merchant_id, day.date(), flag[:MAX_FLAG_LENGTH])
            self.flags[flag_key] = self.flags.get(flag_key, 0) + 1

    def extend(self, items: Iterable[Contribution]) -> BatchRollup:
        for item in items:
            self.add(item)
        return self

    def sorted_rollups(self) -> list[tuple[RollupKey, Measures]]:
        """Key order, so concurrent consumers lock shared rows in one order (no deadlocks)."""
        return sorted(self.rollups.items(), key=lambda pair: pair[0])

    def sorted_flags(self) -> list[tuple[tuple[str, date, str], int]]:
        return sorted(self.flags.items())
