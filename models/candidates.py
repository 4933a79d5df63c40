"""Candidate fraud models trained on point-in-time splits: a baseline and a stronger ensemble.

Two scikit-learn estimators: a logistic regression on arcsinh-compressed, standardized features
(the baseline: fast, explainable through its coefficients) and a histogram gradient-boosted
tree ensemble (captures interactions such as "small amount and many cards from one IP").

Class imbalance is handled deliberately: fraud is a few percent of payments, so positives are
up-weighted (``positive_weight``, default the negative:positive ratio of the training period,
capped) to make the learner spend its capacity on them. Weighting inflates the odds a model
predicts by exactly that weight, and the worker reads a score of 0-100 as a probability against
the merchants' thresholds, so the fitted model's log-odds are shifted back by log(weight)
(prior correction): ranking gains from the weighting, scores stay probabilities.

The ensemble leaves out the counters that grow with an entity's age in the data (a card's
payment count, a merchant's or customer's volume): trees cannot extrapolate, and on a history
that starts empty those counters trend with calendar time, so a later test period lies outside
every split the trees learnt. The linear baseline extrapolates and keeps them.

Training sees only the training period's rows and the labels known at its cut-off
(``models.datasets.time_splits``); metrics come from the later, untouched test period.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import numpy as np
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import FunctionTransformer, StandardScaler

from models.datasets import Dataset, Period, Splits
from models.evaluation import evaluate
from models.features import FEATURE_NAMES
from models.training import TrainedModel

BASELINE = "logistic_regression"
BOOSTED = "hist_gradient_boosting"
KINDS = (BASELINE, BOOSTED)
MAX_POSITIVE_WEIGHT = {BASELINE: 50.0, BOOSTED: 10.0}
"""Cap on the fraud weight: the trees overfit the few fraud rows when weighted much more."""
TRENDING = ("card_history_count", "merchant_payments_28d", "customer_count_7d",
            "customer_count_30d")
FEATURES = {BASELINE: FEATURE_NAMES,
            BOOSTED: tuple(name for name in FEATURE_NAMES if name not in TRENDING)}
"""The input features of each kind of model, in order."""


def new_estimator(kind: str, seed: int = 0) -> Any:
    """An unfitted estimator of ``kind`` (one of ``KINDS``)."""
    if kind == BASELINE:
        return Pipeline([
            ("compress", FunctionTransformer(np.arcsinh)),
            ("scale", StandardScaler()),
            ("classify", LogisticRegression(C=0.5, max_iter=2000)),
        ])
    if kind == BOOSTED:
        return HistGradientBoostingClassifier(
            learning_rate=0.05, max_iter=200, max_leaf_nodes=15, min_samples_leaf=100,
            l2_regularization=1.0, early_stopping=False, random_state=seed)
    raise ValueError(f"unknown model kind {kind!r}; expected one of {KINDS}")


def balanced_weight(kind: str, labels: np.ndarray) -> float:
    """The negative:positive ratio, capped for ``kind`` (1 when there are no positives)."""
    positives = int(labels.sum())
    if positives == 0:
        return 1.0
    ratio = (len(labels) - positives) / positives
    return float(min(MAX_POSITIVE_WEIGHT[kind], max(1.0, ratio)))


def fit(kind: str, period: Period, positive_weight: float | None = None, seed: int = 0) -> Any:
    """Fit ``kind`` on a period's rows and labels, up-weighting fraud, then prior-correct."""
    labels = period.labels
    assert 0 < int(labels.sum()) < len(labels), "training needs both fraud and genuine rows"
    weight = balanced_weight(kind, labels) if positive_weight is None else positive_weight
    assert weight >= 1.0, weight
    sample_weight = np.where(labels == 1, weight, 1.0)
    estimator = new_estimator(kind, seed)
    matrix = period.data.columns(FEATURES[kind])
    if kind == BASELINE:
        estimator.fit(matrix, labels, classify__sample_weight=sample_weight)
    else:
        estimator.fit(matrix, labels, sample_weight=sample_weight)
    return prior_corrected(estimator, weight)


def prior_corrected(estimator: Any, positive_weight: float) -> Any:
    """Shift the fitted log-odds by -log(weight), undoing the weighting's inflation."""
    shift = math.log(positive_weight)
    if isinstance(estimator, Pipeline):
        final = estimator.steps[-1][1]
        final.intercept_ = final.intercept_ - shift
    elif isinstance(estimator, HistGradientBoostingClassifier):
        # The ensemble's raw prediction is this constant plus the trees' sum.
        estimator._baseline_prediction = estimator._baseline_prediction - shift
    else:
        raise TypeError(f"cannot prior-correct {type(estimator).__name__}")
    return estimator


def scores(estimator: Any, data: Dataset, names: tuple[str, ...]) -> np.ndarray:
    """Fraud probabilities for the rows from the ``names`` features (empty for no rows)."""
    if len(data) == 0:
        return np.zeros(0)
    return np.asarray(estimator.predict_proba(data.columns(names))[:, 1], dtype=np.float64)


@dataclass(frozen=True)
class Candidate:
    kind: str
    estimator: Any
    feature_names: tuple[str, ...]
    positive_weight: float
    validation: dict[str, float]
    test: dict[str, float]


def judge(estimator: Any, names: tuple[str, ...], period: Period,
          k: int = 100) -> dict[str, float]:
    data = period.data
    return evaluate(data.cards, data.times, period.labels, scores(estimator, data, names), k)


def train_candidate(kind: str, splits: Splits, positive_weight: float | None = None,
                    seed: int = 0) -> Candidate:
    """Fit on the training period; metrics on validation (labels known then) and test (truth)."""
    weight = (balanced_weight(kind, splits.train.labels) if positive_weight is None
              else positive_weight)
    estimator, names = fit(kind, splits.train, weight, seed), FEATURES[kind]
    return Candidate(kind, estimator, names, weight, judge(estimator, names, splits.validation),
                     judge(estimator, names, splits.test))


def trained_model(candidate: Candidate, splits: Splits) -> TrainedModel:
    """What the registry stores: the estimator, its metrics, window and data fingerprint."""
    train = splits.train
    metrics = {"positive_weight": candidate.positive_weight,
               "train_rows": float(len(train.data)), "train_frauds": float(train.labels.sum())}
    metrics |= {f"validation_{k}": v for k, v in candidate.validation.items()}
    metrics |= {f"test_{k}": v for k, v in candidate.test.items()}
    return TrainedModel(
        estimator=candidate.estimator,
        feature_names=candidate.feature_names,
        metrics=metrics,
        window_start=datetime.fromtimestamp(train.start_seconds, UTC),
        window_end=datetime.fromtimestamp(train.end_seconds, UTC),
        data_fingerprint=train.data.fingerprint(train.labels),
    )
