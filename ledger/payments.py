"""The payment state machine: pure functions from a payment and a message to what follows.

No I/O here. The ledger consumer loads a payment, calls one of these functions, and commits the
returned ``Transition`` — new state, journal entries, hold change, refund or dispute record and
events — in one database transaction. A command the state does not allow raises
``CommandRejected`` with the API's 409 code and changes nothing.

    pending ──approve──▶ authorized ──capture──▶ captured ──refund (all)──▶ refunded
       │                     └──void──▶ voided        └─refund (part), dispute: stays captured
       └──decline (risk or issuer)──▶ failed
    pending ──approve, capture=true──▶ captured        (authorize and capture in one step)
    pending ──approve, bank transfer──▶ pending ──clear──▶ captured
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, replace
from datetime import date
from typing import Literal

from ingest.contracts import Decision, RefundReason, RiskLevel
from ledger.fees import Pricing, capture_fee, refund_fee_return
from ledger.postings import (
    Hold,
    JournalEntry,
    authorization_hold,
    capture_entry,
    dispute_entry,
    refund_entry,
)

Status = Literal["pending", "authorized", "captured", "refunded", "voided", "failed"]
EventKind = Literal[
    "payment.authorized.v1", "payment.captured.v1", "payment.failed.v1", "payment.voided.v1",
    "payment.refunded.v1", "refund.created.v1", "dispute.created.v1",
]


class CommandRejected(Exception):
    """An expected refusal: the payment's state does not allow the command."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass(frozen=True, slots=True)
class Payment:
    """The ledger's view of one payment. Amounts are integer minor units of ``currency``."""

    id: str
    merchant_id: str
    amount: int
    currency: str
    status: Status
    capture: bool
    """Capture on approval (true) or hold the authorization for a later capture."""
    method_type: Literal["card", "bank_transfer"] = "card"
    card_fingerprint: str | None = None
    captured_amount: int = 0
    refunded_amount: int = 0
    disputed_amount: int = 0
    fee_amount: int = 0
    """Fee charged at capture."""
    fee_returned: int = 0
    """Part of the fee given back with refunds."""
    fraud_score: int | None = None
    risk_level: RiskLevel | None = None
    fraud_flags: tuple[str, ...] = ()
    decline_code: str | None = None
    processor_ref: str | None = None
    version: int = 1
    """Bumped on every change; the database update is conditional on the version read."""

    def __post_init__(self) -> None:
        assert self.amount > 0, self.amount
        assert 0 <= self.captured_amount <= self.amount, self
        assert self.refunded_amount >= 0 and self.disputed_amount >= 0, self
        assert self.refunded_amount + self.disputed_amount <= self.captured_amount, self
        assert 0 <= self.fee_returned <= self.fee_amount <= self.captured_amount, self


@dataclass(frozen=True, slots=True)
class NewRefund:
    id: str
    amount: int
    reason: RefundReason | None


@dataclass(frozen=True, slots=True)
class NewDispute:
    id: str
    amount: int
    reason: str


@dataclass(frozen=True, slots=True)
class Transition:
    """Everything one applied message changes, for the caller to commit atomically."""

    payment: Payment
    events: tuple[EventKind, ...]
    entries: tuple[JournalEntry, ...] = ()
    hold: Hold | None = None
    """A new hold (status pending) or the payment's hold resolved (posted or voided)."""
    refund: NewRefund | None = None
    dispute: NewDispute | None = None


def sandbox_processor_ref(payment_id: str) -> str:
    """The sandbox processor's reference for an approved payment: stable per payment."""
    return "psr_" + hashlib.sha256(payment_id.encode()).hexdigest()[:20]


def _bump(payment: Payment, **changes: object) -> Payment:
    return replace(payment, version=payment.version + 1, **changes)  # type: ignore[arg-type]


# --- decision --------------------------------------------------------------------------------


def apply_decision(
    payment: Payment, decision: Decision, issuer_decline: str | None, pricing: Pricing,
    settle_date: date,
) -> Transition | None:
    """Move a pending payment to its decided state; None when it was decided already.

    ``issuer_decline`` is the (sandbox) issuer's answer for an approved card: a decline code,
    or None when it approves.
    """
    assert decision.payment_id == payment.id
    if payment.status != "pending" or payment.fraud_score is not None:
        return None  # a redelivered or duplicate decision: the first one stands
    scored = _bump(payment, fraud_score=decision.fraud_score, risk_level=decision.risk_level,
                   fraud_flags=decision.fraud_flags)
    decline_code = decision.decline_code if decision.outcome == "decline" else issuer_decline
    if decision.outcome == "decline" or issuer_decline is not None:
        failed = replace(scored, status="failed", decline_code=decline_code or "generic_decline")
        return Transition(failed, ("payment.failed.v1",))
    approved = replace(scored, processor_ref=sandbox_processor_ref(payment.id))
    if payment.method_type == "bank_transfer":
        return Transition(approved, ())  # stays pending until the transfer clears
    hold = authorization_hold(payment.id, payment.merchant_id, payment.currency, payment.amount)
    authorized = replace(approved, status="authorized")
    if not payment.capture:
        return Transition(authorized, ("payment.authorized.v1",), hold=hold)
    captured = _capture(authorized, hold, payment.amount, pricing, settle_date)
    return replace(captured, events=("payment.authorized.v1", *captured.events))


