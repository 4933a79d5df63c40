"""Training and evaluation: card precision@k by day, prior-corrected weighting, candidates that
learn the simulated fraud, and a registrable, skops-loadable result."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from ingest.traffic import SimulationConfig, simulate
from models.candidates import BASELINE, BOOSTED, FEATURES, fit, scores, trained_model
from models.datasets import DAY_SECONDS, from_simulation
from models.evaluation import card_precision_at_k, evaluate
from models.retraining import Comparison, compare, problems, report, splits_for
from models.scoring import FraudModel, dump_estimator, load_estimator


def test_card_precision_counts_cards_per_day_by_their_best_score() -> None:
    cards = np.array(["a", "a", "b", "c", "a", "d"])
    times = np.array([0.0, 10.0, 20.0, 30.0, DAY_SECONDS + 1, DAY_SECONDS + 2])
    labels = np.array([0, 1, 0, 0, 0, 1])
    scores = np.array([0.9, 0.1, 0.8, 0.2, 0.5, 0.4])
    # day 0: top 2 cards a (0.9, fraud that day) and b -> 1/2; day 1: a, d -> 1/2
    assert card_precision_at_k(cards, times, labels, scores, k=2) == pytest.approx(0.5)
    # day 0: top 1 is a (fraud) -> 1; day 1: top 1 is a (genuine) -> 0
    assert card_precision_at_k(cards, times, labels, scores, k=1) == pytest.approx(0.5)


def test_evaluate_leaves_out_ranking_metrics_without_both_classes() -> None:
    metrics = evaluate(np.array(["a"]), np.array([0.0]), np.array([0]), np.array([0.3]))
    assert "auc_roc" not in metrics and metrics["card_precision_at_100"] == 0.0


@pytest.fixture(scope="module")
def comparison() -> Comparison:
    config = replace(SimulationConfig(), days=43, customers=400, merchants=40, seed=5)
    return compare(splits_for(from_simulation(simulate(config))))


def test_both_candidates_rank_fraud_well_above_chance(comparison: Comparison) -> None:
    for candidate in comparison.candidates:
        assert candidate.test["auc_roc"] > 0.6, (candidate.kind, candidate.test)
    assert len(report(comparison)) == 2


def test_weighting_is_undone_so_scores_stay_probabilities(comparison: Comparison) -> None:
    train = comparison.splits.train
    for kind in (BASELINE, BOOSTED):
        weighted = scores(fit(kind, train, 20.0), train.data, FEATURES[kind])
        assert abs(weighted.mean() - train.labels.mean()) < 0.5 * train.labels.mean() + 0.01


def test_a_trained_candidate_round_trips_through_skops(comparison: Comparison) -> None:
    best = comparison.best
    trained = trained_model(best, comparison.splits)
    restored = FraudModel("v", load_estimator(dump_estimator(trained.estimator)),
                          trained.feature_names)
    original = FraudModel("v", trained.estimator, trained.feature_names)
    rows = [dict(zip(comparison.splits.test.data.feature_names, row, strict=True))
            for row in comparison.splits.test.data.matrix[:50]]
    assert restored.opinions(rows) == original.opinions(rows)
    assert trained.window_start < trained.window_end and len(trained.data_fingerprint) == 64
    assert {"test_auc_roc", "validation_average_precision"} <= set(trained.metrics)


def test_splits_without_known_fraud_cannot_train(comparison: Comparison) -> None:
    assert problems(comparison.splits) == []
    data = comparison.splits.train.data
    genuine = replace(data, label_times=np.full(len(data), np.inf))
    found = problems(splits_for(genuine))
    assert found and "train period" in found[0] and "both classes" in found[0]
