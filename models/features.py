"""The fraud features: one implementation for the stream worker and for offline training.

Each entity a payment touches — its card, its network origin (IP address or device), its
customer and its merchant — has one compact state record holding all of that entity's windows.
A step function takes the entity's prior record (None for a new entity) and the payment, and
returns the entity's features for that payment and the updated record. Records are JSON-ready
lists, exactly what the worker's tables hold, so online and offline share the encoding too. A
step updates the record it is given in place (its caller replaces it with the one returned, and
keeps no other reference): decoding a record into objects and encoding them back per event cost
the worker more than the features' arithmetic.

Every step is idempotent per payment (``remembering``): Kafka redelivers after a crash or a
rebalance, and a redelivered payment must neither count twice nor see itself in its history.
Velocity counts and sums include the payment itself; the amount z-score, the seconds since the
previous payment and the new-country signal compare the payment with the history before it.
The merchant's fraud share counts payments from 35 to 7 days before the payment (28 days) and
only the labels known by then: labels arrive late, and a feature must not see the future.
"""

from __future__ import annotations

import copy
import functools
import hashlib
import math
import struct
from binascii import a2b_base64, b2a_base64
from bisect import bisect_left, insort
from collections.abc import Callable
from operator import itemgetter
from typing import Any

from models.facts import LabelFacts, PaymentFacts
from models.windows import BucketedCounter, BucketsState, RecencySet, RunningMoments

Record = list[Any]
"""An entity's state as a JSON-ready list (what a table stores)."""
Features = dict[str, float]

MINUTE, HOUR, DAY = 60, 3600, 86_400
NO_PREVIOUS_SECONDS = 30.0 * DAY
"""``card_seconds_since_previous`` for a card's first payment (and the cap for later ones)."""
LABEL_DELAY_DAYS = 7
FRAUD_WINDOW_DAYS = 28


CARD_MINUTE, CARD_HOUR, CARD_DAY = (BucketedCounter(10, 6), BucketedCounter(5 * MINUTE, 12),
                                    BucketedCounter(HOUR, 24))
"""The card's velocity windows: 1 minute, 1 hour and 24 hours."""
CARD_MERCHANTS, CARD_IPS = RecencySet(DAY, 64), RecencySet(DAY, 64)
CARD_COUNTRIES = RecencySet(3650.0 * DAY, 16)
ORIGIN_CARDS, ORIGIN_MINUTE = RecencySet(HOUR, 256), BucketedCounter(10, 6)
CUSTOMER_HOURS, CUSTOMER_DAYS = BucketedCounter(HOUR, 24), BucketedCounter(DAY, 30)
MERCHANT_DAYS = BucketedCounter(DAY, LABEL_DELAY_DAYS + FRAUD_WINDOW_DAYS + 1)
_CARD_WINDOWS = (("card_count_1m", "card_amount_1m", CARD_MINUTE),
                 ("card_count_1h", "card_amount_1h", CARD_HOUR),
                 ("card_count_24h", "card_amount_24h", CARD_DAY))


def _card_step(record: Record | None, payment: PaymentFacts) -> tuple[Features, Record]:
    """Per card: velocity over 1 min, 1 h, 24 h; distinct merchants and IPs over 24 h; time
    since the previous payment; the amount against the card's running mean; a new country."""
    if record is None:
        record = [[], [], [], [], [], [], [0.0, 0.0, 0.0], None]
    minute, hour, day, merchants, ips, countries, moments, previous = record
    t, amount = payment.time_seconds, float(payment.amount_minor)
    since = NO_PREVIOUS_SECONDS if previous is None else min(max(t - previous, 0.0),
                                                             NO_PREVIOUS_SECONDS)
    country = payment.country
    new_country = country is not None and bool(countries) and not CARD_COUNTRIES.holds(
        countries, country)
    features: Features = {
        "card_history_count": moments[0],
        "card_seconds_since_previous": since,
        "card_amount_mean": moments[1],
        "card_amount_std": RunningMoments.std(moments),
        "amount_zscore": RunningMoments.zscore(moments, amount),
        "new_country": 1.0 if new_country else 0.0,
    }
    for (count_name, amount_name, window), state in zip(_CARD_WINDOWS, (minute, hour, day),
                                                        strict=True):
        window.add(state, t, amount)
        features[count_name], features[amount_name] = window.window(state, t)
    CARD_MERCHANTS.add(merchants, payment.merchant_id, t)
    if payment.ip_address:
        CARD_IPS.add(ips, payment.ip_address, t)
    if country:
        CARD_COUNTRIES.add(countries, country, t)
    RunningMoments.add(moments, amount)
    features["card_distinct_merchants_24h"] = float(CARD_MERCHANTS.distinct(merchants, t))
    features["card_distinct_ips_24h"] = float(CARD_IPS.distinct(ips, t))
    record[7] = t if previous is None else max(previous, t)
    return features, record


