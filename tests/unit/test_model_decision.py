"""The pure risk decision: rules, model opinion and merchant thresholds into a verdict."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from models.decision import (
    AMOUNT_SPIKE,
    BLOCKED_CARD,
    CARD_TESTING,
    NEW_GEOGRAPHY,
    VELOCITY,
    ModelOpinion,
    RiskPolicy,
    decide,
)

ORDINARY = {"amount_log": math.log1p(2500), "card_count_1m": 1.0, "card_count_1h": 1.0,
            "card_history_count": 4.0, "amount_zscore": 0.2}


def test_an_ordinary_payment_with_a_calm_model_is_approved_without_flags() -> None:
    verdict = decide(ORDINARY, ModelOpinion(4, ("amount_log",)), RiskPolicy())
    assert (verdict.outcome, verdict.risk_level, verdict.fraud_flags) == ("approve", "low", ())
    assert verdict.decline_code is None and not verdict.degraded


def test_the_sandbox_fraud_card_is_always_declined_as_fraudulent() -> None:
    verdict = decide(ORDINARY, ModelOpinion(0), RiskPolicy(review_threshold=100,
                                                           block_threshold=100),
                     blocked_card=True)
    assert verdict.outcome == "decline" and verdict.decline_code == "fraudulent"
    assert verdict.fraud_score >= 90 and verdict.risk_level == "high"
    assert verdict.fraud_flags[0] == BLOCKED_CARD


def test_the_other_sandbox_cards_are_flagged_but_never_declined_by_risk() -> None:
    burst = {**ORDINARY, "origin_distinct_cards_1h": 12, "origin_count_1m": 12}
    verdict = decide(burst, ModelOpinion(99), RiskPolicy(), approved_card=True)
    assert verdict.outcome == "review" and verdict.decline_code is None
    assert CARD_TESTING in verdict.fraud_flags and verdict.risk_level == "high"


def test_a_card_testing_burst_is_flagged_and_declined_by_default() -> None:
    verdict = decide({**ORDINARY, "origin_distinct_cards_1h": 12, "origin_count_1m": 12},
                     ModelOpinion(20), RiskPolicy())
    assert CARD_TESTING in verdict.fraud_flags
    assert verdict.outcome == "decline"


def test_an_amount_spike_goes_to_review_with_its_reason() -> None:
    verdict = decide({**ORDINARY, "amount_zscore": 50.0}, ModelOpinion(10), RiskPolicy())
    assert verdict.fraud_flags == (AMOUNT_SPIKE,)
    assert verdict.outcome == "review" and verdict.risk_level == "high"


def test_a_huge_amount_is_declined_even_without_a_model() -> None:
    verdict = decide({**ORDINARY, "amount_log": math.log1p(99_000_000)}, None, RiskPolicy())
    assert verdict.outcome == "decline" and verdict.degraded
    assert verdict.risk_level == "high"


def test_the_models_top_features_become_reasons_when_it_is_worried() -> None:
    verdict = decide(ORDINARY, ModelOpinion(75, ("card_count_1h", "new_country")), RiskPolicy())
    assert verdict.fraud_flags == (VELOCITY, NEW_GEOGRAPHY)
    assert verdict.outcome == "review"


def test_each_further_rule_adds_points() -> None:
    one = decide({**ORDINARY, "new_country": 1.0}, None, RiskPolicy())
    two = decide({**ORDINARY, "new_country": 1.0, "card_distinct_ips_24h": 5.0}, None,
                 RiskPolicy())
    assert (one.fraud_score, two.fraud_score) == (40, 45 + 5)


def test_merchant_thresholds_decide_the_outcome() -> None:
    features = {**ORDINARY, "amount_zscore": 50.0}
    strict = decide(features, None, RiskPolicy(review_threshold=30, block_threshold=60))
    lenient = decide(features, None, RiskPolicy(review_threshold=90, block_threshold=99))
    assert (strict.outcome, lenient.outcome) == ("decline", "approve")


def test_thresholds_out_of_order_are_a_bug() -> None:
    with pytest.raises(AssertionError):
        RiskPolicy(review_threshold=80, block_threshold=50)


@given(st.dictionaries(st.sampled_from([*sorted(ORDINARY), "origin_distinct_cards_1h",
                                       "new_country", "amount_zscore"]),
                       st.floats(-100, 1e9)),
       st.one_of(st.none(), st.integers(0, 100).map(ModelOpinion)),
       st.integers(0, 100), st.integers(0, 100), st.booleans())
def test_every_verdict_is_consistent(features: dict[str, float], model: ModelOpinion | None,
                                     a: int, b: int, blocked: bool) -> None:
    policy = RiskPolicy(min(a, b), max(a, b))
    verdict = decide(features, model, policy, blocked_card=blocked)
    assert 0 <= verdict.fraud_score <= 100
    assert (verdict.outcome == "decline") == (verdict.decline_code == "fraudulent")
    assert verdict.degraded == (model is None)
    if model is not None:
        assert verdict.fraud_score >= model.score
    if blocked:
        assert verdict.outcome == "decline" and verdict.fraud_score >= 90
    elif verdict.fraud_score >= policy.block_threshold:
        assert verdict.outcome == "decline"
