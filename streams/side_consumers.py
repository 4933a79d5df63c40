"""The risk engine's plain aiokafka consumers, rather than Faust agents.

Faust's per-event machinery costs several times what aiokafka's does
(../shared/notes/performance-facts.md), so these run on ``consume`` here, each in a consumer
group of its own (several processes split the partitions): the worker's ``route`` stage
(``streams.agents``), and

- **labels**, a task of the worker: reads ``payments.events`` — two or three events per
  payment, of which only ``dispute.created`` matters — and forwards each dispute as a fraud
  label to the merchant stage. Other events are skipped on a byte check, before any decoding.
- **feature log**, the process ``payflow feature-log``: writes ``risk.feature-log`` entries
  into PostgreSQL in batches. Not a task of the worker: the worker's event loop decides
  payments, and the writes took about 7 % of it (py-spy, 1,000 payments/s).

Each commits its offsets only after the batch's effect (messages acknowledged by Kafka, rows
committed in PostgreSQL): at-least-once, with idempotent effects. Failures follow
``payflow.failures``: while Kafka or PostgreSQL is away a batch is retried with backoff (nothing
committed, the task stays up); a batch that fails for another reason is handled one message at a
time, and a message that fails on its own is dead-lettered.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeAlias

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRecord, TopicPartition
from aiokafka.errors import CommitFailedError
from psycopg_pool import AsyncConnectionPool

from ingest.contracts import DisputeEvent, UndecodableMessage, decode_event
from ingest.topics import FEATURE_LOG, PAYMENT_EVENTS, RISK_MERCHANTS, dead_letter
from models.facts import label_facts
from payflow.failures import (
    Outage,
    apply_or_dead_letter,
    consumer_pool,
    is_transient,
    open_pool,
    rewind,
)
from payflow.settings import Settings
from payflow.watchdog import Watchdog
from streams import feature_log
from streams.cases import encode_label

log = logging.getLogger(__name__)
DISPUTE_MARKER = b'"dispute.created.v1"'
COMMIT_EVERY_SECONDS = 0.5
BACKGROUND_FETCH_WAIT_MS = 500
"""The labels and feature-log consumers' longest fetch wait: nobody waits on them, and an
idle worker's fetches (every 100 ms, as ``route`` fetches) were most of its remaining CPU."""
FEATURE_LOG_FETCH_MIN_BYTES = 128 * 1024
"""The feature-log consumer lets entries gather for up to ``BACKGROUND_FETCH_WAIT_MS`` (or this
many bytes, a few hundred entries) before it writes them: each fetch was one PostgreSQL
transaction, and at 100 payments/s a fetch held one or two entries."""
ROUTE_GROUP = "payflow-risk-route"
"""The worker's route stage, the consumer of ``payments.requests``: its lag is the requests
waiting for a decision."""
IN_FLIGHT_BATCHES = 2
"""Batches ``consume`` leaves unacknowledged while it handles the next (see ``consume``).
aiokafka sends one produce request at a time to a broker, and queues a partition's next batch
only once its previous one is taken into a request. With two batches in flight rather than
one, ``bench.streams`` decided 5,110-5,660 payments/s against 4,547-5,146 (three alternating
pairs, 27 Nov), with the same latency at 1,000 payments/s (p99 16-25 ms against 18-31)."""
LABELS_GROUP = "payflow-risk-labels"
FEATURE_LOG_GROUP = "payflow-feature-log"
Record: TypeAlias = ConsumerRecord[bytes, bytes]
Acknowledgement = Callable[[], Awaitable[None]]
"""Waits until Kafka has acknowledged every message a batch's handling sent (raises if not)."""
Handler = Callable[[list[Record]], Awaitable[Acknowledgement | None]]
"""Handles a batch. It returns None when the batch's effects are complete, or, having handed its
messages to the producer, the wait for Kafka's acknowledgement: ``consume`` then handles the
next batch while Kafka acknowledges this one."""
DeadLetterer = Callable[[Record, str], Awaitable[None]]
"""Sends one message to the dead letters with its reason, and waits for Kafka to have it."""


