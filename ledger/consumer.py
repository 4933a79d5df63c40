"""The ledger consumer: applies decisions to PostgreSQL, one transaction per consumed batch.

For each batch from ``payments.decisions``:

1. in one database transaction, for every message: claim its id in ``processed_messages``
   (a redelivered message is skipped), lock the payment, apply the pure state machine, write the
   new state and its events into the outbox;
2. after the commit, publish the batch's events to ``payments.events`` and mark them published,
   then tell the waiting API instances the outcome over Redis;
3. commit the Kafka offsets.

A crash anywhere redelivers the batch: step 1 changes nothing the second time, and events the
crash left unpublished are published by the outbox sweep, with the ids they were given.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, field
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRecord
from psycopg import AsyncConnection
from psycopg_pool import AsyncConnectionPool
from redis.asyncio import Redis
from redis.exceptions import RedisError

from ingest.contracts import (
    AnyPublicEvent,
    CommandOutcome,
    PaymentDecided,
    PaymentEvent,
    PaymentRequest,
    PaymentRequested,
    UndecodableMessage,
    decode_decision,
)
from ingest.topics import DEAD_LETTERS, PAYMENT_DECISIONS, PAYMENT_EVENTS, PAYMENT_REQUESTS
from ledger import store
from ledger.payments import apply_decision
from payflow.settings import Settings

log = logging.getLogger(__name__)
SOURCE = "payflow/ledger"
MAX_BATCH = 500
OUTBOX_SWEEP_SECONDS = 5.0
STALE_REQUEST_SECONDS = 30.0
"""A payment still pending this long after its request was sent gets its request re-sent."""


@dataclass
class BatchResult:
    """What one committed batch produced for the world outside the database."""

    events: list[tuple[str, AnyPublicEvent]] = field(default_factory=list)
    """(catalog topic name, event) in commit order."""
    replies: list[tuple[str, str]] = field(default_factory=list)
    """(Redis channel, transaction JSON) for API instances waiting on a payment."""
    dead_letters: list[tuple[ConsumerRecord[bytes, bytes], str]] = field(default_factory=list)


class LedgerConsumer:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        prefix = settings.topic_prefix
        self.decisions_topic = PAYMENT_DECISIONS.name_for(prefix)
        self.events_topic = PAYMENT_EVENTS.name_for(prefix)
        self.requests_topic = PAYMENT_REQUESTS.name_for(prefix)
        self.dead_letter_topic = DEAD_LETTERS.name_for(prefix)
        self.consumer = AIOKafkaConsumer(
            self.decisions_topic,
            bootstrap_servers=settings.kafka_bootstrap,
            group_id=f"{prefix}payflow-ledger",
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            fetch_max_wait_ms=50,
            max_poll_records=MAX_BATCH,
        )
        self.producer = AIOKafkaProducer(
            bootstrap_servers=settings.kafka_bootstrap, enable_idempotence=True, linger_ms=5
        )
        self.pool: AsyncConnectionPool[AsyncConnection[Any]] = AsyncConnectionPool(
            settings.database_url, min_size=1, max_size=4, open=False
        )
        self.redis: Redis = Redis.from_url(settings.redis_url)
        self._stopping = asyncio.Event()
        self.applied = 0

    async def run(self) -> None:
        await self.pool.open(wait=True)
        await self.producer.start()
        await self.consumer.start()
        log.info("ledger consumer started on %s", self.decisions_topic)
        last_sweep = 0.0
        try:
            while not self._stopping.is_set():
                batches = await self.consumer.getmany(timeout_ms=200, max_records=MAX_BATCH)
                records = [record for part in batches.values() for record in part]
                if records:
                    await self.process(records)
                    await self.consumer.commit()
                if time.monotonic() - last_sweep > OUTBOX_SWEEP_SECONDS:
                    await self.sweep_outbox()
                    await self.resend_stale_requests()
                    last_sweep = time.monotonic()
        finally:
            await self.consumer.stop()
            await self.producer.stop()
            await self.pool.close()
            await self.redis.aclose()

    def stop(self) -> None:
        self._stopping.set()

    async def process(self, records: list[ConsumerRecord[bytes, bytes]]) -> None:
        async with self.pool.connection() as conn, conn.transaction():
            result = await self.apply_batch(conn, records)
        await self.publish(result.events)
        await self.reply(result.replies)
        for record, reason in result.dead_letters:
            headers = [("reason", reason.encode()), ("topic", record.topic.encode())]
            await self.producer.send(
                self.dead_letter_topic, record.value, key=record.key, headers=headers
            )
        self.applied += len(records)

    async def apply_batch(
        self, conn: AsyncConnection[Any], records: list[ConsumerRecord[bytes, bytes]]
    ) -> BatchResult:
        result = BatchResult()
        for record in records:
            try:
                message = decode_decision(record.value)
            except UndecodableMessage as error:
                result.dead_letters.append((record, str(error)))
                continue
            if not await store.claim_message(conn, message.id, record.topic):
                continue
            await self.apply_decision(conn, message, result)
        return result

    async def apply_decision(
        self, conn: AsyncConnection[Any], message: PaymentDecided, result: BatchResult
    ) -> None:
        payment = await store.load_payment_for_update(conn, message.subject)
        if payment is None:
            log.error("decision %s for unknown payment %s", message.id, message.subject)
            return
        transition = apply_decision(payment, message.data)
        if transition is None:
            return
        await store.save_payment(conn, payment, transition.payment)
        transaction = await store.load_transaction(conn, payment.id)
        events = [
            PaymentEvent(
                type=event_type,
                source=SOURCE,
                merchant_id=payment.merchant_id,
                subject=payment.id,
                data=transaction,
            )
            for event_type in transition.events
        ]
        await store.insert_events(conn, PAYMENT_EVENTS.name, events)
        result.events.extend((PAYMENT_EVENTS.name, event) for event in events)
        if message.data.reply_to:
            outcome = CommandOutcome(correlation_id=payment.id, transaction=transaction)
            result.replies.append((message.data.reply_to, outcome.model_dump_json()))

    async def publish(self, events: list[tuple[str, AnyPublicEvent]]) -> None:
        """Send events in order, wait for Kafka's acknowledgement, then mark them published."""
        if not events:
            return
        prefix = self.settings.topic_prefix
        sends = [
            await self.producer.send(f"{prefix}{topic}", event.encode(), key=event.key())
            for topic, event in events
        ]
        await asyncio.gather(*sends)
        async with self.pool.connection() as conn:
            await store.mark_published(conn, [event.id for _, event in events])

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

    async def sweep_outbox(self) -> None:
        """Publish events a crash left in the outbox (older than a few seconds)."""
        async with self.pool.connection() as conn:
            events = await store.unpublished_events(conn, older_than_seconds=5, limit=1000)
        if events:
            log.warning("publishing %d events left in the outbox", len(events))
            await self.publish(events)

    async def resend_stale_requests(self) -> None:
        """Re-send requests that never reached Kafka or whose decision never came.

        A duplicate decision is harmless: a payment leaves ``pending`` only once.
        """
        async with self.pool.connection() as conn:
            stale = await store.claim_stale_requests(
                conn, older_than_seconds=STALE_REQUEST_SECONDS, limit=1000
            )
        if not stale:
            return
        log.warning("re-sending %d stale payment requests", len(stale))
        sends = []
        for merchant_id, request in stale:
            data = PaymentRequest.model_validate(request)
            message = PaymentRequested(
                source=SOURCE, merchant_id=merchant_id, subject=data.payment_id, data=data
            )
            sends.append(
                await self.producer.send(self.requests_topic, message.encode(), key=message.key())
            )
        await asyncio.gather(*sends)
