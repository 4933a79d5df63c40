"""Point-in-time training data: no label or feature from after the cut-off reaches training."""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np

from models.datasets import DAY_SECONDS, from_feature_log, from_history, time_splits
from models.facts import LabelFacts, PaymentFacts
from models.features import FEATURE_NAMES

T0 = 1_767_225_600.0
SHARE = FEATURE_NAMES.index("merchant_fraud_share_28d")


def pay(i: int, day: float, merchant: str = "m_1", card: str | None = None) -> PaymentFacts:
    return PaymentFacts(f"pay_{i}", T0 + day * DAY_SECONDS, merchant, 2500, "USD",
                        card or f"card_{i}", f"cus_{i}", f"10.0.0.{i % 250}", None, "US")


def label(payment: PaymentFacts, arrives_day: float) -> LabelFacts:
    return LabelFacts(payment.payment_id, T0 + arrives_day * DAY_SECONDS, payment.merchant_id,
                      payment.time_seconds)


def merchant_history(label_day: float) -> tuple[list[PaymentFacts | LabelFacts], PaymentFacts]:
    """Ten fraudulent payments at m_1 on day 0, labelled on ``label_day``; a probe on day 12."""
    frauds = [pay(i, 0.1 + i * 0.01) for i in range(10)]
    probe = pay(99, 12.0)
    return [*frauds, *(label(p, label_day) for p in frauds), probe], probe


def test_a_payment_sees_the_labels_that_had_arrived_before_it() -> None:
    history, probe = merchant_history(label_day=2.0)
    data = from_history(history)
    row = list(data.payment_ids).index(probe.payment_id)
    assert data.matrix[row, SHARE] > 0.5


def test_a_payment_does_not_see_labels_that_arrived_after_it() -> None:
    history, probe = merchant_history(label_day=20.0)
    data = from_history(history)
    row = list(data.payment_ids).index(probe.payment_id)
    assert data.matrix[row, SHARE] == 0.0, "a label from the future leaked into a feature"


def test_training_labels_are_those_known_at_the_cut_off() -> None:
    early, late = pay(1, 1.0), pay(2, 2.0)
    genuine = [pay(10 + i, 0.5 + i * 0.5) for i in range(20)]
    history = [early, late, *genuine, label(early, 5.0), label(late, 30.0)]
    splits = time_splits(from_history(history), train_days=7, gap_days=7, validation_days=3,
                         test_days=3, start_seconds=T0)
    train = splits.train
    labels = dict(zip(train.data.payment_ids, train.labels, strict=True))
    assert labels["pay_1"] == 1, "a label known at the cut-off (day 14) is used"
    assert labels["pay_2"] == 0, "a label arriving after the cut-off must not be"
    assert train.labels_as_of_seconds == T0 + 14 * DAY_SECONDS


def test_splits_follow_time_with_a_gap_and_rows_after_the_cut_off_stay_out() -> None:
    history: list[PaymentFacts | LabelFacts] = [pay(i, i * 0.25) for i in range(120)]
    splits = time_splits(from_history(history), train_days=10, gap_days=2, validation_days=5,
                         test_days=5, start_seconds=T0)
    train, validation, test = splits.train, splits.validation, splits.test
    assert train.data.times.max() < T0 + 10 * DAY_SECONDS
    assert validation.data.times.min() >= T0 + 12 * DAY_SECONDS
    assert validation.data.times.max() < T0 + 17 * DAY_SECONDS
    assert test.data.times.min() >= T0 + 19 * DAY_SECONDS
    assert len(train.data) == 40 and len(validation.data) == 20 and len(test.data) == 20


def test_the_test_period_is_judged_on_the_eventual_truth() -> None:
    fraud = pay(1, 20.0)
    history = [fraud, pay(2, 20.5), label(fraud, 50.0)]
    splits = time_splits(from_history(history), train_days=10, gap_days=2, validation_days=5,
                         test_days=5, start_seconds=T0)
    assert list(splits.test.labels) == [1, 0]


def test_feature_log_rows_join_labels_as_of_the_cut_off() -> None:
    features = {name: 1.0 for name in FEATURE_NAMES}
    at = datetime(2026, 1, 1, tzinfo=UTC)
    entries = [("pay_b", "card_b", at.replace(day=3), features),
               ("pay_a", "card_a", at, features),
               ("pay_old", "card_c", at, {"amount_log": 1.0})]
    data = from_feature_log(entries, [("pay_a", at.replace(day=20))])
    assert list(data.payment_ids) == ["pay_a", "pay_b"], "time order; old feature sets skipped"
    assert list(data.labels_at(at.replace(day=10).timestamp())) == [0, 0]
    assert list(data.truth()) == [1, 0]
    assert np.all(data.matrix == 1.0)
