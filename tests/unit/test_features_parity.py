"""The feature code: online stages and offline replay agree, windows behave as documented."""

from __future__ import annotations

import orjson
from hypothesis import given, settings
from hypothesis import strategies as st

from models.facts import LabelFacts, PaymentFacts
from models.features import (
    ABSENT_CUSTOMER,
    ABSENT_ORIGIN,
    CARD_FEATURES,
    CUSTOMER_FEATURES,
    FEATURE_NAMES,
    MERCHANT_FEATURES,
    ORIGIN_FEATURES,
    PACKED,
    TAG_CHARS,
    Record,
    Step,
    _tag,
    _tagged,
    card_features,
    customer_features,
    merchant_features,
    merchant_label,
    origin_features,
    payment_features,
    vector,
)
from models.history import replay
from models.synthetic import generate

T0 = 1_700_000_000.0


def payment(i: int, t: float, card: str = "card_a", amount: int = 2500, ip: str | None = "1.2.3.4",
            customer: str | None = "cus_1", country: str | None = "US",
            merchant: str = "m_1") -> PaymentFacts:
    return PaymentFacts(f"pay_{i}", t, merchant, amount, "USD", card, customer, ip, None, country)


def online(history: list[PaymentFacts | LabelFacts]) -> list[list[float]]:
    """The stream worker's path: one table per entity holding encoded records, stage by stage."""
    tables: dict[str, dict[str, bytes]] = {"card": {}, "origin": {}, "customer": {},
                                           "merchant": {}}

    def step(kind: str, key: str, function, facts):  # type: ignore[no-untyped-def]
        raw = tables[kind].get(key)
        record: Record | None = None if raw is None else orjson.loads(raw)
        result = function(record, facts)
        features, new_record = result if isinstance(result, tuple) else ({}, result)
        tables[kind][key] = orjson.dumps(new_record)
        return features

    vectors = []
    ordered = sorted(history, key=lambda e: (e.time_seconds, isinstance(e, PaymentFacts)))
    for event in ordered:
        if isinstance(event, LabelFacts):
            step("merchant", event.merchant_id, merchant_label, event)
            continue
        features = payment_features(event)
        features.update(step("card", event.card, card_features, event))
        origin = event.origin
        features.update(step("origin", origin, origin_features, event) if origin
                        else ABSENT_ORIGIN)
        customer = event.customer
        features.update(step("customer", customer, customer_features, event) if customer
                        else ABSENT_CUSTOMER)
        features.update(step("merchant", event.merchant_id, merchant_features, event))
        vectors.append(vector(features))
    return vectors


def offline(history: list[PaymentFacts | LabelFacts]) -> list[list[float]]:
    return [vector(features) for _, features in replay(history)]


def test_online_and_offline_vectors_are_identical_on_a_synthetic_history() -> None:
    history = generate(seed=3, customers=60, days=40).events
    assert online(history) == offline(history)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.floats(0, 3 * 86_400), st.integers(1, 5_000_000),
                          st.sampled_from(["card_a", "card_b", "card_c"]),
                          st.sampled_from([None, "1.1.1.1", "2.2.2.2"]),
                          st.sampled_from([None, "US", "FR"])), max_size=40))
def test_online_equals_offline_for_any_history(rows: list[tuple[float, int, str, str | None,
                                                                 str | None]]) -> None:
    history: list[PaymentFacts | LabelFacts] = [
        payment(i, T0 + t, card, amount, ip, None if i % 3 else "cus_1", country)
        for i, (t, amount, card, ip, country) in enumerate(rows)
    ]
    assert online(history) == offline(history)


def test_a_vector_has_every_feature_in_order() -> None:
    (_, features), = replay([payment(1, T0)])
    assert list(features) != [] and set(features) == set(FEATURE_NAMES)
    assert len(vector(features)) == len(FEATURE_NAMES)


def test_card_velocity_counts_the_payment_and_forgets_after_the_window() -> None:
    history = [payment(i, T0 + i * 5) for i in range(4)] + [payment(9, T0 + 2 * 86_400)]
    results = [features for _, features in replay(history)]
    assert [f["card_count_1m"] for f in results[:4]] == [1, 2, 3, 4]
    assert results[4]["card_count_1m"] == 1 and results[4]["card_count_24h"] == 1
    assert results[3]["card_seconds_since_previous"] == 5


def test_an_amount_spike_on_a_steady_card_has_a_high_zscore() -> None:
    steady = [payment(i, T0 + i * 3600, amount=2500 + i) for i in range(6)]
    spike = payment(99, T0 + 7 * 3600, amount=250_000)
    features = [f for _, f in replay([*steady, spike])]
    assert abs(features[5]["amount_zscore"]) < 1
    assert features[-1]["amount_zscore"] >= 8