@dataclass
class InFlight:
    """A handled batch whose messages Kafka has not yet acknowledged."""

    batches: dict[TopicPartition, list[Record]]
    acknowledgements: list[Acknowledgement]

    async def acknowledged(self) -> BaseException | None:
        """Wait for every acknowledgement; the first error, if one raised (the others are still
        awaited, so none is left unretrieved)."""
        failed: BaseException | None = None
        for acknowledgement in self.acknowledgements:
            try:
                await acknowledgement()
            except Exception as error:
                failed = failed or error
        return failed

    def offsets(self) -> dict[TopicPartition, int]:
        return {tp: part[-1].offset + 1 for tp, part in self.batches.items() if part}


async def consume(settings: Settings, topic: str, group: str, handle: Handler,
                  dead_letter: DeadLetterer, max_records: int = 2000,
                  watchdog: Watchdog | None = None, fetch_wait_ms: int = 100,
                  fetch_min_bytes: int = 1) -> None:
    """Feed ``handle`` batches from ``topic`` until cancelled; commit what it has handled at
    most every ``COMMIT_EVERY_SECONDS`` (a commit per batch was 4 % of the worker's CPU in a
    profile), so a crash redelivers at most that much, to effects that are idempotent.

    A handler that returns an acknowledgement (``Handler``) has ``IN_FLIGHT_BATCHES`` in
    flight: the next batches are handled while Kafka acknowledges the previous, and a batch's
    offsets count as handled only once its acknowledgement returns. If one raises, that batch
    and those handled after it are read again. At 1,000 payments/s the worker's route waited
    8 ms of each ~34 ms batch for Kafka, with requests piling up meanwhile.

    While a dependency is away, a batch is retried with backoff; a message ``handle`` fails
    on for another reason, alone, goes to ``dead_letter``. With a ``watchdog``, the process
    exits if the consumer stops making progress while not waiting out an outage. The broker
    answers a fetch once ``fetch_min_bytes`` wait or after ``fetch_wait_ms``."""
    consumer = AIOKafkaConsumer(
        topic, bootstrap_servers=settings.kafka_bootstrap,
        group_id=f"{settings.topic_prefix}{group}", enable_auto_commit=False,
        auto_offset_reset="earliest", fetch_max_wait_ms=fetch_wait_ms,
        fetch_min_bytes=fetch_min_bytes, max_poll_records=max_records,
        session_timeout_ms=10_000, heartbeat_interval_ms=2_000,
    )
    await consumer.start()
    handled: dict[TopicPartition, int] = {}
    committed = time.monotonic()
    outage = Outage(f"{group} consumer", log)
    watched = (watchdog.add(f"the {group} consumer", f"{settings.topic_prefix}{group}",
                            consumer.assignment, lambda: outage.ongoing)
               if watchdog is not None else None)
    flying: deque[InFlight] = deque()
    isolating = False
    """After an acknowledgement failed for a reason other than an outage (Kafka refused a
    message): the batches read again wait for theirs within ``apply_or_dead_letter``, which
    finds the message at fault and dead-letters it, as it does for a handler that raises."""

    async def handle_batch(batch: Sequence[Record]) -> Acknowledgement | None:
        acknowledgement = await handle(list(batch))
        if isolating and acknowledgement is not None:
            await acknowledgement()
            return None
        return acknowledgement

    async def settle(keep: int) -> BaseException | None:
        """Wait for the oldest batches in flight until ``keep`` remain, counting each as
        handled; if one's acknowledgement fails, it and every batch after it are read again."""
        while len(flying) > keep:
            oldest = flying.popleft()
            failed = await oldest.acknowledged()
            if failed is None:
                handled.update(oldest.offsets())
                continue
            for later in reversed(flying):  # the oldest rewound last: its offsets win
                await later.acknowledged()
                rewind(consumer, later.batches)
            flying.clear()
            rewind(consumer, oldest.batches)
            return failed
        return None

    try:
        while True:
            batches = await consumer.getmany(timeout_ms=int(COMMIT_EVERY_SECONDS * 1000))
            records = [record for part in batches.values() for record in part]
            error: BaseException | None = None
            if records:
                try:
                    results = await apply_or_dead_letter(records, handle_batch, dead_letter, log)
                    flying.append(InFlight(batches, [ack for ack in results if ack is not None]))
                except Exception as failed:
                    error = failed
                    rewind(consumer, batches)
            # Nothing stays in flight when idle, failing, or after a batch complete on return.
            waiting = bool(records) and error is None and bool(flying[-1].acknowledgements)
            error = await settle(IN_FLIGHT_BATCHES if waiting else 0) or error
            if error is not None:
                isolating = not is_transient(error)
                if not isolating:
                    await outage.wait(error)
                continue
            if records:
                outage.over()
                isolating = False
            if handled and time.monotonic() - committed >= COMMIT_EVERY_SECONDS:
                await _commit(consumer, handled)
                handled, committed = {}, time.monotonic()
    finally:
        if watchdog is not None:
            watchdog.remove(watched)
        await settle(0)
        await _commit(consumer, handled)  # what was handled, never what was fetched and failed
        await consumer.stop()


