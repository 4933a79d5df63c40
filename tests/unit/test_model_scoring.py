"""Model artifacts: a skops round trip scores identically; corrupt or unsafe artifacts are
refused before anything in them runs."""

from __future__ import annotations

import os

import numpy as np
import pytest
import skops.io
from sklearn.preprocessing import FunctionTransformer

from models.features import FEATURE_NAMES
from models.history import replay
from models.scoring import FraudModel, ModelLoadError, dump_estimator, load_estimator
from models.synthetic import generate
from models.training import examples, train


@pytest.fixture(scope="module")
def trained():  # type: ignore[no-untyped-def]
    history = generate(seed=5, customers=150, days=10)
    return train(examples(history.events, history.fraud)), history


def test_a_stored_model_scores_exactly_as_the_trained_one(trained) -> None:  # type: ignore[no-untyped-def]
    model, history = trained
    rows = [features for _, features in replay(history.events)][:200]
    original = FraudModel("fraud-v1", model.estimator, FEATURE_NAMES)
    restored = FraudModel("fraud-v1", load_estimator(dump_estimator(model.estimator)),
                          FEATURE_NAMES)
    assert restored.opinions(rows) == original.opinions(rows)
    assert {"test_auc_roc", "test_average_precision"} <= set(model.metrics)
    assert len(model.data_fingerprint) == 64 and model.window_start < model.window_end


def test_a_batch_is_scored_in_one_vectorized_call(trained) -> None:  # type: ignore[no-untyped-def]
    model, history = trained
    rows = [features for _, features in replay(history.events)][:50]
    calls = []

    class Counting:
        def __init__(self, inner: object) -> None:
            self.inner = inner

        def __getattr__(self, name: str) -> object:
            return getattr(self.inner, name)

        def __getitem__(self, index: object) -> object:
            return self.inner[index]  # type: ignore[index]

        def predict_proba(self, matrix: np.ndarray) -> np.ndarray:
            calls.append(matrix.shape)
            return self.inner.predict_proba(matrix)  # type: ignore[attr-defined, no-any-return]

    FraudModel("v", Counting(model.estimator), FEATURE_NAMES).opinions(rows)
    assert calls == [(50, len(FEATURE_NAMES))]


def test_a_linear_pipeline_scores_bit_for_bit_as_scikit_learn_without_it(trained) -> None:  # type: ignore[no-untyped-def]
    model, history = trained
    rows = [features for _, features in replay(history.events)][:300]
    fast = FraudModel("v", model.estimator, FEATURE_NAMES)
    assert fast.linear is not None
    matrix = fast.matrix(rows)
    transformed = fast.linear.transform(matrix)
    assert np.array_equal(transformed, model.estimator[:-1].transform(matrix))
    assert np.array_equal(fast.linear.probabilities(transformed),
                          model.estimator.predict_proba(matrix)[:, 1])
    by_scikit_learn = FraudModel("v", model.estimator, FEATURE_NAMES)
    object.__setattr__(by_scikit_learn, "linear", None)  # the general path
    assert fast.opinions(rows) == by_scikit_learn.opinions(rows)
    assert {opinion.score for opinion in fast.opinions(rows)} != {0}


def test_other_estimators_are_scored_by_scikit_learn() -> None:
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import StandardScaler

    rng = np.random.default_rng(3)
    matrix = rng.normal(size=(200, len(FEATURE_NAMES)))
    labels = (matrix[:, 0] + rng.normal(size=200) > 1).astype(int)
    trees = Pipeline([("scale", StandardScaler()),
                      ("classify", HistGradientBoostingClassifier(max_iter=5))]).fit(matrix,
                                                                                     labels)
    model = FraudModel("v", trees, FEATURE_NAMES)
    assert model.linear is None
    rows = [dict(zip(FEATURE_NAMES, map(float, row), strict=True)) for row in matrix[:20]]
    expected = np.clip(np.rint(trees.predict_proba(matrix[:20])[:, 1] * 100), 0, 100)
    assert [opinion.score for opinion in model.opinions(rows)] == [int(v) for v in expected]


def test_garbage_is_not_a_model() -> None:
    with pytest.raises(ModelLoadError):
        load_estimator(b"\x00not a skops file")


def test_an_artifact_that_would_run_code_is_refused() -> None:
    hostile = skops.io.dumps(FunctionTransformer(os.system))
    with pytest.raises(ModelLoadError, match="untrusted"):
        load_estimator(hostile)


def test_a_model_missing_a_feature_fails_loudly(trained) -> None:  # type: ignore[no-untyped-def]
    model, _ = trained
    with pytest.raises(KeyError):
        FraudModel("v", model.estimator, FEATURE_NAMES).opinions([{"amount_log": 1.0}])
