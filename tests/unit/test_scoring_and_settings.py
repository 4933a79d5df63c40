"""The brief's risk bands and the settings model's production guard."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from models.decision import risk_level_for
from payflow.settings import Settings


@pytest.mark.parametrize(("score", "level"), [(0, "low"), (29, "low"), (30, "medium"),
                                              (69, "medium"), (70, "high"), (100, "high")])
def test_risk_levels_follow_the_briefs_bands(score: int, level: str) -> None:
    assert risk_level_for(score) == level


def test_production_refuses_development_secrets() -> None:
    problems = Settings(environment="production").check_production()
    assert any("PAYFLOW_VAULT_KEY" in problem for problem in problems)
    assert Settings(environment="development").check_production() == []


def test_topic_prefixes_must_be_topic_safe() -> None:
    with pytest.raises(ValidationError):
        Settings(topic_prefix="bad prefix/")