def test_many_cards_from_one_ip_are_counted_per_origin() -> None:
    burst = [payment(i, T0 + i, card=f"card_{i}", customer=None) for i in range(12)]
    last = [f for _, f in replay(burst)][-1]
    assert last["origin_distinct_cards_1h"] == 12 and last["origin_count_1m"] == 12


def test_a_country_new_to_the_card_is_flagged_but_not_its_first() -> None:
    features = [f for _, f in replay([payment(1, T0, country="US"), payment(2, T0 + 60),
                                      payment(3, T0 + 120, country="BR")])]
    assert [f["new_country"] for f in features] == [0.0, 0.0, 1.0]


def test_merchant_fraud_share_counts_only_labels_known_and_payments_older_than_7_days() -> None:
    day = 86_400.0
    old = [payment(i, T0 + i * 60, card=f"c{i}") for i in range(10)]
    label = LabelFacts("pay_3", T0 + 9 * day, "m_1", T0 + 3 * 60)
    too_soon = payment(50, T0 + 5 * day, card="x")
    before_label = payment(51, T0 + 8 * day + 1, card="y")
    after_label = payment(52, T0 + 10 * day, card="z")
    features = {p.payment_id: f for p, f in
                replay([*old, label, too_soon, before_label, after_label])}
    assert features["pay_50"]["merchant_payments_28d"] == 0
    assert features["pay_51"]["merchant_payments_28d"] == 10
    assert features["pay_51"]["merchant_fraud_share_28d"] == 0
    assert features["pay_52"]["merchant_fraud_share_28d"] == 0.1


@settings(max_examples=40, deadline=None)
@given(st.lists(st.tuples(st.floats(0, 86_400), st.sampled_from(["card_a", "card_b"]),
                          st.booleans()), min_size=1, max_size=30))
def test_a_redelivered_payment_gets_the_same_features_and_counts_once(
    rows: list[tuple[float, str, bool]],
) -> None:
    history = [payment(i, T0 + t, card) for i, (t, card, _) in enumerate(rows)]
    ordered = sorted(history, key=lambda p: p.time_seconds)
    redelivered = [p for p in ordered for _ in range(2 if rows[int(p.payment_id[4:])][2] else 1)]
    once = [vector(f) for _, f in replay(ordered)]
    twice = {p.payment_id: vector(f) for p, f in replay(redelivered)}
    assert [twice[p.payment_id] for p in ordered] == once


def test_a_burst_redelivered_after_a_crash_counts_once() -> None:
    """Kafka redelivers every request the worker had not committed: here the card's last 20
    payments, of which the record keeps the features of 4 and a tag of 64. Each is found:
    the 4 newest get their own features back, the older ones the features the step gives
    them now, and the record is as it was after the burst."""
    record: Record | None = None
    burst = [payment(i, T0 + i, card="card_burst") for i in range(20)]
    first = []
    for each in burst:
        features, record = card_features(record, each)
        first.append(features)
    assert record is not None
    after_burst = orjson.dumps(record)
    for index, each in enumerate(burst):
        features, record = card_features(record, each)
        if index >= 16:
            assert features == first[index]
        else:  # as the card is now: the whole burst is its history
            assert features["card_history_count"] == 20.0
    assert orjson.dumps(record) == after_burst
    features, _ = card_features(record, payment(20, T0 + 20, card="card_burst"))
    assert features["card_history_count"] == 20.0 and features["card_count_1m"] == 21.0


def test_a_payment_older_than_the_tags_kept_is_counted_again() -> None:
    """The bound of ``remembering``: a card's 65th payment back is no longer known."""
    record: Record | None = None
    for i in range(65):
        _, record = card_features(record, payment(i, T0 + i, card="card_long"))
    assert record is not None
    _, record = card_features(record, payment(1, T0 + 1, card="card_long"))  # still known
    assert record[0][6][0] == 65.0
    _, record = card_features(record, payment(0, T0, card="card_long"))
    assert record[0][6][0] == 66.0


def test_each_step_gives_its_features_in_the_order_its_remembered_vectors_are_packed() -> None:
    """``remembering`` packs a step's values in dict order and reads them back by the
    step's declared names: the two orders must agree (with and without optional facts)."""
    for facts in (payment(1, T0), payment(2, T0, ip=None, customer=None, country=None)):
        for step, names in ((card_features, CARD_FEATURES), (origin_features, ORIGIN_FEATURES),
                            (customer_features, CUSTOMER_FEATURES),
                            (merchant_features, MERCHANT_FEATURES)):
            features, record = step(None, facts)
            assert tuple(features) == names
            again, _ = step(copied(record), facts)
            assert list(again.items()) == list(features.items())