# --- commands --------------------------------------------------------------------------------


def capture(payment: Payment, hold: Hold, amount: int | None, pricing: Pricing,
            settle_date: date) -> Transition:
    """Capture all (``amount`` None) or part of an authorization; the rest is released."""
    if payment.status != "authorized":
        raise CommandRejected("invalid_state", f"a {payment.status} payment cannot be captured")
    amount = payment.amount if amount is None else amount
    if amount > payment.amount:
        raise CommandRejected(
            "amount_exceeds_authorized",
            f"cannot capture {amount}: only {payment.amount} is authorized",
        )
    return _capture(_bump(payment), hold, amount, pricing, settle_date)


def _capture(payment: Payment, hold: Hold, amount: int, pricing: Pricing,
             settle_date: date) -> Transition:
    """Capture ``amount`` of a payment whose version the caller has already bumped."""
    fee = capture_fee(amount, pricing)
    entry = capture_entry(payment.id, payment.merchant_id, payment.currency, amount, fee,
                          settle_date)
    captured = replace(payment, status="captured", captured_amount=amount, fee_amount=fee)
    return Transition(captured, ("payment.captured.v1",), (entry,), hold=hold.post(amount))


def clear_bank_transfer(payment: Payment, pricing: Pricing, settle_date: date) -> Transition:
    """A bank transfer's funds arrived: it is captured in full (no hold, no capture step)."""
    if payment.method_type != "bank_transfer" or payment.status != "pending" or (
        payment.fraud_score is None
    ):
        raise CommandRejected("invalid_state", "only an approved, pending bank transfer clears")
    fee = capture_fee(payment.amount, pricing)
    entry = capture_entry(payment.id, payment.merchant_id, payment.currency, payment.amount,
                          fee, settle_date)
    captured = _bump(payment, status="captured", captured_amount=payment.amount, fee_amount=fee)
    return Transition(captured, ("payment.captured.v1",), (entry,))


def void(payment: Payment, hold: Hold) -> Transition:
    """Release an authorization."""
    if payment.status != "authorized":
        raise CommandRejected("invalid_state", f"a {payment.status} payment cannot be voided")
    return Transition(_bump(payment, status="voided"), ("payment.voided.v1",), hold=hold.void())


def refund(payment: Payment, refund_id: str, amount: int | None, reason: RefundReason | None,
           settle_date: date) -> Transition:
    """Give back all that remains (``amount`` None) or part of it; repeatable until refunded."""
    if payment.status != "captured":
        raise CommandRejected("invalid_state", f"a {payment.status} payment cannot be refunded")
    remaining = payment.captured_amount - payment.refunded_amount - payment.disputed_amount
    amount = remaining if amount is None else amount
    if amount > remaining or amount <= 0:
        raise CommandRejected(
            "amount_exceeds_captured",
            f"cannot refund {amount}: {max(remaining, 0)} remains refundable",
        )
    fee_back = refund_fee_return(payment.fee_amount, payment.fee_returned,
                                 payment.captured_amount, payment.refunded_amount, amount)
    entry = refund_entry(payment.id, payment.merchant_id, payment.currency, amount, fee_back,
                         settle_date)
    refunded_total = payment.refunded_amount + amount
    full = refunded_total == payment.captured_amount
    after = _bump(payment, refunded_amount=refunded_total,
                  fee_returned=payment.fee_returned + fee_back,
                  status="refunded" if full else "captured")
    events: tuple[EventKind, ...] = ("refund.created.v1",)
    if full:
        events += ("payment.refunded.v1",)
    return Transition(after, events, (entry,), refund=NewRefund(refund_id, amount, reason))


def dispute(payment: Payment, dispute_id: str, reason: str, settle_date: date) -> Transition:
    """A sandbox chargeback of what was captured and not refunded; the status stays captured."""
    if payment.status != "captured" or payment.disputed_amount > 0:
        raise CommandRejected("invalid_state", "only a captured, undisputed payment")
    amount = payment.captured_amount - payment.refunded_amount
    entry = dispute_entry(payment.id, payment.merchant_id, payment.currency, amount,
                          settle_date)
    after = _bump(payment, disputed_amount=amount)
    return Transition(after, ("dispute.created.v1",), (entry,),
                      dispute=NewDispute(dispute_id, amount, reason))
