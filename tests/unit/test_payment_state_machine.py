"""Hypothesis state machine: any interleaving of commands keeps the ledger's promises.

Promises: a hold resolves at most once; captured never exceeds authorized; refunds and disputes
never exceed what was captured; every journal entry balances; the merchant's pending balance
equals captured - fee - refunded + fee returned - disputed; a fully refunded payment earned no
fee; a rejected command changes nothing.
"""

from __future__ import annotations

from datetime import date

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

from ledger.accounts import Kind
from ledger.fees import Pricing
from ledger.payments import CommandRejected, Payment, Transition, capture, dispute, refund, void
from ledger.postings import Hold, JournalEntry, authorization_hold
from tests.unit.test_payment_state import decide, pending

SETTLES = date(2026, 11, 28)
amounts = st.one_of(st.none(), st.integers(min_value=1, max_value=20_000))


class PaymentMachine(RuleBasedStateMachine):
    payment: Payment
    hold: Hold
    entries: list[JournalEntry]
    pricing: Pricing

    @initialize(amount=st.integers(1, 10_000), bps=st.integers(0, 1_000),
                fixed=st.integers(0, 100))
    def authorize(self, amount: int, bps: int, fixed: int) -> None:
        self.pricing = Pricing(bps, fixed)
        transition = decide(pending(capture=False, amount=amount))
        self.payment = transition.payment
        assert transition.hold is not None
        self.hold = transition.hold
        self.entries = []
        self.resolutions = 0

    def _apply(self, attempt: object) -> None:
        before = self.payment
        try:
            transition = attempt() if callable(attempt) else None
        except CommandRejected:
            assert self.payment == before
            return
        assert isinstance(transition, Transition)
        assert transition.payment.version == before.version + 1
        self.payment = transition.payment
        self.entries.extend(transition.entries)
        if transition.hold is not None and transition.hold.status != "pending":
            self.hold = transition.hold
            self.resolutions += 1

    @rule(amount=amounts)
    def capture(self, amount: int | None) -> None:
        self._apply(lambda: capture(self.payment, self.hold, amount, self.pricing, SETTLES))

    @rule()
    def void(self) -> None:
        self._apply(lambda: void(self.payment, self.hold))

    @rule(amount=amounts)
    def refund(self, amount: int | None) -> None:
        self._apply(lambda: refund(self.payment, "re", amount, None, SETTLES))

    @rule()
    def dispute(self) -> None:
        self._apply(lambda: dispute(self.payment, "dp", "fraudulent", SETTLES))

    @invariant()
    def amounts_stay_within_bounds(self) -> None:
        p = self.payment
        assert p.captured_amount <= p.amount
        assert p.refunded_amount + p.disputed_amount <= p.captured_amount
        assert self.resolutions <= 1

    @invariant()
    def entries_balance_and_pending_matches_the_payment(self) -> None:
        pending_balance = 0
        for entry in self.entries:
            assert sum(posting.amount for posting in entry.postings) == 0
            pending_balance -= sum(p.amount for p in entry.postings
                                   if p.account.kind is Kind.PENDING)
        p = self.payment
        assert pending_balance == (p.captured_amount - p.fee_amount - p.refunded_amount
                                   + p.fee_returned - p.disputed_amount)
        if p.status == "refunded":
            assert p.fee_returned == p.fee_amount


PaymentMachine.TestCase.settings = settings(max_examples=200, stateful_step_count=12,
                                            deadline=None)
TestPaymentMachine = PaymentMachine.TestCase


def test_authorization_holds_are_for_the_whole_amount() -> None:
    hold = authorization_hold("pay_1", "mer_1", "USD", 500)
    assert hold.amount == 500 and hold.status == "pending"