def _origin_step(record: Record | None, payment: PaymentFacts) -> tuple[Features, Record]:
    """Per IP address (else device): distinct cards over 1 h (card testing), count over 1 min."""
    if record is None:
        record = [[], []]
    cards, minute = record
    t = payment.time_seconds
    ORIGIN_CARDS.add(cards, payment.card[:16], t)
    ORIGIN_MINUTE.add(minute, t, float(payment.amount_minor))
    features = {
        "origin_distinct_cards_1h": float(ORIGIN_CARDS.distinct(cards, t)),
        "origin_count_1m": ORIGIN_MINUTE.window(minute, t)[0],
    }
    return features, record


def _customer_step(record: Record | None, payment: PaymentFacts) -> tuple[Features, Record]:
    """Per customer: number of payments and their average amount over 1, 7 and 30 days."""
    if record is None:
        record = [[], []]
    hours, days = record
    t, amount = payment.time_seconds, float(payment.amount_minor)
    CUSTOMER_HOURS.add(hours, t, amount)
    CUSTOMER_DAYS.add(days, t, amount)
    features: Features = {}
    for name, (count, total) in (("1d", CUSTOMER_HOURS.window(hours, t)),
                                 ("7d", CUSTOMER_DAYS.window(days, t, 7)),
                                 ("30d", CUSTOMER_DAYS.window(days, t))):
        features[f"customer_count_{name}"] = count
        features[f"customer_avg_amount_{name}"] = total / count if count else 0.0
    return features, record


