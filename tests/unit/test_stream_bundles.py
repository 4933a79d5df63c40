"""Bundles between the risk engine's stages: a batch's cases bound for one partition of the next
stage travel in one message, in order, on the partition Kafka's own partitioner gives their keys
(so a label sent by key alone reaches the same table partition as the merchant's cases)."""

from __future__ import annotations

import orjson
import pytest
from aiokafka.partitioner import DefaultPartitioner

from models.facts import LabelFacts, PaymentFacts
from streams.cases import RiskCase, decode, decode_bundle, encode_bundle, encode_label, label_list
from streams.stages import MAX_BUNDLE, Bundles, Outgoing, Stage, partition_of

CARDS = Stage("risk.cards", 6)


def case(payment_id: str, card: str = "card_1") -> RiskCase:
    facts = PaymentFacts(payment_id, 1_700_000_000.5, "m_1", 2500, "USD", card,
                         customer_id="cus_1", ip_address="203.0.113.9", country="FR")
    return RiskCase(facts, "replies.api-1", {"amount_log": 7.82, "card_count_1m": 2.0})


def test_a_bundle_round_trips_its_cases_and_labels_in_order() -> None:
    label = LabelFacts("pay_9", 1_700_000_100.0, "m_1", 1_699_000_000.0)
    items = decode_bundle(encode_bundle([case("pay_1").to_list(), label_list(label),
                                         case("pay_2").to_list()]))
    assert items == [case("pay_1"), label, case("pay_2")]


def test_a_single_item_message_is_a_bundle_of_one() -> None:
    label = LabelFacts("pay_9", 1_700_000_100.0, "m_1", 1_699_000_000.0)
    assert decode_bundle(encode_label(label)) == [label]
    assert decode(case("pay_1").encode()) == case("pay_1")


@pytest.mark.parametrize("raw", [None, b"", b"{}", b"[]", b'["bundle", ["case", "short"]]',
                                 b'["bundle", 3]', b'["unknown", 1]', b"not json"])
def test_a_malformed_stage_message_is_a_value_error(raw: bytes | None) -> None:
    with pytest.raises(ValueError):
        decode_bundle(raw)


def test_the_partition_is_kafkas_default_partitioners() -> None:
    partitioner = DefaultPartitioner()
    for number in range(200):
        key = f"card_{number}".encode()
        assert partition_of(key, 6) == partitioner(key, list(range(6)), list(range(6)))


def test_cases_are_grouped_by_destination_partition_keeping_their_order() -> None:
    bundles = Bundles()
    keys = [f"card_{n % 17}" for n in range(60)]
    for number, card in enumerate(keys):
        bundles.add(CARDS, card.encode(), case(f"pay_{number}", card).to_list())
    messages = bundles.messages()
    assert len({partition for _, partition, _, _, _ in messages}) == len(messages)
    seen = []
    for topic, partition, key, value, headers in messages:
        assert topic == CARDS.name and headers is None
        assert key is not None and partition_of(key, 6) == partition
        items = decode_bundle(value)
        assert all(partition_of(i.facts.card.encode(), 6) == partition for i in items
                   if isinstance(i, RiskCase))
        seen += [i.facts.payment_id for i in items if isinstance(i, RiskCase)]
    assert sorted(seen) == sorted(f"pay_{n}" for n in range(60))
    for partition_ids in _ids_per_partition(messages).values():
        assert partition_ids == sorted(partition_ids, key=lambda p: int(p.split("_")[1]))
    assert bundles.messages() == []


def test_a_bundle_holds_at_most_max_bundle_cases() -> None:
    bundles = Bundles()
    for number in range(2 * MAX_BUNDLE + 5):
        bundles.add(CARDS, b"card_hot", case(f"pay_{number}", "card_hot").to_list())
    sizes = [len(orjson.loads(value)) - 1 for _, _, _, value, _ in bundles.messages()]
    assert sizes == [MAX_BUNDLE, MAX_BUNDLE, 5]


def _ids_per_partition(messages: list[Outgoing]) -> dict[int, list[str]]:
    ids: dict[int, list[str]] = {}
    for _, partition, _, value, _ in messages:
        assert partition is not None
        ids.setdefault(partition, []).extend(
            i.facts.payment_id for i in decode_bundle(value) if isinstance(i, RiskCase))
    return ids
