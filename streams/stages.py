"""The work of each risk-engine stage on one micro-batch, apart from Kafka I/O.

A payment's features come from four entities, each keyed differently, so the engine is a chain
of repartitions: ``route`` decodes requests and keys them by card; the card, origin and
customer stages each read and update their entity's record and forward the case keyed by the
next entity (skipping an origin or customer the payment does not have); the merchant stage adds
the merchant's features, applies fraud labels, and the complete cases go to the decision
engine.

A case goes through Kafka only to a stage partition that another worker owns: a stage runs the
following stages itself for every case whose next partition is assigned to this worker
(``BatchState.advance``), ``route`` included. One worker alone therefore decides each payment
in the route batch that read its request (one Kafka hop from request to decision, not five);
with several workers, a case hops only where it must.

Between stages, a batch's cases travel in bundles, one message per partition of the next stage
(``streams.cases``; ``Bundles`` here). A bundle read by a stage holds only keys of its own
partition, so its items' records are read and written in the bundle's partition.

A batch's table reads and writes go through ``BatchRecords``: it keeps each key's record for
the rest of the batch (so a burst on one key costs one table write, not one per event).
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import orjson
from aiokafka import ConsumerRecord

from ingest.contracts import UndecodableMessage, decode_request
from ingest.partitioning import key_hashes, partition_for
from ingest.topics import (
    FEATURE_LOG,
    PAYMENT_DECISIONS,
    RISK_CARDS,
    RISK_CUSTOMERS,
    RISK_MERCHANTS,
    RISK_ORIGINS,
    SourceMessage,
    Topic,
    dead_letter,
)
from models.facts import LabelFacts, PaymentFacts, payment_facts
from models.features import (
    ABSENT_CUSTOMER,
    ABSENT_ORIGIN,
    Record,
    Step,
    card_features,
    customer_features,
    merchant_features,
    merchant_label,
    origin_features,
    payment_features,
)
from streams.cases import RiskCase, decode_bundle, encode_bundle, label_list
from streams.engine import Decided
from streams.tables import RiskStores, WriteBehind

log = logging.getLogger(__name__)
Outgoing = tuple[str, int | None, bytes | None, bytes, dict[str, bytes] | None]
"""(topic, partition (None: by key), key, value, headers) to send."""
ChangelogWrite = tuple[int, bytes, bytes]
"""(partition, key, value) of a table's changelog message."""
CONSUMER = "payflow-streams"
"""The stream worker's name in the ``consumer`` header of its dead letters."""
MAX_BUNDLE = 200
"""Cases per bundle at most: a case is about 1 KB, a Kafka message at most 1 MB by default."""


@functools.lru_cache(maxsize=1 << 16)
def partition_of(key: bytes, partitions: int) -> int:
    """The partition Kafka's default partitioner gives ``key``: where a message sent by key
    alone (a label, say) would land too. Cached: murmur2 is pure Python, and keys recur."""
    return partition_for(key, partitions)


@dataclass(frozen=True)
class Stage:
    """A stage's input topic: its physical name and partition count."""

    name: str
    partitions: int

    @classmethod
    def of(cls, topic: Topic, prefix: str) -> Stage:
        return cls(topic.name_for(prefix), topic.partitions)


@dataclass(frozen=True)
class StageTopics:
    """Physical topic names (with the deployment's prefix)."""

    cards: Stage
    origins: Stage
    customers: Stage
    merchants: Stage
    prefix: str

    @classmethod
    def for_prefix(cls, prefix: str) -> StageTopics:
        return cls(Stage.of(RISK_CARDS, prefix), Stage.of(RISK_ORIGINS, prefix),
                   Stage.of(RISK_CUSTOMERS, prefix), Stage.of(RISK_MERCHANTS, prefix), prefix)

    def every_partition(self) -> frozenset[tuple[str, int]]:
        """Every (topic, partition) of the four stages: what a worker alone owns."""
        return frozenset((stage.name, partition)
                         for stage in (self.cards, self.origins, self.customers, self.merchants)
                         for partition in range(stage.partitions))

    def dead_letter(self, event: Any, reason: str, value: bytes | None = None) -> Outgoing:
        """A Faust ``event``'s message (or ``value``, one item of it) to the dead letters."""
        return self.dead_letter_record(event.message, reason, value)

    def dead_letter_record(self, message: SourceMessage, reason: str,
                           value: bytes | None = None) -> Outgoing:
        letter = dead_letter(self.prefix, message, reason, CONSUMER, value)
        return letter.topic, None, letter.key, letter.value, dict(letter.headers)


