"""The model registry in PostgreSQL: register, list, load, promote, roll back; promotion
refuses an artifact that does not load, and the history is append-only."""

from __future__ import annotations

import psycopg
import pytest

from models import registry
from models.features import FEATURE_NAMES
from models.scoring import ModelLoadError
from models.synthetic import generate
from models.training import TrainedModel, examples, train
from tests.integration.streams_driver import RiskEnvironment, risk

pytestmark = pytest.mark.integration
__all__ = ["risk"]


@pytest.fixture(scope="module")
def trained() -> TrainedModel:
    history = generate(seed=9, customers=120, days=8)
    return train(examples(history.events, history.fraud))


def test_a_registered_model_round_trips_with_its_lineage(
    risk: RiskEnvironment, trained: TrainedModel
) -> None:
    with psycopg.connect(risk.settings.database_url) as conn:
        version = registry.register(conn, trained, "abc123", "round trip")
        (info,) = [m for m in registry.list_models(conn) if m.version == version]
        loaded = registry.load(conn, version)
    assert info.feature_names == FEATURE_NAMES == loaded.feature_names
    assert info.metrics == trained.metrics and info.code_version == "abc123"
    assert info.data_fingerprint == trained.data_fingerprint
    assert (info.window_start, info.window_end) == (trained.window_start, trained.window_end)
    assert loaded.version == f"fraud-v{version}" and not info.champion


def test_promote_and_rollback_walk_the_champion_history(
    risk: RiskEnvironment, trained: TrainedModel
) -> None:
    with psycopg.connect(risk.settings.database_url) as conn:
        first = registry.register(conn, trained, "x")
        second = registry.register(conn, trained, "x")
        registry.promote(conn, first, "test")
        promotion = registry.promote(conn, second, "test")
        assert (promotion.version, promotion.previous_version) == (second, first)
        assert registry.champion(conn) == second
        back = registry.rollback(conn, "test")
        assert (back.action, back.version, registry.champion(conn)) == ("rollback", first, first)
        conn.execute("DELETE FROM fraud_model_promotions")
        conn.execute("UPDATE fraud_model_promotions SET version = %s", (second,))
        assert registry.champion(conn) == first, "the promotion history is append-only"


def test_an_unloadable_artifact_cannot_be_promoted(risk: RiskEnvironment) -> None:
    with psycopg.connect(risk.settings.database_url) as conn:
        before = registry.champion(conn)
        row = conn.execute(
            """INSERT INTO fraud_models (version, artifact, feature_names,
                   training_window_start, training_window_end, data_fingerprint, code_version)
               SELECT coalesce(max(version), 0) + 1, '\\x0badf00d', '[]', now(), now(), 'x', 'x'
               FROM fraud_models RETURNING version""").fetchone()
        assert row is not None
        with pytest.raises(ModelLoadError):
            registry.promote(conn, row[0], "test")
        assert registry.champion(conn) == before
        with pytest.raises(registry.RegistryError):
            registry.promote(conn, 9999, "test")
