"""The payment state machine (pure: no Kafka, no database), transition by transition."""

from __future__ import annotations

from datetime import date

import pytest

from ingest.contracts import Decision
from ledger.fees import Pricing
from ledger.payments import (
    CommandRejected,
    Payment,
    Transition,
    apply_decision,
    capture,
    clear_bank_transfer,
    dispute,
    refund,
    sandbox_processor_ref,
    void,
)
from ledger.postings import authorization_hold

PRICING = Pricing(percent_bps=290, fixed_minor=30)
SETTLES = date(2026, 11, 28)


def pending(capture: bool = True, amount: int = 10_000, method: str = "card") -> Payment:
    return Payment(id="pay_1", merchant_id="mer_1", amount=amount, currency="USD",
                   status="pending", capture=capture, method_type=method)  # type: ignore[arg-type]


def decision(outcome: str = "approve", score: int = 5) -> Decision:
    return Decision(
        payment_id="pay_1", outcome=outcome, fraud_score=score,  # type: ignore[arg-type]
        risk_level="low" if score < 30 else "high", model_version="test",
        decline_code="fraudulent" if outcome == "decline" else None,
    )


def decide(payment: Payment, outcome: str = "approve", issuer: str | None = None) -> Transition:
    transition = apply_decision(payment, decision(outcome), issuer, PRICING, SETTLES)
    assert transition is not None
    return transition


def authorized(amount: int = 10_000) -> Payment:
    return decide(pending(capture=False, amount=amount)).payment


def captured(amount: int = 10_000) -> Payment:
    return decide(pending(capture=True, amount=amount)).payment


def hold_for(payment: Payment):  # type: ignore[no-untyped-def]
    return authorization_hold(payment.id, payment.merchant_id, payment.currency, payment.amount)


def test_an_approved_payment_with_capture_is_authorized_and_captured_at_once() -> None:
    transition = decide(pending(capture=True))
    assert transition.payment.version == 2
    assert transition.payment.status == "captured"
    assert transition.payment.captured_amount == 10_000
    assert transition.events == ("payment.authorized.v1", "payment.captured.v1")
    assert transition.payment.processor_ref == sandbox_processor_ref("pay_1")
    assert transition.hold is not None and transition.hold.status == "posted"
    (entry,) = transition.entries
    assert entry.kind == "capture" and entry.settles_on == SETTLES
    assert transition.payment.fee_amount == 290 + 30


def test_an_approved_payment_without_capture_places_a_hold_and_posts_nothing() -> None:
    transition = decide(pending(capture=False))
    assert transition.payment.status == "authorized"
    assert transition.hold is not None and transition.hold.status == "pending"
    assert transition.entries == ()
    assert transition.events == ("payment.authorized.v1",)


def test_a_declined_payment_fails_with_the_risk_engines_code() -> None:
    transition = decide(pending(), "decline")
    assert transition.payment.status == "failed"
    assert transition.payment.decline_code == "fraudulent"
    assert transition.events == ("payment.failed.v1",)
    assert transition.entries == () and transition.hold is None


def test_an_issuer_decline_fails_an_approved_payment_with_the_issuers_code() -> None:
    transition = decide(pending(), issuer="insufficient_funds")
    assert transition.payment.status == "failed"
    assert transition.payment.decline_code == "insufficient_funds"


def test_only_the_first_decision_applies() -> None:
    first = decide(pending(capture=False))
    assert apply_decision(first.payment, decision("decline"), None, PRICING, SETTLES) is None


def test_a_partial_capture_posts_that_amount_and_releases_the_rest() -> None:
    payment = authorized()
    transition = capture(payment, hold_for(payment), 6_000, PRICING, SETTLES)
    assert transition.payment.status == "captured"
    assert transition.payment.captured_amount == 6_000
    assert transition.hold is not None and transition.hold.posted_amount == 6_000


def test_capturing_more_than_authorized_is_refused() -> None:
    payment = authorized()
    with pytest.raises(CommandRejected) as raised:
        capture(payment, hold_for(payment), 10_001, PRICING, SETTLES)
    assert raised.value.code == "amount_exceeds_authorized"


@pytest.mark.parametrize("make", [captured, lambda: decide(pending(capture=False)).payment])
def test_a_capture_after_a_void_or_a_capture_is_an_invalid_state(make) -> None:  # type: ignore[no-untyped-def]
    payment = make()
    if payment.status == "authorized":
        payment = void(payment, hold_for(payment)).payment
    with pytest.raises(CommandRejected) as raised:
        capture(payment, hold_for(payment), None, PRICING, SETTLES)
    assert raised.value.code == "invalid_state"


def test_refunds_repeat_until_everything_captured_is_returned_with_the_fee() -> None:
    payment = captured()
    first = refund(payment, "re_1", 4_000, "requested_by_customer", SETTLES)
    assert first.payment.status == "captured"
    assert first.events == ("refund.created.v1",)
    second = refund(first.payment, "re_2", None, None, SETTLES)
    assert second.payment.status == "refunded"
    assert second.payment.refunded_amount == 10_000
    assert second.events == ("refund.created.v1", "payment.refunded.v1")
    assert second.payment.fee_returned == second.payment.fee_amount


def test_refunding_more_than_remains_is_refused_and_a_refunded_payment_is_invalid() -> None:
    payment = captured()
    with pytest.raises(CommandRejected) as raised:
        refund(payment, "re_1", 10_001, None, SETTLES)
    assert raised.value.code == "amount_exceeds_captured"
    done = refund(payment, "re_1", None, None, SETTLES).payment
    with pytest.raises(CommandRejected) as raised:
        refund(done, "re_2", 1, None, SETTLES)
    assert raised.value.code == "invalid_state"


def test_refunding_an_authorized_payment_is_an_invalid_state() -> None:
    with pytest.raises(CommandRejected) as raised:
        refund(authorized(), "re_1", None, None, SETTLES)
    assert raised.value.code == "invalid_state"


def test_a_dispute_takes_what_remains_and_keeps_the_status() -> None:
    payment = refund(captured(), "re_1", 3_000, None, SETTLES).payment
    transition = dispute(payment, "dp_1", "fraudulent", SETTLES)
    assert transition.payment.status == "captured"
    assert transition.payment.disputed_amount == 7_000
    assert transition.events == ("dispute.created.v1",)
    with pytest.raises(CommandRejected):
        refund(transition.payment, "re_2", 1, None, SETTLES)


def test_a_bank_transfer_stays_pending_when_approved_and_is_captured_when_cleared() -> None:
    approved = decide(pending(method="bank_transfer")).payment
    assert approved.status == "pending" and approved.fraud_score is not None
    cleared = clear_bank_transfer(approved, PRICING, SETTLES)
    assert cleared.payment.status == "captured"
    assert cleared.events == ("payment.captured.v1",)
    with pytest.raises(CommandRejected):
        clear_bank_transfer(cleared.payment, PRICING, SETTLES)
