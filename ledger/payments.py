"""The payment state machine: pure functions from a payment and a message to the next state.

No I/O here. The ledger consumer loads a payment, calls these functions, and commits the new
state together with the events they name, in one database transaction.

    pending ──approve──▶ authorized ──capture──▶ captured ──refund (all)──▶ refunded
       │                     └──void──▶ voided
       └──decline──▶ failed
    pending ──approve, capture=true──▶ captured   (authorize and capture in one step)
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, replace
from typing import Literal

from ingest.contracts import Decision, PaymentEventType, RiskLevel

Status = Literal["pending", "authorized", "captured", "refunded", "voided", "failed"]
TERMINAL_STATUSES: frozenset[Status] = frozenset({"refunded", "voided", "failed"})


@dataclass(frozen=True, slots=True)
class Payment:
    """The ledger's view of one payment. Amounts are integer minor units of ``currency``."""

    id: str
    merchant_id: str
    amount: int
    currency: str
    status: Status
    capture: bool
    """Capture immediately on approval (true) or hold the authorization for a later capture."""
    captured_amount: int = 0
    refunded_amount: int = 0
    fraud_score: int | None = None
    risk_level: RiskLevel | None = None
    fraud_flags: tuple[str, ...] = ()
    decline_code: str | None = None
    processor_ref: str | None = None
    version: int = 1
    """Bumped on every change; the database update is conditional on the version read."""

    def __post_init__(self) -> None:
        assert self.amount > 0, self.amount
        assert 0 <= self.refunded_amount <= self.captured_amount <= self.amount


@dataclass(frozen=True, slots=True)
class Transition:
    """A payment's next state and the public events the change produces, in order."""

    payment: Payment
    events: tuple[PaymentEventType, ...]


def sandbox_processor_ref(payment_id: str) -> str:
    """The sandbox processor's reference for an approved payment: stable per payment."""
    return "psr_" + hashlib.sha256(payment_id.encode()).hexdigest()[:20]


def apply_decision(payment: Payment, decision: Decision) -> Transition | None:
    """Move a pending payment to its decided state; None when it was decided already."""
    assert decision.payment_id == payment.id
    if payment.status != "pending":
        return None  # a redelivered or duplicate decision: the first one stands
    scored = replace(
        payment,
        fraud_score=decision.fraud_score,
        risk_level=decision.risk_level,
        fraud_flags=decision.fraud_flags,
        version=payment.version + 1,
    )
    if decision.outcome == "decline":
        failed = replace(scored, status="failed", decline_code=decision.decline_code)
        return Transition(failed, ("payment.failed.v1",))
    approved = replace(scored, processor_ref=sandbox_processor_ref(payment.id))
    if payment.capture:
        captured = replace(approved, status="captured", captured_amount=payment.amount)
        return Transition(captured, ("payment.authorized.v1", "payment.captured.v1"))
    return Transition(replace(approved, status="authorized"), ("payment.authorized.v1",))
