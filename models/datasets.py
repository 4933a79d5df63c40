"""Point-in-time training data: each payment's decision-time features and the labels known then.

A model must learn from what the worker saw when it decided, not from what is known later. Two
sources give that: a history (a simulator file, an import) replayed through
``models.history.replay`` — the worker's own feature code, in event-time order, so a payment's
features see only payments and labels that came before it — and the feature log in PostgreSQL,
which holds the vectors the worker actually used. Labels are kept with the time they became
known, so the same rows can be labelled as of any cut-off: a training set sees only labels
known by its cut-off, while a test period is judged on the eventual truth.

``time_splits`` cuts train / validation / test periods by time, each followed by a gap as long
as the label delay, so that the labels of a training period have had time to arrive by the
moment the model would be trained.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import numpy as np

from ingest.traffic import SimulatedPayment
from models.facts import LabelFacts, PaymentFacts
from models.features import FEATURE_NAMES, vector
from models.history import replay

DAY_SECONDS = 86_400.0
NEVER = math.inf


@dataclass(frozen=True)
class Dataset:
    """Feature rows in time order, with when (if ever) each became known as fraud."""

    payment_ids: np.ndarray
    cards: np.ndarray
    times: np.ndarray
    """Decision (event) time of each row, seconds since the epoch, ascending."""
    matrix: np.ndarray
    """One row per payment, columns in ``feature_names`` order."""
    label_times: np.ndarray
    """When the payment's fraud label arrived; ``inf`` if it never did (genuine)."""
    feature_names: tuple[str, ...] = FEATURE_NAMES

    def __len__(self) -> int:
        return len(self.times)

    def labels_at(self, cutoff_seconds: float) -> np.ndarray:
        """1 for rows whose fraud label was known at ``cutoff_seconds``, else 0."""
        known: np.ndarray = np.isfinite(self.label_times) & (self.label_times <= cutoff_seconds)
        return known.astype(np.int64)

    def truth(self) -> np.ndarray:
        """Every label that ever arrives (for judging a test period after the fact)."""
        return self.labels_at(NEVER)

    def columns(self, names: tuple[str, ...]) -> np.ndarray:
        """The matrix restricted to ``names``, in that order."""
        index = [self.feature_names.index(name) for name in names]
        selected: np.ndarray = self.matrix[:, index]
        return selected

    def select(self, mask: np.ndarray) -> Dataset:
        return Dataset(self.payment_ids[mask], self.cards[mask], self.times[mask],
                       self.matrix[mask], self.label_times[mask], self.feature_names)

    def between(self, start_seconds: float, end_seconds: float) -> Dataset:
        """Rows decided in [start, end)."""
        return self.select((self.times >= start_seconds) & (self.times < end_seconds))

    def fingerprint(self, labels: np.ndarray) -> str:
        """SHA-256 of the exact rows, labels and times a model is trained on."""
        digest = hashlib.sha256()
        for array in (self.matrix, labels, self.times):
            digest.update(np.ascontiguousarray(array).tobytes())
        return digest.hexdigest()


def facts(payments: Iterable[SimulatedPayment]) -> list[PaymentFacts | LabelFacts]:
    """The payments of a simulated history, and the labels of its fraud, as feature facts."""
    history: list[PaymentFacts | LabelFacts] = []
    for p in payments:
        history.append(PaymentFacts(p.payment_id, p.time_seconds, p.merchant_id, p.amount_minor,
                                    p.currency, p.card_id, p.customer_id, p.ip_address or None,
                                    p.device_id or None, p.country or None))
        if p.label_seconds is not None:
            history.append(LabelFacts(p.payment_id, p.label_seconds, p.merchant_id,
                                      p.time_seconds))
    return history


def from_history(history: Iterable[PaymentFacts | LabelFacts]) -> Dataset:
    """Replay a history of payments and labels into point-in-time rows.

    The replay applies each label when it arrived, so no payment's features see a later label;
    the labels themselves are kept with their arrival times for ``labels_at``.
    """
    events = list(history)
    arrivals: dict[str, float] = {}
    for event in events:
        if isinstance(event, LabelFacts):
            arrivals[event.payment_id] = min(event.time_seconds,
                                             arrivals.get(event.payment_id, NEVER))
    ids, cards, times, rows, labels = [], [], [], [], []
    for payment, features in replay(events):
        ids.append(payment.payment_id)
        cards.append(payment.card)
        times.append(payment.time_seconds)
        rows.append(vector(features))
        labels.append(arrivals.get(payment.payment_id, NEVER))
    return Dataset(np.array(ids, dtype=object), np.array(cards, dtype=object),
                   np.array(times, dtype=np.float64),
                   np.array(rows, dtype=np.float64).reshape(len(rows), len(FEATURE_NAMES)),
                   np.array(labels, dtype=np.float64))


def from_simulation(payments: Iterable[SimulatedPayment]) -> Dataset:
    return from_history(facts(payments))


def from_feature_log(entries: Sequence[tuple[str, str, datetime, dict[str, Any]]],
                     labels: Iterable[tuple[str, datetime]]) -> Dataset:
    """Rows from the feature log — (payment id, card, decision time, features) — joined with
    fraud labels (payment id, labelled at). Entries missing a feature are skipped: they came
    from an older feature set."""
    arrivals = {pid: at.timestamp() for pid, at in labels}
    kept = sorted((e for e in entries if all(n in e[3] for n in FEATURE_NAMES)),
                  key=lambda e: e[2])
    return Dataset(
        np.array([e[0] for e in kept], dtype=object), np.array([e[1] for e in kept], dtype=object),
        np.array([e[2].timestamp() for e in kept], dtype=np.float64),
        np.array([[float(e[3][n]) for n in FEATURE_NAMES] for e in kept],
                 dtype=np.float64).reshape(len(kept), len(FEATURE_NAMES)),
        np.array([arrivals.get(e[0], NEVER) for e in kept], dtype=np.float64),
    )


@dataclass(frozen=True)
class Period:
    """Rows of one split and the labels it may use (known as of ``labels_as_of_seconds``)."""

    data: Dataset
    labels: np.ndarray
    start_seconds: float
    end_seconds: float
    labels_as_of_seconds: float


@dataclass(frozen=True)
class Splits:
    train: Period
    validation: Period
    test: Period


def time_splits(data: Dataset, *, train_days: float, validation_days: float, test_days: float,
                gap_days: float, start_seconds: float | None = None) -> Splits:
    """[train][gap][validation][gap][test], by decision time.

    The model is trained at the end of the first gap, so training rows carry the labels known
    then; validation rows carry the labels known at the end of the second gap (when the model
    would be chosen); test rows are judged on the eventual truth. Rows inside a gap are unused.
    """
    assert min(train_days, validation_days, test_days) > 0 and gap_days >= 0
    assert len(data) > 0, "no rows to split"
    start = float(data.times[0]) if start_seconds is None else start_seconds
    train_end = start + train_days * DAY_SECONDS
    validation_start = train_end + gap_days * DAY_SECONDS
    validation_end = validation_start + validation_days * DAY_SECONDS
    test_start = validation_end + gap_days * DAY_SECONDS
    test_end = test_start + test_days * DAY_SECONDS
    return Splits(
        train=_period(data, start, train_end, validation_start),
        validation=_period(data, validation_start, validation_end, test_start),
        test=_period(data, test_start, test_end, NEVER),
    )


def _period(data: Dataset, start: float, end: float, labels_as_of: float) -> Period:
    rows = data.between(start, end)
    return Period(rows, rows.labels_at(labels_as_of), start, end, labels_as_of)