class Bundles:
    """The items a batch forwards, one message per destination partition (at most
    ``MAX_BUNDLE`` items each), in the order they were added."""

    def __init__(self) -> None:
        self.open: dict[tuple[str, int], tuple[bytes, list[list[Any]]]] = {}
        self.full: list[Outgoing] = []

    def add(self, stage: Stage, key: bytes, item: list[Any]) -> None:
        slot = (stage.name, partition_of(key, stage.partitions))
        bundle = self.open.setdefault(slot, (key, []))
        bundle[1].append(item)
        if len(bundle[1]) >= MAX_BUNDLE:
            self.full.append(self._message(slot, *self.open.pop(slot)))

    def messages(self) -> list[Outgoing]:
        out = self.full + [self._message(slot, key, items)
                           for slot, (key, items) in self.open.items()]
        self.open, self.full = {}, []
        return out

    @staticmethod
    def _message(slot: tuple[str, int], key: bytes, items: list[list[Any]]) -> Outgoing:
        """A bundle keyed by its first item's key (for tools that show keys)."""
        return slot[0], slot[1], key, encode_bundle(items), None


class BatchRecords:
    """One table's records for one batch: read once, written once per key, each in the
    partition of the message that carried its key.

    A record is encoded as soon as it is put, while its objects are still in the CPU's cache,
    and its objects are freed then: encoding and freeing a batch's records at its end, once the
    batch had walked through thousands of others, cost about 20 µs of the worker's CPU per
    decision in a profile of ``bench.stages``, where encoding the four records right after
    their steps takes about 6 µs (a microbenchmark). A key put again
    within the batch (a burst on one card, a busy merchant) stays decoded from its second put
    and is encoded once at ``flush``, so a large record is not encoded per event.

    ``flush`` hands the records to the table's ``WriteBehind`` and returns the changelog
    messages for the caller to send with the batch's other messages (measured: Faust's own
    path queues each table write and sends it alone, which throttles a busy stage; see
    performance-facts.md).
    """

    def __init__(self, store: WriteBehind) -> None:
        self.store = store
        self.records: dict[str, tuple[int, Record | bytes]] = {}
        """The batch's records by key: encoded after their first put, decoded after later ones."""

    def get(self, key: str, partition: int) -> Record | None:
        held = self.records.get(key)
        if held is None:
            raw = self.store.get(partition, key.encode())
            return None if raw is None else _decoded(raw)
        record = held[1]
        return _decoded(record) if isinstance(record, bytes) else record

    def put(self, key: str, partition: int, record: Record) -> None:
        again = key in self.records
        self.records[key] = (partition, record if again else orjson.dumps(record))

    def flush(self) -> list[ChangelogWrite]:
        """Hold every record for the local store (written when due); the changelog messages
        to send."""
        writes = [(partition, key.encode(),
                   record if isinstance(record, bytes) else orjson.dumps(record))
                  for key, (partition, record) in self.records.items()]
        self.store.hold(writes)
        self.records.clear()
        self.store.write_if_due()
        return writes


def _decoded(raw: bytes) -> Record:
    record: Record = orjson.loads(raw)
    return record


def forward(case: RiskCase, after: str, topics: StageTopics) -> tuple[str, Stage, str]:
    """The next stage after ``after`` that applies to this payment: its name, topic, and the
    payment's key there."""
    facts = case.facts
    if after == "route":
        return CARDS, topics.cards, facts.card
    origin = facts.origin
    if after == CARDS and origin is not None:
        return ORIGINS, topics.origins, origin
    if after == CARDS:
        case.features.update(ABSENT_ORIGIN)
    customer = facts.customer
    if after in (CARDS, ORIGINS) and customer is not None:
        return CUSTOMERS, topics.customers, customer
    if after in (CARDS, ORIGINS):
        case.features.update(ABSENT_CUSTOMER)
    return MERCHANTS, topics.merchants, facts.merchant_id


