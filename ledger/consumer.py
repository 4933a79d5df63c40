"""The ledger consumer: applies decisions and commands to PostgreSQL, one transaction per batch.

For each batch from ``payments.decisions`` and ``payments.commands`` (both keyed by payment id,
so one payment's messages arrive in order at one consumer):

1. in one database transaction, every message is applied by ``ledger.handlers`` (a redelivered
   message is skipped by its id), then the batch's balance changes are applied once per
   account, in account order;
2. after the commit, the batch's events are published to their topics and marked published,
   and the waiting API instances get their outcomes over Redis;
3. the Kafka offsets are committed.

A crash anywhere redelivers the batch: step 1 changes nothing the second time, and events the
crash left unpublished are published by the outbox sweep, with the ids they were given.

Failures are told apart by ``payflow.failures.classify``. While a dependency is away
(PostgreSQL refusing connections, Kafka unreachable) the consumer commits nothing, backs off and
retries the same batch until it returns: a good decision is never dead-lettered for an outage.
A message that cannot be decoded, or that fails on its own when the batch is retried one
message at a time, goes to the dead-letter topic with the reason, so one poison message cannot
stop the ledger. Dead letters are at least once: an outage in the middle of a batch's dead
letters may repeat some.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Sequence
from datetime import UTC, date, datetime
from typing import Any, TypeAlias

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRecord
from psycopg import AsyncConnection
from psycopg_pool import AsyncConnectionPool
from redis.asyncio import Redis
from redis.exceptions import RedisError

from ingest.contracts import (
    Clear,
    ClearPayment,
    DisputeCommand,
    DisputePayment,
    Message,
    PaymentRequest,
    PaymentRequested,
    UndecodableMessage,
    decode_command,
    decode_decision,
    new_message_id,
)
from ingest.partitioning import partitioner
from ingest.topics import PAYMENT_COMMANDS, PAYMENT_DECISIONS, PAYMENT_REQUESTS, dead_letter
from ledger import store
from ledger.batch import OutboxEvent
from ledger.handlers import SOURCE, BatchEffects, Handlers
from ledger.settle import settle_day
from payflow.failures import Outage, apply_or_dead_letter, consumer_pool, open_pool, rewind
from payflow.settings import Settings
from payflow.watchdog import watching

log = logging.getLogger(__name__)
MAX_BATCH = 500
SWEEP_SECONDS = 5.0
STALE_REQUEST_SECONDS = 30.0
"""A payment still undecided this long after its request was sent gets its request re-sent."""

REDIS_TIMEOUT_SECONDS = 1.0
"""A reply is best effort: a hung Redis must not hold up the ledger."""

Record: TypeAlias = ConsumerRecord[bytes, bytes]
Decoded: TypeAlias = tuple[Record, Message]


class LedgerConsumer:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        prefix = settings.topic_prefix
        self.decisions_topic = PAYMENT_DECISIONS.name_for(prefix)
        self.commands_topic = PAYMENT_COMMANDS.name_for(prefix)
        self.consumer = AIOKafkaConsumer(
            self.decisions_topic, self.commands_topic,
            bootstrap_servers=settings.kafka_bootstrap,
            group_id=f"{prefix}payflow-ledger",
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            fetch_max_wait_ms=50,
            max_poll_records=MAX_BATCH,
        )
        self.producer = AIOKafkaProducer(
            bootstrap_servers=settings.kafka_bootstrap, enable_idempotence=True, linger_ms=5,
            partitioner=partitioner,
        )
        self.pool: AsyncConnectionPool[AsyncConnection[Any]] = consumer_pool(
            settings.database_url, max_size=4)
        self.redis: Redis = Redis.from_url(
            settings.redis_url, socket_timeout=REDIS_TIMEOUT_SECONDS,
            socket_connect_timeout=REDIS_TIMEOUT_SECONDS)
        self.handlers = Handlers(settings)
        self._stopping = asyncio.Event()
        self._settled_day: date | None = None
        self.applied = 0
        self.outage = Outage("ledger consumer", log)
        self.sweep_outage = Outage("ledger sweep", log)

    async def run(self) -> None:
        await open_pool(self.pool, self.outage)
        await self.producer.start()
        await self.consumer.start()
        log.info("ledger consumer started on %s, %s", self.decisions_topic, self.commands_topic)
        last_sweep = 0.0
        try:
            async with watching(self.settings, "the ledger consumer", self.consumer,
                                f"{self.settings.topic_prefix}payflow-ledger", self.outage,
                                self.sweep_outage):
                while not self._stopping.is_set():
                    batches = await self.consumer.getmany(timeout_ms=200, max_records=MAX_BATCH)
                    records = [record for part in batches.values() for record in part]
                    if records:
                        try:
                            await self.process(records)
                            await self.consumer.commit()
                        except Exception as error:
                            rewind(self.consumer, batches)
                            await self.outage.wait(error)
                            continue
                        self.outage.over()
                    if time.monotonic() - last_sweep > SWEEP_SECONDS:
                        await self.housekeeping()
                        last_sweep = time.monotonic()
        finally:
            await self.consumer.stop()
            await self.producer.stop()
            await self.pool.close()
            await self.redis.aclose()

    def stop(self) -> None:
        self._stopping.set()

    # --- batches

    async def process(self, records: list[Record]) -> None:
        """Apply a batch (its poison isolated and dead-lettered), publish its events, reply.
        Raises only what the caller should retry the batch for (a dependency away)."""
        decoded: list[Decoded] = []
        poison: list[tuple[Record, str]] = []
        for record in records:
            try:
                decoded.append((record, self._decode(record)))
            except UndecodableMessage as error:
                poison.append((record, str(error)))
        applied = await apply_or_dead_letter(
            decoded, self._apply_in_one_transaction, self._dead_letter_decoded, log)
        effects = BatchEffects()
        for single in applied:
            effects.events += single.events
            effects.replies += single.replies
        await self.publish(effects.events)
        await self.reply(effects.replies)
        for record, reason in poison:
            await self._dead_letter(record, reason)
        self.applied += len(records)

    async def _apply_in_one_transaction(self, decoded: Sequence[Decoded]) -> BatchEffects:
        messages = [(record.topic, message) for record, message in decoded]
        async with self.pool.connection() as conn, conn.transaction():
            return await self.handlers.apply(conn, messages)

    async def _dead_letter_decoded(self, decoded: Decoded, reason: str) -> None:
        await self._dead_letter(decoded[0], reason)

    def _decode(self, record: Record) -> Message:
        if record.topic == self.decisions_topic:
            return decode_decision(record.value)
        return decode_command(record.value)

    async def _dead_letter(self, record: Record, reason: str) -> None:
        letter = dead_letter(self.settings.topic_prefix, record, reason, "payflow-ledger")
        await self.producer.send_and_wait(letter.topic, letter.value, key=letter.key,
                                          headers=letter.headers)

    # --- after the commit

    async def publish(self, events: list[OutboxEvent]) -> None:
        """Send events in order, wait for Kafka's acknowledgement, then mark them published."""
        if not events:
            return
        prefix = self.settings.topic_prefix
        sends = [
            await self.producer.send(f"{prefix}{e.topic}", e.body, key=e.subject.encode())
            for e in events
        ]
        await asyncio.gather(*sends)
        async with self.pool.connection() as conn:
            await store.mark_published(conn, [e.id for e in events])

    async def reply(self, replies: list[tuple[str, str]]) -> None:
        """Best effort: an API instance that misses its reply reads the outcome from PostgreSQL."""
        if not replies:
            return
        try:
            async with self.redis.pipeline(transaction=False) as pipe:
                for channel, body in replies:
                    pipe.publish(channel, body)
                await pipe.execute()
        except (OSError, RedisError) as error:
            log.warning("could not publish %d replies: %s", len(replies), error)

    # --- sweeps

    async def housekeeping(self) -> None:
        """The sweep and the daily settlement; while a dependency is away they fail, and are
        tried again at the next sweep (the outage logged once)."""
        try:
            await self.sweep()
            await self.settle_when_due()
        except Exception as error:
            self.sweep_outage.note(error)
            return
        self.sweep_outage.over()

    async def sweep(self) -> None:
        """Publish what a crash left in the outbox, re-send undecided requests, and fire the
        sandbox clocks (bank transfers clearing, the dispute test card)."""
        async with self.pool.connection() as conn:
            events = await store.unpublished_events(conn, older_than_seconds=5, limit=1000)
            stale = await store.claim_stale_requests(
                conn, older_than_seconds=STALE_REQUEST_SECONDS, limit=1000)
            clearing = await store.claim_due(conn, "clears_at", 1000)
            disputing = await store.claim_due(conn, "auto_dispute_at", 1000)
        if events:
            log.warning("publishing %d events left in the outbox", len(events))
            await self.publish(events)
        if stale:
            log.warning("re-sending %d undecided payment requests", len(stale))
        sends = []
        for merchant_id, request in stale:
            data = PaymentRequest.model_validate(request)
            message = PaymentRequested(source=SOURCE, merchant_id=merchant_id,
                                       subject=data.payment_id, data=data)
            topic = PAYMENT_REQUESTS.name_for(self.settings.topic_prefix)
            sends.append(await self.producer.send(topic, message.encode(), key=message.key()))
        for merchant_id, payment_id in clearing:
            command: ClearPayment | DisputePayment = ClearPayment(
                source=SOURCE, merchant_id=merchant_id, subject=payment_id,
                data=Clear(payment_id=payment_id, actor="sandbox"))
            sends.append(await self._send_command(command))
        for merchant_id, payment_id in disputing:
            command = DisputePayment(
                source=SOURCE, merchant_id=merchant_id, subject=payment_id,
                data=DisputeCommand(payment_id=payment_id, dispute_id=f"dp_{new_message_id()}",
                                    reason="fraudulent", actor="sandbox"))
            sends.append(await self._send_command(command))
        await asyncio.gather(*sends)

    async def settle_when_due(self) -> None:
        """The scheduled daily settlement: once per UTC day, at the first sweep after midnight
        (settling a day twice creates nothing, so several consumers may all try)."""
        today = datetime.now(UTC).date()
        if self._settled_day == today:
            return
        results = await settle_day(self.settings.database_url, today)
        self._settled_day = today
        if results:
            log.info("settled %d merchant balances for %s", len(results), today)

    async def _send_command(self, command: ClearPayment | DisputePayment) -> Any:
        return await self.producer.send(self.commands_topic, command.encode(), key=command.key())
