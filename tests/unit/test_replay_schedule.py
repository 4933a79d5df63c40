"""The replay's schedule: items go in event-time order per entity, merchants' same-day payments
together, within a window and (with a speed) at their scaled time; and whatever order the
stream worker's stages process what the schedule lets through, the features are exactly the
offline replay's."""

from __future__ import annotations

import functools
import random
from datetime import UTC, datetime

from ingest.contracts import DisputeEvent
from ingest.history import HistoricalPayment, parse_rows, resolve_columns
from ingest.replay import LABEL, ReplayItem, replay_items
from ingest.replay_schedule import Access, Accesses, ReplaySchedule
from ingest.traffic import SimulationConfig, simulate, to_row
from models.datasets import facts
from models.facts import LabelFacts, PaymentFacts, label_facts, payment_facts
from models.features import vector
from models.history import FeatureStore, replay
from payflow.replay import accesses, labels_in
from streams.cases import RiskCase, encode_bundle, encode_label, label_list

HISTORY = SimulationConfig(days=16, customers=50, merchants=5, seed=21,
                           label_delay_days=(0.2, 10.0), compromised_terminals_per_day=0.3)
"""Labels from hours to ten days late: some count for payments of the day they arrive."""
T0 = datetime(2026, 1, 5, 12, tzinfo=UTC).timestamp()


def item(item_id: str, offset_seconds: float = 0.0) -> ReplayItem:
    payment = HistoricalPayment(item_id, 2, datetime.fromtimestamp(T0 + offset_seconds, UTC),
                                "m", "c", None, None, 100, "USD", None, None, None, None, None)
    return next(replay_items([payment], []))


def schedule(table: dict[str, list[Access]], window: int = 100,
             speed: float | None = None) -> ReplaySchedule:
    items = [item(name, offset) for offset, name in enumerate(table)]
    return ReplaySchedule(items, lambda i: table[i.id], window=window, speed=speed)


def ids(items: list[ReplayItem]) -> list[str]:
    return [i.id for i in items]


def test_items_of_disjoint_entities_go_at_once() -> None:
    plan = schedule({"a": [("card:1", None)], "b": [("card:2", None)], "c": [("card:3", None)]})
    assert ids(plan.due(0.0)) == ["a", "b", "c"]


def test_an_item_waits_for_the_earlier_item_of_its_entity() -> None:
    plan = schedule({"a": [("card:1", None)], "b": [("card:2", None)],
                     "c": [("card:1", None), ("card:2", None)]})
    assert ids(plan.due(0.0)) == ["a", "b"]
    plan.finish("a")
    assert plan.due(0.0) == [], "still waiting for b"
    plan.finish("b")
    assert ids(plan.due(0.0)) == ["c"]
    plan.finish("c")
    assert plan.done and (plan.sent, plan.finished) == (3, 3)


def test_a_group_goes_together_and_the_next_waits_for_all_of_it() -> None:
    plan = schedule({"a": [("merchant:m", "day:1")], "b": [("merchant:m", "day:1")],
                     "c": [("merchant:m", "day:2")], "d": [("merchant:m", "day:2")],
                     "e": [("merchant:m", None)]})
    assert ids(plan.due(0.0)) == ["a", "b"]
    plan.finish("b")
    assert plan.due(0.0) == []
    plan.finish("a")
    assert ids(plan.due(0.0)) == ["c", "d"]
    plan.finish("c")
    plan.finish("d")
    assert ids(plan.due(0.0)) == ["e"]


def test_no_more_than_the_window_is_open() -> None:
    plan = schedule({name: [(f"card:{name}", None)] for name in "abcde"}, window=2)
    assert ids(plan.due(0.0)) == ["a", "b"]
    plan.finish("a")
    assert ids(plan.due(0.0)) == ["c"]


def test_with_a_speed_an_item_waits_for_its_scaled_event_time() -> None:
    plan = schedule({"a": [("card:1", None)], "b": [("card:2", None)]}, speed=2.0)
    assert ids(plan.due(0.0)) == ["a"]
    assert plan.next_due_seconds() == 0.5, "1 s of history at 2x"
    assert plan.due(0.49) == [] and ids(plan.due(0.5)) == ["b"]


