"""The retraining workflow: data in, candidates trained and compared, the best one chosen.

``payflow model train`` and the retraining notebook both run this: build point-in-time rows
(from a simulated history, or from the feature log and fraud labels in PostgreSQL), split them
by time with a label-delay gap, train the baseline and the ensemble, and pick the candidate with
the best validation average precision (the test period is for reporting, never for choosing).
Reading the feature log is the one function here that touches the database.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import psycopg

from models.candidates import KINDS, Candidate, train_candidate
from models.datasets import DAY_SECONDS, Dataset, Splits, from_feature_log, time_splits

GAP_DAYS = 7.0
"""Label delay allowed for between periods: most disputes arrive within a week or two."""
TEST_DAYS = 7.0
VALIDATION_DAYS = 7.0


@dataclass(frozen=True)
class Comparison:
    splits: Splits
    candidates: tuple[Candidate, ...]

    @property
    def best(self) -> Candidate:
        """The candidate with the highest validation average precision."""
        return max(self.candidates,
                   key=lambda c: c.validation.get("average_precision", -1.0))


def splits_for(data: Dataset, test_days: float = TEST_DAYS,
               validation_days: float = VALIDATION_DAYS, gap_days: float = GAP_DAYS) -> Splits:
    """Train on everything up to the validation period: the history's span minus the test and
    validation periods and two gaps (at least one day)."""
    assert len(data) > 0, "no rows"
    span_days = (float(data.times[-1]) - float(data.times[0])) / DAY_SECONDS
    train_days = max(1.0, span_days - test_days - validation_days - 2 * gap_days)
    return time_splits(data, train_days=train_days, validation_days=validation_days,
                       test_days=test_days, gap_days=gap_days)


def problems(splits: Splits) -> list[str]:
    """Why these splits cannot train and evaluate a model (empty when they can)."""
    found = []
    for name in ("train", "validation", "test"):
        period = getattr(splits, name)
        if name != "test" and not 0 < int(period.labels.sum()) < len(period.labels):
            found.append(f"the {name} period has {len(period.labels)} rows and "
                         f"{int(period.labels.sum())} known fraud labels: it needs both classes")
        if name == "test" and len(period.data) == 0:
            found.append("the test period has no rows")
    return found


def compare(splits: Splits, kinds: tuple[str, ...] = KINDS, seed: int = 0) -> Comparison:
    return Comparison(splits, tuple(train_candidate(kind, splits, seed=seed) for kind in kinds))


def report(comparison: Comparison) -> list[str]:
    """One line per candidate with its test metrics, the chosen one marked with *."""
    best = comparison.best
    lines = []
    for c in comparison.candidates:
        m = c.test
        lines.append(
            f"{'*' if c is best else ' '} {c.kind:<23} test: AUC ROC {m.get('auc_roc', 0):.4f}  "
            f"AP {m.get('average_precision', 0):.4f}  card P@100/day "
            f"{m['card_precision_at_100']:.4f}  (validation AP "
            f"{c.validation.get('average_precision', 0):.4f}, fraud weight "
            f"{c.positive_weight:.1f})")
    return lines


FEATURE_LOG_QUERY = """
SELECT f.payment_id,
       coalesce(p.payment_method -> 'card' ->> 'fingerprint', p.payment_method_id, h.card,
                f.payment_id),
       f.requested_at, f.features
FROM feature_log f
LEFT JOIN payments p ON p.id = f.payment_id
LEFT JOIN history_payments h ON h.payment_id = f.payment_id
ORDER BY f.requested_at
"""
LABELS_QUERY = """
SELECT payment_id, labelled_at FROM fraud_labels WHERE is_fraud
UNION ALL
SELECT payment_id, labelled_at FROM history_payments WHERE is_fraud
"""
"""Disputes the ledger recorded, and the labels of imported history (``payflow import``)."""


def read_feature_log(conn: psycopg.Connection[Any]) -> Dataset:
    """Every logged decision's features joined with the fraud labels (and when they arrived);
    replayed history (``payflow replay``) joins its imported cards and labels."""
    entries = [(str(r[0]), str(r[1]), r[2], dict(r[3]))
               for r in conn.execute(FEATURE_LOG_QUERY).fetchall()]
    labels = [(str(r[0]), r[1]) for r in conn.execute(LABELS_QUERY).fetchall()]
    return from_feature_log(entries, labels)