def _merchant_step(record: Record | None, payment: PaymentFacts) -> tuple[Features, Record]:
    """Per merchant: share of labelled-fraudulent payments over the 28 days ending 7 days ago."""
    payments, labels = _merchant_state(record)
    t = payment.time_seconds
    MERCHANT_DAYS.add(payments, t, 1.0)
    today = int(t // DAY)
    first, last = today - LABEL_DELAY_DAYS - FRAUD_WINDOW_DAYS, today - LABEL_DELAY_DAYS
    counted = float(sum(c for i, c, _ in payments if first <= i < last))
    frauds = float(bisect_left(labels, last, key=_label_day)
                   - bisect_left(labels, first, key=_label_day))
    features = {
        "merchant_payments_28d": counted,
        "merchant_fraud_share_28d": frauds / counted if counted else 0.0,
    }
    newest = today if record is None else max(int(record[2]), today)
    return features, [payments, labels, newest, MERCHANT_RECORD_VERSION]


def merchant_label(record: Record | None, label: LabelFacts) -> Record:
    """Record a fraud label against the day of the labelled payment (once per payment)."""
    if record is None:
        return [_merchant_label(None, label), PACKED, []]
    return [_merchant_label(record[0], label), *record[1:]]


def _merchant_label(record: Record | None, label: LabelFacts) -> Record:
    payments, labels = _merchant_state(record)
    newest = max(int(label.time_seconds // DAY), int(record[2]) if record else 0)
    suffix = label.payment_id[-16:]
    horizon = newest - LABEL_DELAY_DAYS - FRAUD_WINDOW_DAYS - 1
    kept = [entry for entry in labels if entry[1] >= horizon and entry[0] != suffix]
    insort(kept, [suffix, int(label.payment_time_seconds // DAY)], key=_label_order)
    return [payments, kept[-MAX_MERCHANT_LABELS:], newest, MERCHANT_RECORD_VERSION]


MAX_MERCHANT_LABELS = 5000
"""Labels a merchant's record keeps (the newest by day): a bound on its size under an attack."""
MERCHANT_RECORD_VERSION = 2
"""Merchant records of version 2 keep their labels ordered by (day, payment): a payment's fraud
count is two binary searches, not a pass over every label (which cost about 0.9 ms a payment at a
merchant with 2,700 labels). Records without a version (ordered by payment) are sorted on load."""
_label_day = itemgetter(1)


def _label_order(entry: list[Any]) -> tuple[int, str]:
    return entry[1], entry[0]


def _merchant_state(record: Record | None) -> tuple[BucketsState, list[list[Any]]]:
    """The payments counter and the labels, [payment id suffix, day] ordered by (day, id)."""
    if record is None:
        return [], []
    if len(record) > 3 and record[3] == MERCHANT_RECORD_VERSION:
        return record[0], record[1]
    return record[0], sorted(([str(k), int(d)] for k, d in record[1]), key=_label_order)


Step = Callable[[Record | None, PaymentFacts], tuple[Features, Record]]
PACKED = 2
"""In a remembering record's second place: its recent features are packed (``remembering``).
Records written before held the step's feature names there, and each recent vector as a list."""


def remembering(step: Step, names: tuple[str, ...], vectors: int, ids: int) -> Step:
    """``step`` made idempotent per payment: a payment seen again (a redelivery after a crash
    or a rebalance) is not counted twice. ``names`` are the step's features. The record keeps
    the features of its last ``vectors`` payments, which a redelivery of one of them gets back
    exactly, and a tag of each of its last ``ids`` payments; a redelivery of an older one of
    those gets the features the step would give it now, from a copy of the record, which is
    left as it was. Record: [inner, PACKED, [[payment id, packed features], ...], tags].

    The bound is on payments per key within a redelivery: Kafka redelivers what the worker
    had not committed when it stopped, under a second of requests, and ``ids`` payments of one
    card within a second is far beyond any card's pace (a replay of history at full speed can
    exceed it, and would count the excess twice if the worker crashed mid-replay).

    A recent vector is read back only for a redelivery, so it is stored as one string (the
    doubles in ``names`` order, base64): a list of floats cost the worker an object per value
    to decode, encode and free with every record, and the names with it. Both are exact. The
    tags (``_tag``, 8 characters each) are one string too. A record of the previous formats
    ([inner, names, [[payment id, [value, ...]], ...]], or packed without tags) still reads,
    and is written back in this one; its old vectors stay lists until they age out."""
    layout = struct.Struct(f"<{len(names)}d")
    kept = ids * TAG_CHARS

    def recall(stored_names: Any, values: Any) -> Features:
        if isinstance(values, str):
            return dict(zip(names, layout.unpack(a2b_base64(values)), strict=True))
        return dict(zip(stored_names if isinstance(stored_names, list) else names, values,
                        strict=True))

    def run(record: Record | None, payment: PaymentFacts) -> tuple[Features, Record]:
        tag = _tag(payment.payment_id)
        if record is None:
            inner, recent, tags = None, [], ""
        else:
            inner, stored_names, recent, *rest = record
            # A record of a format before the tags: its remembered payments are its tags.
            tags = rest[0] if rest else "".join(_tag(payment_id) for payment_id, _ in recent)
            if _tagged(tags, tag):
                for payment_id, values in recent:
                    if payment_id == payment.payment_id:
                        return recall(stored_names, values), record
                return step(copy.deepcopy(inner), payment)[0], record
        features, inner = step(inner, payment)
        assert len(features) == len(names), (names, features)  # and in their order (tests)
        packed = b2a_base64(layout.pack(*features.values()), newline=False)
        recent.append([payment.payment_id, packed.decode("ascii")])
        del recent[:-vectors]
        return features, [inner, PACKED, recent, (tags + tag)[-kept:]]

    return run


TAG_CHARS = 8


@functools.lru_cache(maxsize=4096)
def _tag(payment_id: str) -> str:
    """8 characters standing for a payment id: 48 bits of its BLAKE2 hash, base64. Cached: a
    payment's four steps each ask."""
    digest = hashlib.blake2b(payment_id.encode(), digest_size=6).digest()
    return b2a_base64(digest, newline=False).decode("ascii")


def _tagged(tags: str, tag: str) -> bool:
    """Whether ``tag`` is one of the tags ``tags`` holds (at a multiple of 8, not across two)."""
    position = tags.find(tag)
    while position > 0 and position % TAG_CHARS:
        position = tags.find(tag, position + 1)
    return position >= 0


CARD_FEATURES = (
    "card_history_count", "card_seconds_since_previous", "card_amount_mean", "card_amount_std",
    "amount_zscore", "new_country", "card_count_1m", "card_amount_1m", "card_count_1h",
    "card_amount_1h", "card_count_24h", "card_amount_24h", "card_distinct_merchants_24h",
    "card_distinct_ips_24h",
)  # fmt: skip
ORIGIN_FEATURES = ("origin_distinct_cards_1h", "origin_count_1m")
CUSTOMER_FEATURES = tuple(f"customer_{kind}_{name}" for name in ("1d", "7d", "30d")
                          for kind in ("count", "avg_amount"))
MERCHANT_FEATURES = ("merchant_payments_28d", "merchant_fraud_share_28d")
card_features = remembering(_card_step, CARD_FEATURES, vectors=4, ids=64)
"""Per card (see ``_card_step``), idempotent per payment."""
origin_features = remembering(_origin_step, ORIGIN_FEATURES, vectors=4, ids=128)
"""Per IP address or device (see ``_origin_step``), idempotent per payment."""
customer_features = remembering(_customer_step, CUSTOMER_FEATURES, vectors=4, ids=64)
"""Per customer (see ``_customer_step``), idempotent per payment."""
merchant_features = remembering(_merchant_step, MERCHANT_FEATURES, vectors=4, ids=128)
"""Per merchant (see ``_merchant_step``), idempotent per payment."""


def payment_features(payment: PaymentFacts) -> Features:
    """Features of the payment alone."""
    return {"amount_log": math.log1p(payment.amount_minor)}


FEATURE_NAMES: tuple[str, ...] = (
    "amount_log",
    "card_count_1m", "card_amount_1m", "card_count_1h", "card_amount_1h",
    "card_count_24h", "card_amount_24h", "card_distinct_merchants_24h",
    "card_distinct_ips_24h", "card_seconds_since_previous", "card_history_count",
    "card_amount_mean", "card_amount_std", "amount_zscore", "new_country",
    "origin_distinct_cards_1h", "origin_count_1m",
    "customer_count_1d", "customer_avg_amount_1d", "customer_count_7d",
    "customer_avg_amount_7d", "customer_count_30d", "customer_avg_amount_30d",
    "merchant_payments_28d", "merchant_fraud_share_28d",
)  # fmt: skip
"""Every feature, in the order of a model's input vector."""

ABSENT_ORIGIN: Features = dict.fromkeys(ORIGIN_FEATURES, 0.0)
"""Origin features of a payment with neither IP address nor device id."""
ABSENT_CUSTOMER: Features = {
    f"customer_{kind}_{name}": 0.0 for kind in ("count", "avg_amount") for name in
    ("1d", "7d", "30d")
}
"""Customer features of a payment without a customer id."""


def vector(features: Features) -> list[float]:
    """The features in ``FEATURE_NAMES`` order (a missing feature is an error)."""
    return [features[name] for name in FEATURE_NAMES]
