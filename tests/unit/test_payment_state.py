"""The payment state machine, applied to risk decisions (pure: no Kafka, no database)."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from ingest.contracts import Decision
from ledger.payments import Payment, apply_decision, sandbox_processor_ref


def pending(capture: bool = True, amount: int = 2500) -> Payment:
    return Payment(id="pay_1", merchant_id="mer_1", amount=amount, currency="USD",
                   status="pending", capture=capture)


def decision(outcome: str = "approve", score: int = 5) -> Decision:
    return Decision(
        payment_id="pay_1", outcome=outcome, fraud_score=score,  # type: ignore[arg-type]
        risk_level="low" if score < 30 else "high", model_version="test",
        decline_code="fraudulent" if outcome == "decline" else None,
    )


def test_an_approved_payment_with_capture_is_authorized_and_captured_at_once() -> None:
    transition = apply_decision(pending(capture=True), decision())
    assert transition is not None
    assert transition.payment.status == "captured"
    assert transition.payment.captured_amount == 2500
    assert transition.events == ("payment.authorized.v1", "payment.captured.v1")
    assert transition.payment.processor_ref == sandbox_processor_ref("pay_1")


def test_an_approved_payment_without_capture_holds_the_authorization() -> None:
    transition = apply_decision(pending(capture=False), decision())
    assert transition is not None
    assert transition.payment.status == "authorized"
    assert transition.payment.captured_amount == 0
    assert transition.events == ("payment.authorized.v1",)


def test_a_declined_payment_fails_with_its_decline_code_and_score() -> None:
    transition = apply_decision(pending(), decision("decline", 95))
    assert transition is not None
    assert transition.payment.status == "failed"
    assert transition.payment.decline_code == "fraudulent"
    assert transition.payment.fraud_score == 95
    assert transition.events == ("payment.failed.v1",)


def test_a_review_approves_the_payment_and_keeps_the_score() -> None:
    transition = apply_decision(pending(), decision("review", 75))
    assert transition is not None
    assert transition.payment.status == "captured"
    assert transition.payment.risk_level == "high"


@given(
    outcomes=st.lists(st.sampled_from(["approve", "review", "decline"]), min_size=1, max_size=5),
    capture=st.booleans(),
)
def test_only_the_first_decision_ever_applies(outcomes: list[str], capture: bool) -> None:
    payment = pending(capture=capture)
    first = apply_decision(payment, decision(outcomes[0]))
    assert first is not None
    assert first.payment.version == payment.version + 1
    for later in outcomes[1:]:
        assert apply_decision(first.payment, decision(later)) is None