def test_finishing_an_item_not_sent_or_unknown_changes_nothing() -> None:
    plan = schedule({"a": [("card:1", None)], "b": [("card:1", None)]})
    plan.finish("b")
    plan.finish("nobody")
    assert ids(plan.due(0.0)) == ["a"] and plan.finished == 0


def test_a_label_goes_before_a_payment_of_the_same_instant() -> None:
    at = datetime.fromtimestamp(T0, UTC)
    paid = HistoricalPayment("p1", 2, at, "m", "c", None, None, 100, "USD", None, None, None,
                             True, at)
    assert ids(list(replay_items([paid], [paid]))) == [LABEL + "p1", "p1"]


@functools.cache
def imported() -> tuple[HistoricalPayment, ...]:
    """The simulated history as `payflow import` reads its file."""
    rows = [to_row(p) for p in simulate(HISTORY)]
    parsed = list(parse_rows(enumerate(rows, start=2), resolve_columns(rows[0]), str))
    assert all(isinstance(p, HistoricalPayment) for p in parsed)
    return tuple(p for p in parsed if isinstance(p, HistoricalPayment))


def pipeline(rule: Accesses, seed: int, window: int = 400) -> dict[str, list[float]]:
    """What the worker computes when, of the items in flight, it processes any one next: the
    stages run independently, so each item may overtake any other item the schedule let go."""
    history = imported()
    labels = sorted((p for p in history if p.is_fraud), key=lambda p: (p.labelled_at, p.line))
    plan = ReplaySchedule(replay_items(history, labels), rule, window=window)
    rng, store, in_flight = random.Random(seed), FeatureStore(), list[ReplayItem]()
    features: dict[str, list[float]] = {}
    for _ in range(10 * len(history)):
        in_flight += plan.due(0.0)
        if not in_flight:
            break
        chosen = in_flight.pop(rng.randrange(len(in_flight)))
        message = chosen.message
        if isinstance(message, DisputeEvent):
            store.label(label_facts(message))
        else:
            features[chosen.id] = vector(store.observe(payment_facts(message)))
        plan.finish(chosen.id)
    assert plan.done, "the schedule stalled"
    return features


@functools.cache
def offline() -> dict[str, list[float]]:
    return {p.payment_id: vector(f) for p, f in replay(facts(simulate(HISTORY)))}


def test_any_order_the_schedule_allows_gives_the_offline_features() -> None:
    expected = offline()
    assert any(v[-1] > 0 for v in expected.values()), "labels reach the merchants' fraud share"
    for seed in range(3):
        assert pipeline(accesses, seed) == expected


def test_without_cards_and_customers_in_the_schedule_features_would_differ() -> None:
    def merchants_only(item: ReplayItem) -> list[Access]:
        return [a for a in accesses(item) if a[0].startswith("merchant:")]

    assert pipeline(merchants_only, seed=0) != offline(), "the check above catches reordering"


def test_if_every_label_joined_its_day_features_would_differ() -> None:
    def labels_shared(item: ReplayItem) -> list[Access]:
        if isinstance(item.message, DisputeEvent):
            day = int(item.time_seconds // 86_400)
            return [(f"merchant:{item.message.merchant_id}", f"day:{day}")]
        return accesses(item)

    assert pipeline(labels_shared, seed=0) != offline()


def test_without_merchant_days_features_would_differ() -> None:
    def no_merchant(item: ReplayItem) -> list[Access]:
        return [a for a in accesses(item) if not a[0].startswith("merchant:")]

    assert pipeline(no_merchant, seed=0) != offline()


def test_a_label_is_recognised_on_the_merchant_stage_alone_or_bundled() -> None:
    facts = LabelFacts("pay_1", T0, "m", T0 - 60)
    case = RiskCase(PaymentFacts("pay_2", T0, "m", 100, "USD", "card"), None, {"x": 1.0})
    assert labels_in(encode_label(facts)) == [LABEL + "pay_1"]
    assert labels_in(encode_bundle([case.to_list(), label_list(facts)])) == [LABEL + "pay_1"]
    assert labels_in(encode_bundle([case.to_list()])) == []
    assert labels_in(b'["case","label"]') == [] and labels_in(b'{"label') == []
