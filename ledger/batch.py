"""What one consumed batch does to the ledger, accumulated in memory before a single write.

``LoadedPayment`` is a payment as the batch locked it, with what its events need (the
transaction's descriptive fields, its refunds, its hold). Transitions are applied to it in
message order, so two messages for one payment in one batch chain correctly. ``BatchWrites``
collects every row to write; the store writes them with a handful of set-based statements.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from ingest.contracts import AnyPublicEvent, Refund, Transaction
from ledger.balances import BalanceChanges
from ledger.payments import NewDispute, NewRefund, Payment, Transition
from ledger.postings import Hold, JournalEntry


@dataclass(frozen=True, slots=True)
class OutboxEvent:
    """A public event serialized once: the same bytes go to the outbox and to Kafka."""

    topic: str
    """The catalog topic name (without the deployment's prefix)."""
    id: str
    merchant_id: str
    subject: str
    type: str
    body: bytes

    @classmethod
    def of(cls, topic: str, event: AnyPublicEvent) -> OutboxEvent:
        return cls(topic, event.id, event.merchant_id, event.subject, event.type,
                   event.encode())


@dataclass
class LoadedPayment:
    payment: Payment
    loaded_version: int
    details: dict[str, Any]
    """payment_method, description, customer, metadata, created_at: not the ledger's to change."""
    refunds: list[Refund]
    hold: Hold | None
    hold_stored: bool
    """Whether ``hold`` exists in the database (else it is new in this batch)."""
    updated_at: datetime
    clears_at: datetime | None = None
    auto_dispute_at: datetime | None = None

    def snapshot(self) -> Transaction:
        """The transaction as it stands after the transitions applied so far."""
        p = self.payment
        return Transaction(
            id=p.id, merchant_id=p.merchant_id, amount=p.amount, currency=p.currency,
            captured_amount=p.captured_amount, refunded_amount=p.refunded_amount,
            status=p.status, fraud_score=p.fraud_score, risk_level=p.risk_level,
            fraud_flags=p.fraud_flags, decline_code=p.decline_code,
            processor_ref=p.processor_ref, refunds=tuple(self.refunds),
            disputed_amount=p.disputed_amount, updated_at=self.updated_at, **self.details,
        )


@dataclass
class BatchWrites:
    payments: dict[str, LoadedPayment] = field(default_factory=dict)
    """Payments changed by the batch, with their final state."""
    new_holds: dict[str, Hold] = field(default_factory=dict)
    resolved_holds: dict[str, Hold] = field(default_factory=dict)
    entries: list[tuple[str, JournalEntry]] = field(default_factory=list)
    """(message id, entry) in order."""
    refunds: list[tuple[LoadedPayment, NewRefund, datetime]] = field(default_factory=list)
    disputes: list[tuple[LoadedPayment, NewDispute, datetime]] = field(default_factory=list)
    events: list[OutboxEvent] = field(default_factory=list)
    audit: list[tuple[str, str, str, str, str, dict[str, Any]]] = field(default_factory=list)
    balances: BalanceChanges = field(default_factory=BalanceChanges)

    def record(self, loaded: LoadedPayment, transition: Transition, message_id: str,
               now: datetime) -> None:
        """Apply ``transition`` to ``loaded`` in memory and collect what it writes."""
        before = loaded.payment
        loaded.payment = transition.payment
        loaded.updated_at = now
        self.payments[before.id] = loaded
        if transition.hold is not None:
            self._hold(loaded, transition.hold)
        for entry in transition.entries:
            self.entries.append((message_id, entry))
        self.balances.add_entries(transition.entries)
        if transition.refund is not None:
            self.refunds.append((loaded, transition.refund, now))
            loaded.refunds.append(Refund(id=transition.refund.id, amount=transition.refund.amount,
                                         reason=transition.refund.reason, created_at=now))
        if transition.dispute is not None:
            self.disputes.append((loaded, transition.dispute, now))

    def _hold(self, loaded: LoadedPayment, hold: Hold) -> None:
        placed = loaded.hold is None
        loaded.hold = hold
        resolved = hold.status != "pending"
        self.balances.add_hold(hold, placed=placed, resolved=resolved)
        if loaded.hold_stored:
            self.resolved_holds[hold.payment_id] = hold
        else:
            self.new_holds[hold.payment_id] = hold