CARDS, ORIGINS, CUSTOMERS, MERCHANTS = "cards", "origins", "customers", "merchants"
ENTITY_STEPS: dict[str, tuple[Step, Callable[[PaymentFacts], str | None]]] = {
    CARDS: (card_features, lambda facts: facts.card),
    ORIGINS: (origin_features, lambda facts: facts.origin),
    CUSTOMERS: (customer_features, lambda facts: facts.customer),
    MERCHANTS: (merchant_features, lambda facts: facts.merchant_id),
}
"""Each stage's feature step, and the payment's key in its table."""
Flushed = list[tuple[BatchRecords, list[ChangelogWrite]]]
"""Each table's changelog messages of a batch."""


class BatchState:
    """Every table's ``BatchRecords`` for one agent's batches, by stage name, and which stage
    partitions this worker owns (``owned``, set by the agent before each batch).

    A stage hands a case on to the next stage in this same batch when this worker owns the
    partition of the next stage's key: its table partition is here, so the case needs no trip
    through Kafka. With one worker, every case goes from the card stage to its decision in one
    batch; with several, a case travels only to a partition another worker owns. A stage's
    work is synchronous, so two agents never interleave their reads and writes of a record.
    """

    def __init__(self, stores: RiskStores) -> None:
        self.records = {CARDS: BatchRecords(stores.cards), ORIGINS: BatchRecords(stores.origins),
                        CUSTOMERS: BatchRecords(stores.customers),
                        MERCHANTS: BatchRecords(stores.merchants)}
        self.owned: frozenset[tuple[str, int]] = frozenset()
        self.hashes: dict[str, int] = {}
        """The Kafka key hash of every entity key of the batch's cases (``hash_keys``)."""

    def hash_keys(self, cases: Iterable[RiskCase]) -> None:
        """Hash the entity keys of a batch's cases together (``key_hashes``), for ``advance``
        to find each stage's partition: one numpy pass rather than murmur2 in Python for each
        new key, and no cache of every key seen, whose lookups missed the CPU's caches."""
        keys = list({key for case in cases for _, key_of in ENTITY_STEPS.values()
                     if (key := key_of(case.facts)) is not None})
        self.hashes = dict(zip(keys, key_hashes([key.encode() for key in keys]), strict=True))

    def apply(self, stage: str, case: RiskCase, partition: int) -> None:
        """Run ``stage``'s feature step for ``case``, whose key is in ``partition``."""
        step, key_of = ENTITY_STEPS[stage]
        key = key_of(case.facts)
        assert key is not None, (stage, case.facts.payment_id)
        records = self.records[stage]
        features, record = step(records.get(key, partition), case.facts)
        records.put(key, partition, record)
        case.features.update(features)

    def advance(self, case: RiskCase, after: str, topics: StageTopics,
                bundles: Bundles) -> RiskCase | None:
        """Run the stages after ``after`` that this worker owns; the case when complete (its
        merchant step done), or None once it is bundled for a stage owned elsewhere. The
        batch's keys are hashed first (``hash_keys``)."""
        while True:
            stage, topic, key = forward(case, after, topics)
            partition = self.hashes[key] % topic.partitions
            if (topic.name, partition) not in self.owned:
                bundles.add(topic, key.encode(), case.to_list())
                return None
            self.apply(stage, case, partition)
            if stage == MERCHANTS:
                return case
            after = stage

    def clear(self) -> None:
        """Forget the unflushed records (of a batch that failed)."""
        for records in self.records.values():
            records.records.clear()

    def flush(self) -> Flushed:
        return [(records, records.flush()) for records in self.records.values()
                if records.records]


def decision_messages(decided: Sequence[Decided], prefix: str) -> list[Outgoing]:
    """Each decision and its feature-log entry, both keyed by payment id, to the partitions
    Kafka's default partitioner gives that key (the batch's keys hashed together, once for
    both topics, not once per send by the producer)."""
    decisions, logged = PAYMENT_DECISIONS.name_for(prefix), FEATURE_LOG.name_for(prefix)
    out: list[Outgoing] = []
    keys = [each.key() for each in decided]
    for each, key, hashed in zip(decided, keys, key_hashes(keys), strict=True):
        out.append((decisions, hashed % PAYMENT_DECISIONS.partitions, key, each.encode(), None))
        out.append((logged, hashed % FEATURE_LOG.partitions, key, each.log_entry(), None))
    return out


StageRun = Callable[[Sequence[Any]], tuple[list[Outgoing], Flushed]]
"""A stage's work on some of a batch's events: the messages to send, the changelog writes."""


