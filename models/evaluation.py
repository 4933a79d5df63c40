"""How good a fraud model is on a test period: AUC ROC, average precision, card precision@k.

AUC ROC says how well scores rank fraud above genuine payments overall; average precision
weighs the top of the ranking, which is what matters when fraud is 1-3 % of traffic. Card
precision@k per day is the analysts' view: each day they can look at about k cards, so of the
k cards with the highest score that day (a card's score is its highest payment score that day),
what share really had fraud that day — averaged over the days of the period. Pure functions of
arrays, so the notebooks and tests call them directly.
"""

from __future__ import annotations

from collections import defaultdict

import numpy as np
from sklearn.metrics import average_precision_score, roc_auc_score

DAY_SECONDS = 86_400.0


def card_precision_at_k(cards: np.ndarray, times: np.ndarray, labels: np.ndarray,
                        scores: np.ndarray, k: int = 100) -> float:
    """Mean over days of the share of fraudulent cards among the day's ``k`` top-scored cards
    (fewer when fewer cards paid that day). NaN without rows."""
    assert len(cards) == len(times) == len(labels) == len(scores)
    best: dict[tuple[int, str], float] = defaultdict(lambda: -np.inf)
    fraud: dict[tuple[int, str], bool] = defaultdict(bool)
    for card, t, label, score in zip(cards, times, labels, scores, strict=True):
        key = (int(t // DAY_SECONDS), str(card))
        best[key] = max(best[key], float(score))
        fraud[key] = fraud[key] or bool(label)
    by_day: dict[int, list[tuple[float, bool]]] = defaultdict(list)
    for key, score in best.items():
        by_day[key[0]].append((score, fraud[key]))
    precisions = []
    for day in sorted(by_day):
        top = sorted(by_day[day], key=lambda entry: -entry[0])[:k]
        precisions.append(sum(1 for _, is_fraud in top if is_fraud) / len(top))
    return float(np.mean(precisions)) if precisions else float("nan")


def evaluate(cards: np.ndarray, times: np.ndarray, labels: np.ndarray, scores: np.ndarray,
             k: int = 100) -> dict[str, float]:
    """The model's metrics on one period (AUC and AP only when both classes occur)."""
    metrics = {
        "rows": float(len(labels)),
        "fraud_rate": float(np.mean(labels)) if len(labels) else 0.0,
        "mean_score": float(np.mean(scores)) if len(scores) else 0.0,
        f"card_precision_at_{k}": card_precision_at_k(cards, times, labels, scores, k),
    }
    if 0 < int(np.sum(labels)) < len(labels):
        metrics["auc_roc"] = float(roc_auc_score(labels, scores))
        metrics["average_precision"] = float(average_precision_score(labels, scores))
    return metrics
