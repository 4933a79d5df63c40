"""A loaded fraud model: vectorized scores and top contributing features for a batch.

The registry stores a fitted scikit-learn estimator serialized with skops (a format that loads
only the types it is told to trust, unlike pickle) together with the ordered list of features it
was trained on. ``FraudModel`` scores a whole micro-batch with one ``predict_proba`` call, or,
for the linear pipeline payflow trains, with the same arithmetic on the pipeline's arrays
(``LinearPipeline``), which skips scikit-learn's per-call checks.

Contributions: when the estimator is a pipeline ending in a linear model, a feature's
contribution is its transformed value times its coefficient, which is exact for the logit; for
other estimators no contributions are given (the rules still explain the verdict). A feature
that raised the score by being unusually low is named ``<feature>:low``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from operator import itemgetter
from typing import Any

import numpy as np

from models.decision import ModelOpinion

TOP_FEATURES = 2
TRUSTED_TYPES: tuple[str, ...] = (
    "sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor",
)
"""Types a stored model may contain beyond those skops trusts by default (scikit-learn's
estimators, numpy's ufuncs). Anything else is refused on load: an artifact must not run code."""


class ModelLoadError(RuntimeError):
    """The stored artifact is not a loadable fraud model."""


# skops imports all of scikit-learn and walks its estimators (seconds, over 10 s on a loaded
# machine): only what loads or stores a model pays for it, not every process importing this.

def dump_estimator(estimator: Any) -> bytes:
    import skops.io as skops_io

    return bytes(skops_io.dumps(estimator))


def load_estimator(artifact: bytes) -> Any:
    """The estimator in ``artifact``; ModelLoadError if corrupt or holding untrusted types."""
    import skops.io as skops_io

    try:
        untrusted = set(skops_io.get_untrusted_types(data=artifact)) - set(TRUSTED_TYPES)
        if untrusted:
            raise ModelLoadError(f"untrusted types in model artifact: {sorted(untrusted)}")
        return skops_io.loads(artifact, trusted=list(TRUSTED_TYPES))
    except ModelLoadError:
        raise
    except Exception as error:
        raise ModelLoadError(f"cannot load model artifact: {error}") from error


@dataclass(frozen=True)
class LinearPipeline:
    """A fitted binary pipeline ``[elementwise numpy ufunc,] StandardScaler, LogisticRegression``
    as its arrays: the arithmetic of scikit-learn's ``predict_proba`` and ``transform``, step
    for step in the same order (so bit for bit the same probabilities), without the input
    validation scikit-learn runs on every call. That validation cost about 1.3 ms a call on
    this machine, while scoring 15 rows cost 1.7 ms in all: most of the price of a small batch.
    """

    compress: np.ufunc | None
    mean: np.ndarray | None
    scale: np.ndarray | None
    coef: np.ndarray
    """The coefficients, shape (1, features)."""
    intercept: np.ndarray

    @classmethod
    def of(cls, estimator: Any) -> LinearPipeline | None:
        """The arrays of ``estimator`` if it is such a pipeline, else None."""
        from sklearn.linear_model import LogisticRegression
        from sklearn.pipeline import Pipeline
        from sklearn.preprocessing import FunctionTransformer, StandardScaler

        if type(estimator) is not Pipeline:
            return None
        steps = [step for _, step in estimator.steps]
        compress = None
        if steps and type(steps[0]) is FunctionTransformer:
            first = steps.pop(0)
            if not isinstance(first.func, np.ufunc) or first.kw_args or first.validate:
                return None
            compress = first.func
        if len(steps) != 2 or type(steps[0]) is not StandardScaler \
                or type(steps[1]) is not LogisticRegression:
            return None
        scaler, classifier = steps
        if len(classifier.classes_) != 2 or np.asarray(classifier.coef_).shape[0] != 1:
            return None
        return cls(compress, scaler.mean_ if scaler.with_mean else None,
                   scaler.scale_ if scaler.with_std else None,
                   np.asarray(classifier.coef_), np.asarray(classifier.intercept_))

    def transform(self, matrix: np.ndarray) -> np.ndarray:
        """What the pipeline's steps before the classifier make of ``matrix``."""
        transformed = matrix.copy() if self.compress is None else self.compress(matrix)
        if self.mean is not None:
            transformed -= self.mean
        if self.scale is not None:
            transformed /= self.scale
        return transformed

    def probabilities(self, transformed: np.ndarray) -> np.ndarray:
        """The positive class's probability of each transformed row."""
        from scipy.special import expit

        return np.asarray(expit((transformed @ self.coef.T + self.intercept).reshape(-1)))


@dataclass(frozen=True)
class FraudModel:
    version: str
    estimator: Any
    feature_names: tuple[str, ...]
    linear: LinearPipeline | None = field(init=False, repr=False, compare=False)
    """The estimator's arrays, when it is a linear pipeline (``LinearPipeline``)."""

    def __post_init__(self) -> None:
        object.__setattr__(self, "linear", LinearPipeline.of(self.estimator))

    def matrix(self, rows: Sequence[Mapping[str, float]]) -> np.ndarray:
        """The rows as a float matrix in the model's feature order (KeyError if one is missing)."""
        values = itemgetter(*self.feature_names)
        return np.array([values(row) for row in rows], dtype=np.float64).reshape(
            len(rows), len(self.feature_names))

    def opinions(self, rows: Sequence[Mapping[str, float]]) -> list[ModelOpinion]:
        """One opinion per row, from one vectorized prediction."""
        if not rows:
            return []
        matrix = self.matrix(rows)
        linear = self.linear
        if linear is not None:
            transformed = linear.transform(matrix)
            probabilities = linear.probabilities(transformed)
            tops = self._top_features(transformed, linear.coef[0])
        else:
            probabilities = self.estimator.predict_proba(matrix)[:, 1]
            coefficients = _linear_coefficients(self.estimator)
            tops = ([()] * len(matrix) if coefficients is None else
                    self._top_features(self.estimator[:-1].transform(matrix), coefficients))
        scores = np.clip(np.rint(probabilities * 100), 0, 100).astype(int)
        return [
            ModelOpinion(int(score), top)
            for score, top in zip(scores, tops, strict=True)
        ]

    def _top_features(self, transformed: np.ndarray, coefficients: np.ndarray,
                      ) -> list[tuple[str, ...]]:
        contributions = transformed * coefficients
        order = np.argsort(-contributions, axis=1)[:, :TOP_FEATURES]
        names = self.feature_names
        return [
            tuple(names[i] if transformed[r, i] >= 0 else f"{names[i]}:low"
                  for i in row_order if contributions[r, i] > 0)
            for r, row_order in enumerate(order)
        ]


def _linear_coefficients(estimator: Any) -> np.ndarray | None:
    steps = getattr(estimator, "steps", None)
    if not steps:
        return None
    final = steps[-1][1]
    coefficients = getattr(final, "coef_", None)
    return None if coefficients is None else np.asarray(coefficients)[0]
