"""The risk engine's agents: requests in, decisions and feature-log entries out.

    payments.requests ─route─▶ risk.cards ─cards─▶ risk.origins ─origins─▶ risk.customers
      ─customers─▶ risk.merchants ─decide─▶ payments.decisions + risk.feature-log
    payments.events (dispute.created) ─labels─▶ risk.merchants (fraud labels)
    risk.feature-log ─(payflow feature-log, a process of its own)─▶ PostgreSQL feature_log

A case takes the topic to the next stage only when another worker owns that stage's partition
of its key; otherwise the stage that has it runs the next one too (``streams.stages``), and
whichever stage completes it decides it. One worker alone decides every payment in the route
batch that read its request: one Kafka hop from request to decision. ``route`` and ``labels``
are plain aiokafka consumers run as tasks of the worker (``streams.side_consumers``), cheaper
than Faust agents; ``route`` reads and writes the tables of the stage partitions Faust's group
gave this worker, under the same lock as the agents. Every agent reads micro-batches
(``streams.batching``, bounded size and wait) and does one batch's work in ``streams.stages``;
between stages, cases travel in bundles (``streams.cases``). At-least-once: a batch's messages
are acknowledged by Kafka before its offsets may be committed. A redelivered request yields a
second decision for the same payment; the ledger applies the first, the feature log keeps one
row, and the feature steps count it once.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import faust
from aiokafka import ConsumerRecord

from ingest.topics import (
    PAYMENT_REQUESTS,
    RISK_CARDS,
    RISK_CUSTOMERS,
    RISK_MERCHANTS,
    RISK_ORIGINS,
    Topic,
)
from payflow.liveness import Excuse
from payflow.settings import Settings
from payflow.watchdog import Watchdog
from streams.batching import take_batches
from streams.cases import RiskCase
from streams.engine import DecisionEngine
from streams.registry_watch import RegistryWatch
from streams.sending import PartitionBatches, SentBatch, acknowledged
from streams.side_consumers import ROUTE_GROUP, Acknowledgement, consume, forward_labels
from streams.stages import (
    BatchState,
    Flushed,
    Outgoing,
    StageTopics,
    decision_messages,
    entity_batch,
    isolating,
    merchant_batch,
    route_batch,
)
from streams.tables import WRITE_BEHIND_SECONDS, RiskStores, RiskTables, WriteBehind
from streams.transport import aiokafka_producer

log = logging.getLogger(__name__)
Work = Callable[[Sequence[Any], BatchState], tuple[list[Outgoing], list[RiskCase]]]
"""A stage's work on a batch: the messages to send, and the cases it completed."""


@dataclass(frozen=True)
class Sending:
    """A batch's messages handed to the producer, not yet acknowledged."""

    pending: list[Awaitable[Any]]
    batches: list[SentBatch]
    changelogs: dict[str, tuple[WriteBehind, int]]
    """Each table's store and its generation when the batch was sent, by changelog topic."""


async def append(app: faust.App, messages: Sequence[Outgoing],
                 flushed: Flushed | None = None) -> Sending:
    """Hand ``messages`` and the tables' changelog writes to the producer, a record batch per
    topic partition (``streams.sending``); in order within each partition. A message without a
    partition (a dead letter, keyed, with headers) goes alone through Faust's ``send``."""
    batches = PartitionBatches(aiokafka_producer(app))
    pending = []
    for topic, partition, key, value, headers in messages:
        if partition is None or headers:
            pending.append(await app.producer.send(topic, key, value, partition, None, headers))
        else:
            batches.add(topic, partition, key, value)
    changelogs = {}
    for records, writes in flushed or ():
        store = records.store
        changelogs[store.changelog] = (store, store.generation)
        for partition, key, value in writes:
            batches.add(store.changelog, partition, key, value)
    return Sending(pending, await batches.send(), changelogs)


async def confirm(sending: Sending) -> None:
    """Wait until Kafka has acknowledged every message; then tell each table's store the
    newest changelog offset per partition, which it writes to RocksDB with the values (so that
    a restart replays only what came after it)."""
    await asyncio.gather(*sending.pending)
    for (topic, partition), offset in (await acknowledged(sending.batches)).items():
        changelog = sending.changelogs.get(topic)
        if changelog is not None:
            store, generation = changelog
            store.acknowledged(partition, offset, generation)


async def send_all(app: faust.App, messages: Sequence[Outgoing]) -> None:
    await confirm(await append(app, messages))


