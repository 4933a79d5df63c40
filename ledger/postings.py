"""Journal entries and authorization holds: immutable values, balanced by construction.

A ``JournalEntry`` is a set of postings in one currency that sums to zero (debits positive,
credits negative). An entry is never changed; a correction is a new, reversing entry. An
authorization is a ``Hold``, a two-phase pending transfer (as TigerBeetle's): it is posted once
(for all or part of its amount, releasing the rest) or voided once, never both.

The builders below are the whole of payflow's money movement: capture, refund, dispute,
settlement and payout. Each returns entries; the ledger consumer writes them.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Literal

from ledger.accounts import Account, Kind, merchant, platform

EntryKind = Literal["capture", "refund", "dispute", "settlement", "network_settlement",
                    "payout", "payout_paid", "reversal"]


@dataclass(frozen=True, slots=True)
class Posting:
    account: Account
    amount: int
    """Signed minor units: positive debits the account, negative credits it."""

    def __post_init__(self) -> None:
        assert isinstance(self.amount, int) and self.amount != 0, self


@dataclass(frozen=True, slots=True)
class JournalEntry:
    kind: EntryKind
    currency: str
    postings: tuple[Posting, ...]
    payment_id: str | None = None
    settles_on: date | None = None
    """For entries touching a merchant's pending balance: the day it becomes available."""

    def __post_init__(self) -> None:
        assert len(self.postings) >= 2, self
        assert sum(p.amount for p in self.postings) == 0, f"unbalanced entry: {self}"
        assert all(p.account.currency == self.currency for p in self.postings), self

    def reversed(self) -> JournalEntry:
        """The correcting entry that cancels this one."""
        return JournalEntry(
            "reversal", self.currency,
            tuple(Posting(p.account, -p.amount) for p in self.postings), self.payment_id,
        )


@dataclass(frozen=True, slots=True)
class Hold:
    """A pending transfer reserving ``amount`` from ``debit`` to ``credit``."""

    payment_id: str
    debit: Account
    credit: Account
    amount: int
    status: Literal["pending", "posted", "voided"] = "pending"
    posted_amount: int = 0

    def __post_init__(self) -> None:
        assert self.amount > 0 and 0 <= self.posted_amount <= self.amount

    def post(self, amount: int) -> Hold:
        assert self.status == "pending", "a hold resolves exactly once"
        assert 0 < amount <= self.amount
        return Hold(self.payment_id, self.debit, self.credit, self.amount, "posted", amount)

    def void(self) -> Hold:
        assert self.status == "pending", "a hold resolves exactly once"
        return Hold(self.payment_id, self.debit, self.credit, self.amount, "voided", 0)


def authorization_hold(payment_id: str, merchant_id: str, currency: str, amount: int) -> Hold:
    return Hold(payment_id, platform(Kind.AUTHORIZATIONS, currency),
                merchant(merchant_id, Kind.PENDING, currency), amount)


def _entry(kind: EntryKind, currency: str, payment_id: str | None, settles_on: date | None,
           *legs: tuple[Account, int]) -> JournalEntry:
    postings = tuple(Posting(account, amount) for account, amount in legs if amount != 0)
    return JournalEntry(kind, currency, postings, payment_id, settles_on)


def capture_entry(payment_id: str, merchant_id: str, currency: str, amount: int, fee: int,
                  settles_on: date) -> JournalEntry:
    """The network owes us ``amount``; the merchant is owed it less the fee, once settled."""
    assert 0 <= fee <= amount
    return _entry(
        "capture", currency, payment_id, settles_on,
        (platform(Kind.CARD_CLEARING, currency), amount),
        (merchant(merchant_id, Kind.PENDING, currency), -(amount - fee)),
        (platform(Kind.FEE_REVENUE, currency), -fee),
    )


def refund_entry(payment_id: str, merchant_id: str, currency: str, amount: int,
                 fee_returned: int, settles_on: date) -> JournalEntry:
    """The cardholder is owed ``amount``: the merchant gives back what it got, we the fee share."""
    assert 0 <= fee_returned <= amount
    return _entry(
        "refund", currency, payment_id, settles_on,
        (merchant(merchant_id, Kind.PENDING, currency), amount - fee_returned),
        (platform(Kind.FEE_REVENUE, currency), fee_returned),
        (platform(Kind.REFUNDS, currency), -amount),
    )


def dispute_entry(payment_id: str, merchant_id: str, currency: str, amount: int,
                  settles_on: date) -> JournalEntry:
    """A chargeback: the network takes ``amount`` back; the merchant bears it (fee kept)."""
    return _entry(
        "dispute", currency, payment_id, settles_on,
        (merchant(merchant_id, Kind.PENDING, currency), amount),
        (platform(Kind.CHARGEBACKS, currency), -amount),
    )


def settlement_entry(merchant_id: str, currency: str, net_pending: int) -> JournalEntry | None:
    """Move a merchant's settled net from pending to available (None when it nets to zero)."""
    if net_pending == 0:
        return None
    return _entry(
        "settlement", currency, None, None,
        (merchant(merchant_id, Kind.PENDING, currency), net_pending),
        (merchant(merchant_id, Kind.AVAILABLE, currency), -net_pending),
    )


def network_settlement_entry(currency: str, captured: int, refunded: int,
                             charged_back: int) -> JournalEntry | None:
    """The networks pay what was captured, less refunds and chargebacks, into our bank."""
    net = captured - refunded - charged_back
    legs = [
        (platform(Kind.CARD_CLEARING, currency), -captured),
        (platform(Kind.REFUNDS, currency), refunded),
        (platform(Kind.CHARGEBACKS, currency), charged_back),
        (platform(Kind.BANK, currency), net),
    ]
    if all(amount == 0 for _, amount in legs):
        return None
    return _entry("network_settlement", currency, None, None, *legs)


def payout_entries(merchant_id: str, currency: str, amount: int) -> tuple[JournalEntry, ...]:
    """A payout of ``amount``: created (available → in transit), then paid (→ the bank)."""
    assert amount > 0
    created = _entry(
        "payout", currency, None, None,
        (merchant(merchant_id, Kind.AVAILABLE, currency), amount),
        (merchant(merchant_id, Kind.IN_TRANSIT, currency), -amount),
    )
    paid = _entry(
        "payout_paid", currency, None, None,
        (merchant(merchant_id, Kind.IN_TRANSIT, currency), amount),
        (platform(Kind.BANK, currency), -amount),
    )
    return created, paid


__all__ = ["Hold", "JournalEntry", "Posting"]