def test_a_tag_is_found_only_where_a_tag_starts() -> None:
    tags = "AAAAAAAA" + "BBBBCCCC" + "CCCCDDDD"
    assert _tagged(tags, "AAAAAAAA") and _tagged(tags, "CCCCDDDD")
    assert not _tagged(tags, "CCCCCCCC"), "spans two tags"
    assert not _tagged(tags, "BBBBBBBB") and not _tagged("", "AAAAAAAA")
    assert len(_tag("pay_1")) == TAG_CHARS and _tag("pay_1") != _tag("pay_2")


def copied(record: Record) -> Record:
    """A copy, as a table read gives (a step updates the record it is given)."""
    return orjson.loads(orjson.dumps(record))


def previous_format(record: Record, step: Step, names: tuple[str, ...]) -> Record:
    """``record`` as records were written before their recent features were packed: the
    step's feature names in second place, and each recent vector a list of floats."""
    inner, packed, recent, _ = record
    assert packed == PACKED
    unpacked = []
    for payment_id, _ in recent:
        features, _ = step(copied(record), payment(int(payment_id[4:]), T0))
        unpacked.append([payment_id, [features[name] for name in names]])
    return copied([inner, list(names), unpacked])


def test_a_record_of_the_previous_format_reads_the_same_and_is_written_packed() -> None:
    """Records written before the packed format (the feature names in every record, each
    remembered vector a list) are still in the tables after an upgrade: a redelivered payment
    gets its features back from them, a new payment sees the same history as in a packed
    record, and the record is written back packed, its old entries still readable."""
    for step, names in ((card_features, CARD_FEATURES), (origin_features, ORIGIN_FEATURES),
                        (merchant_features, MERCHANT_FEATURES)):
        record: Record | None = None
        firsts = {}
        for i in range(3):
            firsts[f"pay_{i}"], record = step(record, payment(i, T0 + 60 * i))
        assert record is not None and record[1] == PACKED
        assert names[0].encode() not in orjson.dumps(record), "feature names in the record"
        old = previous_format(record, step, names)
        for payment_id, features in firsts.items():
            again, same = step(copied(old), payment(int(payment_id[4:]), T0))
            assert again == features and same[1] == list(names), "counted twice"
        from_old, written = step(copied(old), payment(3, T0 + 240))
        from_new, _ = step(copied(record), payment(3, T0 + 240))
        assert from_old == from_new
        assert written[1] == PACKED and isinstance(written[2][-1][1], str)
        for payment_id, features in firsts.items():  # old entries, now in a packed record
            again, _ = step(copied(written), payment(int(payment_id[4:]), T0))
            assert again == features


def test_two_merchants_customers_with_the_same_id_are_counted_apart() -> None:
    """Customer ids are each merchant's own: ``cus_1`` of one merchant is not another's."""
    history = [payment(0, T0, card="card_a", merchant="m_1"),
               payment(1, T0 + 60, card="card_b", merchant="m_1"),
               payment(2, T0 + 120, card="card_c", merchant="m_2")]
    counts = [features["customer_count_1d"] for _, features in replay(history)]
    assert counts == [1.0, 2.0, 1.0]


def test_a_merchant_counts_each_labelled_payment_once_among_thousands_of_labels() -> None:
    """The labels are kept in day order and counted by binary search: the count over the 28-day
    window equals a plain count, a payment labelled twice counts once, and a record of the
    previous format (labels ordered by payment, no version) reads the same."""
    day = 86_400.0
    record: Record | None = None
    labelled_days: dict[str, int] = {}
    for i in range(3_000):  # a label every 20 minutes, each for a payment 3 to 12 days older
        paid = T0 + i * 1200 - (3 + i % 10) * day
        label = LabelFacts(f"pay_{i % 2_900}", T0 + i * 1200, "m_1", paid)
        record = merchant_label(record, label)
        labelled_days[label.payment_id[-16:]] = int(paid // day)  # the later label wins
    assert record is not None
    now = T0 + 3_000 * 1200 + 9 * day
    today = int(now // day)
    expected = sum(1 for d in labelled_days.values() if today - 35 <= d < today - 7)
    # A step updates the record it is given: give it a copy, to use the record again below.
    features, _ = merchant_features(orjson.loads(orjson.dumps(record)), payment(9_999, now))
    counted = features["merchant_payments_28d"]
    assert counted == 0  # no payment of this merchant yet: the share is 0 whatever the labels
    inner, names, recent = record
    previous_format = [[inner[0], sorted(inner[1]), inner[2]], names, recent]
    for labels in (record, previous_format):
        # the payments counter filled as if 100 payments had been seen 10 days before `now`
        filled = orjson.loads(orjson.dumps(labels))
        filled[0][0] = [[float(today - 10), 100.0, 100.0]]
        features, after = merchant_features(filled, payment(9_999, now))
        assert features["merchant_fraud_share_28d"] == expected / 100, (expected, features)
        assert after[0][1] == sorted(inner[1], key=lambda e: (e[1], e[0]))
    assert 0 < expected < 2_900
