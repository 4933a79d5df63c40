"""The placeholder risk decision and the settings model's production guard."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from payflow.settings import Settings
from streams.scoring import placeholder_decision, risk_level_for
from tests.unit.test_contracts import request


@pytest.mark.parametrize(("score", "level"), [(0, "low"), (29, "low"), (30, "medium"),
                                              (69, "medium"), (70, "high"), (100, "high")])
def test_risk_levels_follow_the_briefs_bands(score: int, level: str) -> None:
    assert risk_level_for(score) == level


def test_ordinary_amounts_are_approved_with_a_low_score() -> None:
    decision = placeholder_decision(request(amount=2500))
    assert decision.outcome == "approve"
    assert decision.risk_level == "low"
    assert decision.fraud_flags == ()


def test_huge_amounts_are_flagged_and_the_largest_declined() -> None:
    flagged = placeholder_decision(request(amount=1_000_000))
    assert "Amount significantly above average" in flagged.fraud_flags
    declined = placeholder_decision(request(amount=99_999_999))
    assert declined.outcome == "decline"
    assert declined.decline_code == "fraudulent"
    assert declined.fraud_score >= 90


def test_production_refuses_development_secrets() -> None:
    problems = Settings(environment="production").check_production()
    assert any("PAYFLOW_VAULT_KEY" in problem for problem in problems)
    assert Settings(environment="development").check_production() == []


def test_topic_prefixes_must_be_topic_safe() -> None:
    with pytest.raises(ValidationError):
        Settings(topic_prefix="bad prefix/")
