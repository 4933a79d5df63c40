"""Training a first fraud model from a labelled history, with a time-based evaluation.

The features come from ``models.history.replay`` — the same code the stream worker runs — so
what the model learns from is what it will see. The estimator is a logistic regression on
arcsinh-compressed, standardized features, unweighted so that its probabilities stay calibrated
to the training prevalence (a 0-100 score is read as a probability): simple,
fast to score in batches, and its coefficients explain each score. The last quarter of the
history (by time) is held out to measure it; the lifecycle work adds stronger models.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import average_precision_score, roc_auc_score
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import FunctionTransformer, StandardScaler

from models.facts import LabelFacts, PaymentFacts
from models.features import FEATURE_NAMES, vector
from models.history import replay

TEST_SHARE = 0.25


@dataclass(frozen=True)
class Examples:
    matrix: np.ndarray
    labels: np.ndarray
    times: np.ndarray
    """Event time of each row, seconds since the epoch, ascending."""

    def fingerprint(self) -> str:
        """SHA-256 of the exact training data (features, labels, times)."""
        digest = hashlib.sha256()
        for array in (self.matrix, self.labels, self.times):
            digest.update(np.ascontiguousarray(array).tobytes())
        return digest.hexdigest()


@dataclass(frozen=True)
class TrainedModel:
    estimator: Any
    feature_names: tuple[str, ...]
    metrics: dict[str, float]
    window_start: datetime
    window_end: datetime
    data_fingerprint: str


def examples(history: Iterable[PaymentFacts | LabelFacts], fraud: frozenset[str]) -> Examples:
    """Replay ``history`` into feature rows, labelled by membership in ``fraud``."""
    rows, labels, times = [], [], []
    for payment, features in replay(history):
        rows.append(vector(features))
        labels.append(1 if payment.payment_id in fraud else 0)
        times.append(payment.time_seconds)
    return Examples(np.array(rows, dtype=np.float64), np.array(labels), np.array(times))


def new_estimator() -> Pipeline:
    return Pipeline([
        ("compress", FunctionTransformer(np.arcsinh)),
        ("scale", StandardScaler()),
        ("classify", LogisticRegression(C=0.5, max_iter=2000)),
    ])


def train(data: Examples) -> TrainedModel:
    """Fit on the earlier 75 % by time, evaluate on the rest (AUC ROC, average precision)."""
    assert len(data.labels) >= 20 and data.labels.sum() >= 2, "too little data to train"
    cut = int(len(data.labels) * (1 - TEST_SHARE))
    estimator = new_estimator().fit(data.matrix[:cut], data.labels[:cut])
    test_labels = data.labels[cut:]
    scores = estimator.predict_proba(data.matrix[cut:])[:, 1]
    metrics = {"rows": float(len(data.labels)), "fraud_rate": float(data.labels.mean())}
    if 0 < test_labels.sum() < len(test_labels):
        metrics["test_auc_roc"] = float(roc_auc_score(test_labels, scores))
        metrics["test_average_precision"] = float(average_precision_score(test_labels, scores))
    return TrainedModel(
        estimator=estimator,
        feature_names=FEATURE_NAMES,
        metrics=metrics,
        window_start=datetime.fromtimestamp(float(data.times[0]), UTC),
        window_end=datetime.fromtimestamp(float(data.times[-1]), UTC),
        data_fingerprint=data.fingerprint(),
    )
