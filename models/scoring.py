"""A loaded fraud model: vectorized scores and top contributing features for a batch.

The registry stores a fitted scikit-learn estimator serialized with skops (a format that loads
only the types it is told to trust, unlike pickle) together with the ordered list of features it
was trained on. ``FraudModel`` scores a whole micro-batch with one ``predict_proba`` call.

Contributions: when the estimator is a pipeline ending in a linear model, a feature's
contribution is its transformed value times its coefficient, which is exact for the logit; for
other estimators no contributions are given (the rules still explain the verdict). A feature
that raised the score by being unusually low is named ``<feature>:low``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
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
class FraudModel:
    version: str
    estimator: Any
    feature_names: tuple[str, ...]

    def matrix(self, rows: Sequence[Mapping[str, float]]) -> np.ndarray:
        """The rows as a float matrix in the model's feature order (KeyError if one is missing)."""
        names = self.feature_names
        return np.array([[row[name] for name in names] for row in rows], dtype=np.float64)

    def opinions(self, rows: Sequence[Mapping[str, float]]) -> list[ModelOpinion]:
        """One opinion per row, from one vectorized prediction."""
        if not rows:
            return []
        matrix = self.matrix(rows)
        probabilities = self.estimator.predict_proba(matrix)[:, 1]
        scores = np.clip(np.rint(probabilities * 100), 0, 100).astype(int)
        tops = self._top_features(matrix)
        return [
            ModelOpinion(int(score), top)
            for score, top in zip(scores, tops, strict=True)
        ]

    def _top_features(self, matrix: np.ndarray) -> list[tuple[str, ...]]:
        coefficients = _linear_coefficients(self.estimator)
        if coefficients is None:
            return [()] * len(matrix)
        transformed = self.estimator[:-1].transform(matrix)
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
