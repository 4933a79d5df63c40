"""Placeholder risk decision: a pure function from a payment request to a decision.

The foundation's stand-in for the real engine (windowed features + model + rules): it scores by
amount alone, so the walking slice carries realistic fields (score, level, flags, outcome)
end to end. ``risk_level_for`` holds the brief's fixed bands and stays.
"""

from __future__ import annotations

from ingest.contracts import Decision, PaymentRequest, RiskLevel

PLACEHOLDER_MODEL_VERSION = "placeholder-0"
LARGE_AMOUNT_MINOR = 500_000
"""Above this (5,000.00 in a two-decimal currency) the placeholder flags the amount."""
DECLINE_SCORE = 90


def risk_level_for(score: int) -> RiskLevel:
    """The brief's bands: low < 30 <= medium < 70 <= high."""
    assert 0 <= score <= 100, score
    if score < 30:
        return "low"
    if score < 70:
        return "medium"
    return "high"


def placeholder_decision(request: PaymentRequest) -> Decision:
    """Score by amount only: 5 for ordinary amounts, rising to 95 at 100x the large amount."""
    flags: list[str] = []
    score = 5
    if request.amount > LARGE_AMOUNT_MINOR:
        flags.append("Amount significantly above average")
        score = min(95, 40 + 55 * request.amount // (100 * LARGE_AMOUNT_MINOR))
    declined = score >= DECLINE_SCORE
    return Decision(
        payment_id=request.payment_id,
        outcome="decline" if declined else ("review" if score >= 70 else "approve"),
        fraud_score=score,
        risk_level=risk_level_for(score),
        fraud_flags=tuple(flags),
        decline_code="fraudulent" if declined else None,
        model_version=PLACEHOLDER_MODEL_VERSION,
        features={"amount": float(request.amount)},
        reply_to=request.reply_to,
    )
