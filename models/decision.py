"""The risk decision: features, the model's opinion and the merchant's policy in, a verdict out.

Pure and explainable. Rules name what they saw in words a merchant understands; the model adds
its score and the features that pushed it up most. The fraud score is the higher of the model's
score and the strongest rule, plus 5 for each further rule that fired (capped at 100). The
merchant's thresholds turn the score into an outcome: at or above ``block_threshold`` decline
as ``fraudulent``, at or above ``review_threshold`` approve but flag for review. Without a model
(missing, corrupt or failing) the rules alone decide and the verdict is marked ``degraded``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

from ingest.contracts import Outcome, RiskLevel

DEFAULT_REVIEW_THRESHOLD = 70
DEFAULT_BLOCK_THRESHOLD = 90
BLOCKED_CARD_SCORE = 95
EXTRA_RULE_POINTS = 5
MODEL_FLAG_MIN_SCORE = 30
"""Below this model score (risk ``low``) the model's top features are not worth a flag."""

VELOCITY = "High transaction velocity"
AMOUNT_SPIKE = "Amount significantly above average"
NEW_GEOGRAPHY = "New geographic location"
CARD_TESTING = "Many cards used from one IP address or device"
ORIGIN_VELOCITY = "High velocity from one IP address or device"
LARGE_AMOUNT = "Unusually large amount"
MANY_IPS = "Card used from many IP addresses"
MANY_MERCHANTS = "Card used at many merchants"
RISKY_MERCHANT = "Merchant with an elevated fraud rate"
BLOCKED_CARD = "Card is blocked as fraudulent"
NEW_CARD = "Card with no payment history"
SMALL_AMOUNT = "Small amount typical of card testing"

FEATURE_REASONS: dict[str, str] = {
    "amount_log": LARGE_AMOUNT, "amount_zscore": AMOUNT_SPIKE, "new_country": NEW_GEOGRAPHY,
    "card_count_1m": VELOCITY, "card_count_1h": VELOCITY, "card_count_24h": VELOCITY,
    "card_amount_1m": VELOCITY, "card_amount_1h": VELOCITY, "card_amount_24h": VELOCITY,
    "card_seconds_since_previous": VELOCITY, "card_distinct_ips_24h": MANY_IPS,
    "card_distinct_merchants_24h": MANY_MERCHANTS, "origin_distinct_cards_1h": CARD_TESTING,
    "origin_count_1m": ORIGIN_VELOCITY, "merchant_fraud_share_28d": RISKY_MERCHANT,
    "customer_count_1d": VELOCITY, "customer_count_7d": VELOCITY,
    "card_seconds_since_previous:low": VELOCITY, "card_history_count:low": NEW_CARD,
    "amount_log:low": SMALL_AMOUNT,
}  # fmt: skip
"""The reason a merchant reads when a feature is among the model's top contributors
(``<feature>:low``: the feature raised the score by being unusually low)."""


@dataclass(frozen=True, slots=True)
class RiskPolicy:
    """A merchant's thresholds on the 0-100 fraud score."""

    review_threshold: int = DEFAULT_REVIEW_THRESHOLD
    block_threshold: int = DEFAULT_BLOCK_THRESHOLD

    def __post_init__(self) -> None:
        assert 0 <= self.review_threshold <= self.block_threshold <= 100, self


@dataclass(frozen=True, slots=True)
class ModelOpinion:
    score: int
    """The model's fraud probability as 0-100."""
    top_features: tuple[str, ...] = ()
    """The features that raised the score most, strongest first (``<feature>:low`` when a
    feature raised it by being unusually low)."""


@dataclass(frozen=True, slots=True)
class Verdict:
    outcome: Outcome
    fraud_score: int
    risk_level: RiskLevel
    fraud_flags: tuple[str, ...]
    decline_code: str | None
    degraded: bool


def risk_level_for(score: int) -> RiskLevel:
    """The brief's bands: low < 30 <= medium < 70 <= high."""
    assert 0 <= score <= 100, score
    return "low" if score < 30 else ("medium" if score < 70 else "high")


def rule_hits(features: Mapping[str, float]) -> list[tuple[int, str]]:
    """(severity 0-100, reason) of every rule the features trip, strongest first."""
    f = features.get
    checks = [
        (f("amount_log", 0.0) >= math.log1p(10_000_000), 95, LARGE_AMOUNT),
        (f("amount_log", 0.0) >= math.log1p(1_000_000), 40, LARGE_AMOUNT),
        (f("card_count_1m", 0.0) >= 5 or f("card_count_1h", 0.0) >= 20, 75, VELOCITY),
        (f("card_count_1m", 0.0) >= 3 or f("card_count_1h", 0.0) >= 10, 45, VELOCITY),
        (f("origin_distinct_cards_1h", 0.0) >= 10, 92, CARD_TESTING),
        (f("origin_distinct_cards_1h", 0.0) >= 5, 80, CARD_TESTING),
        (f("origin_distinct_cards_1h", 0.0) >= 3, 50, CARD_TESTING),
        (f("origin_count_1m", 0.0) >= 10, 60, ORIGIN_VELOCITY),
        (f("amount_zscore", 0.0) >= 8 and f("card_history_count", 0.0) >= 3, 72, AMOUNT_SPIKE),
        (f("amount_zscore", 0.0) >= 3 and f("card_history_count", 0.0) >= 3, 45, AMOUNT_SPIKE),
        (f("new_country", 0.0) >= 1, 40, NEW_GEOGRAPHY),
        (f("card_distinct_ips_24h", 0.0) >= 4, 45, MANY_IPS),
        (f("card_distinct_merchants_24h", 0.0) >= 6, 45, MANY_MERCHANTS),
        (f("merchant_fraud_share_28d", 0.0) >= 0.05 and f("merchant_payments_28d", 0.0) >= 50,
         40, RISKY_MERCHANT),
    ]
    strongest: dict[str, int] = {}
    for fired, severity, reason in checks:
        if fired and severity > strongest.get(reason, -1):
            strongest[reason] = severity
    return sorted(((s, r) for r, s in strongest.items()), key=lambda hit: -hit[0])


def decide(
    features: Mapping[str, float],
    model: ModelOpinion | None,
    policy: RiskPolicy,
    *,
    blocked_card: bool = False,
    approved_card: bool = False,
) -> Verdict:
    """The verdict on one payment; ``blocked_card`` (the sandbox fraud card) always declines,
    ``approved_card`` (the other sandbox test cards) is never declined by risk — still scored
    and flagged, at worst sent to review — so integrations get the outcome the card names."""
    hits = rule_hits(features)
    rule_score = hits[0][0] + EXTRA_RULE_POINTS * (len(hits) - 1) if hits else 0
    score = min(100, max(rule_score, model.score if model else 0))
    flags = [reason for _, reason in hits]
    if model is not None and model.score >= MODEL_FLAG_MIN_SCORE:
        flags += [FEATURE_REASONS[name] for name in model.top_features if name in FEATURE_REASONS]
    if blocked_card:
        score = max(score, BLOCKED_CARD_SCORE)
        flags.insert(0, BLOCKED_CARD)
    if blocked_card or (score >= policy.block_threshold and not approved_card):
        outcome: Outcome = "decline"
    else:
        outcome = "review" if score >= policy.review_threshold else "approve"
    return Verdict(
        outcome=outcome,
        fraud_score=score,
        risk_level=risk_level_for(score),
        fraud_flags=tuple(dict.fromkeys(flags)),
        decline_code="fraudulent" if outcome == "decline" else None,
        degraded=model is None,
    )