async def _commit(consumer: AIOKafkaConsumer, handled: dict[TopicPartition, int]) -> None:
    """Commit ``handled`` offsets of the partitions still assigned. After a rebalance, the new
    owner of a partition re-reads what was not committed (at-least-once)."""
    owned = {tp: offset for tp, offset in handled.items() if tp in consumer.assignment()}
    if not owned:
        return
    try:
        await consumer.commit(owned)
    except CommitFailedError:
        log.warning("commit failed in a rebalance; %d partitions will be re-read", len(owned))


async def forward_labels(settings: Settings, watchdog: Watchdog | None = None) -> None:
    prefix = settings.topic_prefix
    merchants = RISK_MERCHANTS.name_for(prefix)
    producer = AIOKafkaProducer(bootstrap_servers=settings.kafka_bootstrap,
                                enable_idempotence=True, linger_ms=5)
    await producer.start()

    async def handle(records: list[ConsumerRecord[bytes, bytes]]) -> None:
        sends = []
        for record in records:
            if record.value is None or DISPUTE_MARKER not in record.value:
                continue
            try:
                message = decode_event(record.value)
            except UndecodableMessage as error:
                sends.append(await _dead_letter(producer, prefix, record, str(error),
                                                LABELS_GROUP))
                continue
            if isinstance(message, DisputeEvent):
                label = label_facts(message)
                sends.append(await producer.send(merchants, encode_label(label),
                                                 key=label.merchant_id.encode()))
        await asyncio.gather(*sends)

    async def dead_letter_one(record: Record, reason: str) -> None:
        await (await _dead_letter(producer, prefix, record, reason, LABELS_GROUP))

    try:
        await consume(settings, PAYMENT_EVENTS.name_for(prefix), LABELS_GROUP, handle,
                      dead_letter_one, watchdog=watchdog, fetch_wait_ms=BACKGROUND_FETCH_WAIT_MS)
    finally:
        await producer.stop()


async def materialize_feature_log(settings: Settings, watchdog: Watchdog | None = None) -> None:
    pool: AsyncConnectionPool[Any] = consumer_pool(settings.database_url, max_size=2)
    await open_pool(pool, Outage("feature log database", log))
    producer = AIOKafkaProducer(bootstrap_servers=settings.kafka_bootstrap,
                                enable_idempotence=True, linger_ms=5)
    await producer.start()

    async def handle(records: list[ConsumerRecord[bytes, bytes]]) -> None:
        batch, poison = feature_log.rows([record.value for record in records])
        await feature_log.write(pool, batch)
        sends = []
        for index, reason in poison.items():
            sends.append(await _dead_letter(producer, settings.topic_prefix, records[index],
                                            reason, FEATURE_LOG_GROUP))
        await asyncio.gather(*sends)

    async def dead_letter_one(record: Record, reason: str) -> None:
        await (await _dead_letter(producer, settings.topic_prefix, record, reason,
                                  FEATURE_LOG_GROUP))

    try:
        await consume(settings, FEATURE_LOG.name_for(settings.topic_prefix),
                      FEATURE_LOG_GROUP, handle, dead_letter_one, watchdog=watchdog,
                      fetch_wait_ms=BACKGROUND_FETCH_WAIT_MS,
                      fetch_min_bytes=FEATURE_LOG_FETCH_MIN_BYTES)
    finally:
        await producer.stop()
        await pool.close()


async def _dead_letter(producer: AIOKafkaProducer, prefix: str,
                       record: ConsumerRecord[bytes, bytes], reason: str, consumer: str) -> Any:
    """Send ``record`` to the dead letters (``ingest.topics.dead_letter``); the send's future
    (acknowledged when Kafka has it)."""
    letter = dead_letter(prefix, record, reason, consumer)
    return await producer.send(letter.topic, letter.value, key=letter.key,
                               headers=letter.headers)