def isolating(events: Sequence[Any], run: StageRun, state: BatchState,
              topics: StageTopics) -> tuple[list[Outgoing], Flushed]:
    """``run`` the batch (Faust events, or the route's aiokafka records); if it raises — a bug
    one message triggers, as a stage's work is pure — forget the batch's unflushed records and
    run each event alone, sending an event that raises alone to the dead letters (its payments
    stay pending, and the ledger's sweep sends their requests again after 30 s). A failing
    batch no longer crashes the agent, which Faust would restart past the batch without
    redelivering it."""
    try:
        return run(events)
    except Exception as error:
        log.warning("a batch of %d events failed (%s: %s); running them one by one",
                    len(events), type(error).__name__, error)
        state.clear()
    out: list[Outgoing] = []
    flushed: Flushed = []
    for event in events:
        try:
            one_out, one_flushed = run([event])
        except Exception as error:
            state.clear()
            message = source_message(event)
            log.error("dead-lettering an event of %s: %s: %s", message.topic,
                      type(error).__name__, error)
            out.append(topics.dead_letter_record(message, f"{type(error).__name__}: {error}"))
            continue
        out += one_out
        flushed += one_flushed
    return out, flushed


def source_message(event: Any) -> SourceMessage:
    """The consumed message of a batch's item: a Faust event's ``message``; an aiokafka record
    (the route's items) is its own."""
    message: SourceMessage = event if isinstance(event, ConsumerRecord) else event.message
    return message


def route_batch(records: Sequence[ConsumerRecord[bytes, bytes]], state: BatchState,
                topics: StageTopics) -> tuple[list[Outgoing], list[RiskCase]]:
    """Decode requests (poison to the dead letters) and run the stages this worker owns
    (``BatchState.advance``: with one worker, all of them); the bundles for stages owned
    elsewhere (and dead letters), and the cases complete for a decision, in order."""
    out: list[Outgoing] = []
    cases = []
    for record in records:
        try:
            message = decode_request(record.value)
        except UndecodableMessage as error:
            out.append(topics.dead_letter_record(record, str(error)))
            continue
        facts = payment_facts(message)
        cases.append(RiskCase(facts, message.data.reply_to, payment_features(facts)))
    state.hash_keys(cases)
    complete: list[RiskCase] = []
    bundles = Bundles()
    for case in cases:
        done = state.advance(case, "route", topics, bundles)
        if done is not None:
            complete.append(done)
    return out + bundles.messages(), complete


def entity_batch(events: Sequence[Any], stage: str, state: BatchState, topics: StageTopics,
                 ) -> tuple[list[Outgoing], list[RiskCase]]:
    """Run one entity's feature step for every case of the batch, then the following stages
    this worker owns (``BatchState.advance``); the bundles to send on (and dead letters), and
    the cases complete for a decision, in order."""
    out: list[Outgoing] = []
    cases = [(event.message.partition, case) for event in events
             for case in _cases(event, topics, out)]
    state.hash_keys(case for _, case in cases)
    complete: list[RiskCase] = []
    bundles = Bundles()
    for partition, case in cases:
        state.apply(stage, case, partition)
        done = state.advance(case, stage, topics, bundles)
        if done is not None:
            complete.append(done)
    return out + bundles.messages(), complete


def merchant_batch(events: Sequence[Any], state: BatchState, topics: StageTopics,
                   out: list[Outgoing]) -> list[RiskCase]:
    """Apply labels and add merchant features; the complete cases, in order."""
    complete: list[RiskCase] = []
    records = state.records[MERCHANTS]
    for event in events:
        partition = event.message.partition
        for item in _items(event, topics, out):
            if isinstance(item, LabelFacts):
                key = item.merchant_id
                records.put(key, partition, merchant_label(records.get(key, partition), item))
                continue
            state.apply(MERCHANTS, item, partition)
            complete.append(item)
    return complete


def _items(event: Any, topics: StageTopics, out: list[Outgoing]) -> list[RiskCase | LabelFacts]:
    try:
        return decode_bundle(event.value)
    except ValueError as error:
        out.append(topics.dead_letter(event, str(error)))
        return []


def _cases(event: Any, topics: StageTopics, out: list[Outgoing]) -> list[RiskCase]:
    cases = []
    for item in _items(event, topics, out):
        if isinstance(item, RiskCase):
            cases.append(item)
        else:
            out.append(topics.dead_letter(event, "a label on a payment stage",
                                          orjson.dumps(label_list(item))))
    return cases