@dataclass(frozen=True)
class Wiring:
    """What every agent of one worker shares."""

    app: faust.App
    settings: Settings
    topics: StageTopics
    stores: RiskStores
    """The risk tables' local stores (``streams.tables``), shared by every agent."""
    engine: DecisionEngine
    watchdog: Watchdog
    tables_lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    """Held by an agent from reading its batch's records to handing their changelog writes to
    the producer: several agents write each table (``BatchState``), and a record's changelog
    messages must reach Kafka in the order its values were computed, or a restart would
    recover an older value. The work itself is synchronous; the lock only matters when the
    producer makes an append wait for room."""

    def source(self, topic: Topic) -> Any:
        return self.app.topic(topic.name_for(self.settings.topic_prefix), key_type=bytes,
                              value_type=bytes, key_serializer="raw", value_serializer="raw")

    def batches(self, stream: Any) -> Any:
        size, wait = self.settings.stream_batch_size, self.settings.stream_batch_wait_seconds
        return take_batches(stream, size, wait)

    def rebalancing(self) -> bool:
        return bool(getattr(self.app, "rebalancing", False))

    def recovering(self) -> bool:
        """Faust is restoring table partitions from their changelogs."""
        return bool(getattr(self.app, "in_recovery", False))

    def owned(self) -> frozenset[tuple[str, int]]:
        """The (topic, partition)s assigned to this worker, whose tables are ready here; none
        from the start of a rebalance until Faust has recovered every table partition it
        brought (the consumer's assignment changes within that time, before the recovery), so
        that a stage then writes no table but its own partition's, as it would alone."""
        if self.rebalancing() or self.recovering():
            return frozenset()
        return frozenset((tp.topic, tp.partition) for tp in self.app.consumer.assignment())

    def decisions(self, cases: list[RiskCase]) -> list[Outgoing]:
        """The decision and feature-log messages of complete cases, from one scoring."""
        return decision_messages(self.engine.decide(cases), self.settings.topic_prefix)

    def batch_handler(self, work: Work) -> Callable[[Sequence[Any]], Awaitable[Acknowledgement]]:
        """What an agent or the route does with each batch: ``work`` on the stage partitions
        this worker owns, under the tables' lock (an event that raises alone goes to the dead
        letters: ``isolating``), the decisions of the cases it completes, and everything
        handed to the producer in order. It returns the wait for Kafka's acknowledgement, which
        must return before the batch is committed; the route takes its next batch meanwhile
        (``streams.side_consumers.consume``), an agent does not."""
        state = BatchState(self.stores)

        def run_batch(events: Sequence[Any]) -> tuple[list[Outgoing], Flushed]:
            out, complete = work(events, state)
            return out + self.decisions(complete), state.flush()

        async def handle(events: Sequence[Any]) -> Acknowledgement:
            async with self.tables_lock:
                state.owned = self.owned()
                out, flushed = isolating(events, run_batch, state, self.topics)
                sending = await append(self.app, out, flushed)
            return functools.partial(confirm, sending)

        return handle

    def run_stage(self, name: str, work: Work) -> Callable[[Any], Any]:
        """An agent that handles each batch of its stream (``batch_handler``), and waits for
        Kafka's acknowledgement, before asking for the next one (Faust then acknowledges the
        batch's events)."""
        handle = self.batch_handler(work)

        async def run(stream: Any) -> None:
            async for events in self.batches(stream):
                acknowledged = await handle(events)
                await acknowledged()

        run.__name__ = name
        return run


def register_agents(app: faust.App, settings: Settings) -> None:
    """Declare the worker's topics, tables, agents and tasks on ``app``."""
    engine = DecisionEngine(settings.card_fingerprint_key.get_secret_value().encode())
    wiring = Wiring(app, settings, StageTopics.for_prefix(settings.topic_prefix),
                    RiskStores.of(RiskTables.create(app)), engine, Watchdog(settings))
    route(wiring)
    for topic in (RISK_CARDS, RISK_ORIGINS, RISK_CUSTOMERS):
        entity(wiring, topic)
    decide(wiring)
    side_consumers(wiring)
    follow_registry(wiring)
    liveness(wiring)
    write_held_records(wiring)


