"""A stage runs the following stages itself where this worker owns the next partition, and
bundles a case for Kafka only where another worker does; either way a case ends with the same
features as the offline replay of the same history."""

from __future__ import annotations

from dataclasses import dataclass

from models.facts import PaymentFacts
from models.features import payment_features, vector
from models.history import replay
from streams.cases import RiskCase, decode_bundle, encode_bundle
from streams.stages import (
    CARDS,
    CUSTOMERS,
    MERCHANTS,
    ORIGINS,
    BatchRecords,
    BatchState,
    Outgoing,
    StageTopics,
    entity_batch,
    forward,
    merchant_batch,
    partition_of,
)

TOPICS = StageTopics.for_prefix("t1.")
STAGES = {CARDS: TOPICS.cards, ORIGINS: TOPICS.origins, CUSTOMERS: TOPICS.customers,
          MERCHANTS: TOPICS.merchants}


class MemoryStore:
    """A table's local store as a dict (no Faust, no RocksDB), written at once."""

    def __init__(self) -> None:
        self.stored: dict[tuple[int, bytes], bytes] = {}

    def get(self, partition: int, key: bytes) -> bytes | None:
        return self.stored.get((partition, key))

    def hold(self, writes: list[tuple[int, bytes, bytes]]) -> None:
        self.stored.update(((partition, key), value) for partition, key, value in writes)

    def write_if_due(self) -> None:
        pass


class MemoryRecords(BatchRecords):
    def __init__(self) -> None:
        super().__init__(MemoryStore())  # type: ignore[arg-type]


class MemoryState(BatchState):
    def __init__(self, owned: set[tuple[str, int]]) -> None:
        self.records = {stage: MemoryRecords() for stage in STAGES}
        self.owned = frozenset(owned)


def everything() -> set[tuple[str, int]]:
    return {(stage.name, p) for stage in STAGES.values() for p in range(stage.partitions)}


@dataclass(frozen=True)
class Message:
    topic: str
    partition: int
    offset: int
    value: bytes


@dataclass(frozen=True)
class Event:
    message: Message

    @property
    def value(self) -> bytes:
        return self.message.value


def history() -> list[PaymentFacts]:
    return [PaymentFacts(f"pay_{i}", 1_700_000_000.0 + 40 * i, f"m_{i % 3}", 900 + 37 * i,
                         "USD", f"card_{i % 4}", customer_id=f"cus_{i % 5}",
                         ip_address=f"192.0.2.{i % 3}", country="US")
            for i in range(30)]


def card_event(facts: PaymentFacts, offset: int) -> Event:
    """The card stage's input for one payment, as ``route`` bundles it."""
    case = RiskCase(facts, None, payment_features(facts))
    partition = partition_of(facts.card.encode(), TOPICS.cards.partitions)
    return Event(Message(TOPICS.cards.name, partition, offset,
                         encode_bundle([case.to_list()])))


def run(stage: str, events: list[Event], state: BatchState,
        ) -> tuple[list[Outgoing], list[RiskCase]]:
    """One batch of ``stage``, as its agent runs it."""
    if stage == MERCHANTS:
        return [], merchant_batch(events, state, TOPICS, [])
    return entity_batch(events, stage, state, TOPICS)


def test_a_worker_owning_every_partition_decides_in_the_card_stage_as_offline() -> None:
    state = MemoryState(everything())
    complete = []
    for offset, facts in enumerate(history()):
        out, done = run(CARDS, [card_event(facts, offset)], state)
        state.flush()
        assert out == []  # nothing goes through Kafka
        complete += done
    offline = [features for _, features in replay(history())]
    assert [vector(case.features) for case in complete] == [vector(f) for f in offline]


def test_a_case_travels_only_to_partitions_owned_elsewhere_and_ends_the_same() -> None:
    """This worker owns the card stage and half of every other stage's partitions: a case
    whose next partition is elsewhere leaves in a bundle for that stage, and the stage that
    reads it (here the same state, standing in for the other worker) completes it."""
    owned = {(TOPICS.cards.name, p) for p in range(TOPICS.cards.partitions)}
    owned |= {(stage.name, p) for stage in STAGES.values() if stage is not TOPICS.cards
              for p in range(0, stage.partitions, 2)}
    state = MemoryState(owned)
    complete, hops = [], 0
    for offset, facts in enumerate(history()):
        pending, after = [card_event(facts, offset)], CARDS
        while pending:
            out, done = run(after, pending, state)
            state.flush()
            complete += done
            pending = []
            for topic, partition, _, value, _ in out:
                assert (topic, partition) not in state.owned
                (item,) = decode_bundle(value)
                assert isinstance(item, RiskCase)
                after = next(name for name, stage in STAGES.items() if stage.name == topic)
                pending.append(Event(Message(topic, partition or 0, offset, value)))
                hops += 1
    assert hops > 0  # some cases did travel
    offline = [features for _, features in replay(history())]
    assert [vector(case.features) for case in complete] == [vector(f) for f in offline]


def test_the_next_stage_skips_what_the_payment_lacks() -> None:
    facts = PaymentFacts("pay_1", 1_700_000_000.0, "m_1", 500, "USD", "card_1")
    case = RiskCase(facts, None, payment_features(facts))
    stage, topic, key = forward(case, CARDS, TOPICS)
    assert (stage, topic, key) == (MERCHANTS, TOPICS.merchants, "m_1")
    assert case.features["origin_count_1m"] == 0.0 and case.features["customer_count_1d"] == 0.0


def test_a_batch_writes_each_key_once_with_its_last_record_in_first_put_order() -> None:
    records = MemoryRecords()
    records.store.hold([(3, b"card_0", b'[["old"]]')])
    first = records.get("card_0", 3)
    assert first == [["old"]]
    records.put("card_0", 3, [*first, "once"])
    records.put("card_1", 1, ["only"])
    again = records.get("card_0", 3)
    assert again == [["old"], "once"]
    again.append("twice")  # a key put again stays decoded: what its step changes is kept
    records.put("card_0", 3, again)
    assert records.get("card_0", 3) == [["old"], "once", "twice"]
    assert records.flush() == [(3, b"card_0", b'[["old"],"once","twice"]'),
                               (1, b"card_1", b'["only"]')]
    assert records.records == {}
    assert records.get("card_0", 3) == [["old"], "once", "twice"]  # from the store now

