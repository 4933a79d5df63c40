"""The route stage runs requests through every stage partition this worker owns in the same
batch: with all of them owned, a request comes out decided-ready with the features the offline
replay gives; with none, it goes on to the card stage in bundles, writing no table."""

from __future__ import annotations

from collections.abc import Iterable

from aiokafka import ConsumerRecord

from ingest.contracts import PaymentRequested
from ingest.topics import DEAD_LETTERS
from models.facts import payment_facts
from models.history import replay
from streams.cases import RiskCase, decode_bundle
from streams.stages import (
    CARDS,
    MERCHANTS,
    BatchState,
    StageTopics,
    partition_of,
    route_batch,
)
from streams.tables import RiskStores, WriteBehind
from tests.integration.streams_driver import request

TOPICS = StageTopics.for_prefix("t1.")
T0 = 1_700_000_000.0


class DictStore:
    """A table's local store in memory, addressed by partition as ``PartitionStore`` is."""

    def __init__(self) -> None:
        self.data: dict[tuple[int, bytes], bytes] = {}

    def get(self, partition: int, key: bytes) -> bytes | None:
        return self.data.get((partition, key))

    def write(self, partition: int, items: Iterable[tuple[bytes, bytes]],
              offset: int | None) -> None:
        self.data.update(((partition, key), value) for key, value in items)


def state_owning(owned: frozenset[tuple[str, int]]) -> BatchState:
    state = BatchState(RiskStores(*(WriteBehind(DictStore()) for _ in range(4))))
    state.owned = owned
    return state


def records(messages: list[PaymentRequested | bytes]) -> list[ConsumerRecord[bytes, bytes]]:
    out = []
    for offset, message in enumerate(messages):
        key, value = ((message.key(), message.encode()) if isinstance(message, PaymentRequested)
                      else (b"poison", message))
        out.append(ConsumerRecord("t1.payments.requests", 0, offset, 0, 0, key, value, None,
                                  len(key), len(value), ()))
    return out


def history() -> list[PaymentRequested]:
    return [request(f"pay_{i}", T0 + 20 * i, merchant=f"m_{i % 2}", card=f"card_{i % 3}",
                    amount=1000 + 97 * i, ip=f"192.0.2.{i % 4}",
                    customer=f"cus_{i % 5}" if i % 7 else None, country="US" if i % 6 else "FR")
            for i in range(30)]


def test_a_worker_owning_every_stage_completes_each_request_as_the_offline_replay() -> None:
    state = state_owning(TOPICS.every_partition())
    out, complete = route_batch(records(list(history())), state, TOPICS)
    assert out == []
    offline = list(replay([payment_facts(m) for m in history()]))
    assert [case.facts for case in complete] == [facts for facts, _ in offline]
    assert [case.features for case in complete] == [features for _, features in offline]
    assert all(case.reply_to is None for case in complete)
    cards, merchants = state.records[CARDS], state.records[MERCHANTS]
    assert sorted(cards.records) == ["card_0", "card_1", "card_2"]
    assert sorted(merchants.records) == ["m_0", "m_1"]
    flushed = dict(state.flush())
    assert len(flushed[cards]) == 3 and len(flushed[merchants]) == 2
    assert sum(map(len, cards.store.values.values())) == 3, "held for the local store"
    cards.store.write()
    assert len(cards.store.store.data) == 3  # type: ignore[attr-defined]


def test_a_worker_owning_no_card_partition_bundles_requests_to_the_card_stage() -> None:
    state = state_owning(frozenset())
    out, complete = route_batch(records(list(history())), state, TOPICS)
    assert complete == []
    assert all(not records.records for records in state.records.values())
    forwarded: list[str] = []
    for topic, partition, _, value, _ in out:
        assert topic == TOPICS.cards.name
        items = decode_bundle(value)
        assert all(isinstance(item, RiskCase) and partition == partition_of(
            item.facts.card.encode(), TOPICS.cards.partitions) for item in items)
        forwarded += [item.facts.payment_id for item in items if isinstance(item, RiskCase)]
    assert sorted(forwarded) == sorted(m.data.payment_id for m in history())


def test_a_request_that_does_not_decode_goes_to_the_dead_letters_and_the_rest_on() -> None:
    state = state_owning(TOPICS.every_partition())
    good = history()[:2]
    out, complete = route_batch(records([good[0], b'{"type": "payment.requested.v1"}', good[1]]),
                                state, TOPICS)
    assert [case.facts.payment_id for case in complete] == ["pay_0", "pay_1"]
    [(topic, _, key, value, headers)] = out
    assert topic == DEAD_LETTERS.name_for("t1.") and key == b"poison"
    assert value == b'{"type": "payment.requested.v1"}' and headers is not None