def route(w: Wiring) -> None:
    """Requests, read by a plain aiokafka consumer (``streams.side_consumers.consume``: Faust's
    per-message machinery costs more than aiokafka's), go through every stage this worker
    owns in the same batch, handled as an agent handles its batches
    (``Wiring.batch_handler``): with one worker, a request is decided without a trip through
    Kafka. It handles the next batch while Kafka acknowledges the previous one, and commits a
    batch only once acknowledged (``consume``). Its own consumer group assigns the requests'
    partitions; which stage partitions this worker owns is Faust's group's say."""
    requests = PAYMENT_REQUESTS.name_for(w.settings.topic_prefix)

    def work(records: Sequence[Any], state: BatchState) -> tuple[list[Outgoing], list[RiskCase]]:
        return route_batch(records, state, w.topics)

    handle = w.batch_handler(work)

    async def dead_letter(record: ConsumerRecord[bytes, bytes], reason: str) -> None:
        await send_all(w.app, [w.topics.dead_letter_record(record, reason)])

    async def run() -> None:
        await consume(w.settings, requests, ROUTE_GROUP, handle, dead_letter,
                      max_records=w.settings.stream_batch_size, watchdog=w.watchdog)

    w.app.task(run)


def entity(w: Wiring, topic: Topic) -> None:
    """The card, origin or customer stage: its step, then the stages after it that this worker
    owns, then the decisions of the cases that completed."""
    stage = topic.name.removeprefix("risk.")

    def work(events: Sequence[Any], state: BatchState) -> tuple[list[Outgoing], list[RiskCase]]:
        return entity_batch(events, stage, state, w.topics)

    w.app.agent(w.source(topic), name=stage)(w.run_stage(stage, work))


def decide(w: Wiring) -> None:
    """The merchant stage: labels, merchant features and the decisions of cases that came
    through Kafka (those of a worker owning every stage never do)."""

    def work(events: Sequence[Any], state: BatchState) -> tuple[list[Outgoing], list[RiskCase]]:
        out: list[Outgoing] = []
        complete = merchant_batch(events, state, w.topics, out)
        return out, complete

    w.app.agent(w.source(RISK_MERCHANTS), name="decide")(w.run_stage("decide", work))


def side_consumers(w: Wiring) -> None:
    """Fraud labels: a plain aiokafka task (``streams.side_consumers``). The feature log is
    written by a process of its own (``payflow feature-log``), not on this event loop."""

    async def labels() -> None:
        await forward_labels(w.settings, w.watchdog)

    w.app.task(labels)


def follow_registry(w: Wiring) -> None:
    """Load the champion now; reload on promotion events and every ``model_check_seconds``."""
    watch = RegistryWatch(w.settings, w.engine)
    watch.refresh_now()

    async def follow_promotions() -> None:
        await watch.listen()

    async def check_registry() -> None:
        await watch.refresh()

    w.app.task(follow_promotions)
    w.app.timer(w.settings.model_check_seconds)(check_registry)


def write_held_records(w: Wiring) -> None:
    """The tables' stores (``streams.tables.WriteBehind``) write what they hold when a batch
    finds it due, and also every ``WRITE_BEHIND_SECONDS`` while no batch comes. And when Faust
    revokes partitions, at the start of every rebalance, before it recovers any table
    partition from its changelog: every partition's database is still open then, and a
    recovery never finds older values written over its own afterwards."""

    def write_held(app: Any, /, *_: Any, signal: Any, **__: Any) -> None:
        w.stores.revoked()

    async def write_due() -> None:
        w.stores.write_if_due()

    w.app.on_partitions_revoked.connect(write_held)
    w.app.timer(WRITE_BEHIND_SECONDS)(write_due)


def liveness(w: Wiring) -> None:
    """The worker exits, for its supervisor to restart it, when its agents or its aiokafka
    consumers stop making progress on records that wait (``payflow.watchdog``): after a
    broker restart Faust's consumer can stay assigned and never process again (faust#596)."""
    sources = {topic.name_for(w.settings.topic_prefix)
               for topic in (RISK_CARDS, RISK_ORIGINS, RISK_CUSTOMERS, RISK_MERCHANTS)}

    def owned() -> list[tuple[str, int]]:  # not the tables' changelogs, which it only reads
        return [(tp.topic, tp.partition) for tp in w.app.consumer.assignment()
                if tp.topic in sources]

    excuse = Excuse(w.settings.liveness_recovery_seconds)

    def busy_on_purpose() -> bool:  # agents stop while Faust rebalances or recovers tables
        return excuse.excused(w.rebalancing() or w.recovering(), time.monotonic())

    def state() -> str:  # tells a hang from a rebalance or a table recovery that is slow
        return f"Faust rebalancing: {w.rebalancing()}, recovering tables: {w.recovering()}"

    w.watchdog.add("the stream worker's agents", w.app.conf.id, owned, busy_on_purpose,
                   detail=state)

    async def watch() -> None:
        await w.watchdog.run()

    w.app.task(watch)
