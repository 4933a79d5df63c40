"""Turns public events into recorded deliveries: Kafka in, ``webhook_deliveries`` rows out.

For each batch from the event topics (consumer group ``payflow-webhooks``): decode, find the
merchants' enabled endpoints, plan one delivery per subscribed endpoint and insert them in one
transaction (``UNIQUE (event_id, endpoint_id)`` makes a redelivered event a no-op), then commit
the offsets. Sending happens elsewhere (``dispatcher``), so a slow endpoint never holds up
consumption.

Failures follow ``payflow.failures``: while PostgreSQL or Kafka is away the batch is retried
with backoff and no offset is committed; an undecodable event, or one whose deliveries cannot
be recorded on its own, goes to the dead-letter topic with the reason, and consumption goes on.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from typing import Any, TypeAlias

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRecord
from psycopg import AsyncConnection
from psycopg_pool import AsyncConnectionPool

from api.webhooks.events import plan_deliveries
from api.webhooks.sender import store
from ingest.contracts import AnyPublicEvent, UndecodableMessage, decode_event
from ingest.topics import CATALOG, PAYMENT_EVENTS, dead_letter
from payflow.failures import Outage, apply_or_dead_letter, rewind
from payflow.settings import Settings
from payflow.watchdog import watching

log = logging.getLogger(__name__)
MAX_BATCH = 500
EVENT_TOPIC_NAMES = (PAYMENT_EVENTS.name, "payouts")
"""Topics whose events become webhooks; those not (yet) in the catalog are skipped."""
Record: TypeAlias = ConsumerRecord[bytes, bytes]
Decoded: TypeAlias = tuple[Record, AnyPublicEvent]


def event_topics(prefix: str) -> list[str]:
    """The physical names of the catalog's event topics."""
    return [topic.name_for(prefix) for topic in CATALOG if topic.name in EVENT_TOPIC_NAMES]


class EventConsumer:
    def __init__(
        self, settings: Settings, pool: AsyncConnectionPool[AsyncConnection[Any]],
        producer: AIOKafkaProducer, on_recorded: Callable[[], None],
    ) -> None:
        prefix = settings.topic_prefix
        self.settings = settings
        self.topics = event_topics(prefix)
        self.prefix = prefix
        self.pool = pool
        self.producer = producer
        self.on_recorded = on_recorded
        self.consumer = AIOKafkaConsumer(
            *self.topics,
            bootstrap_servers=settings.kafka_bootstrap,
            group_id=f"{prefix}payflow-webhooks",
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            fetch_max_wait_ms=100,
            max_poll_records=MAX_BATCH,
        )
        self.outage = Outage("webhook event consumer", log)

    async def run(self, stopping: asyncio.Event) -> None:
        await self.consumer.start()
        log.info("webhook sender consuming %s", ", ".join(self.topics))
        try:
            async with watching(self.settings, "the webhook event consumer", self.consumer,
                                f"{self.prefix}payflow-webhooks",
                                self.outage):
                while not stopping.is_set():
                    await self._step()
        finally:
            await self.consumer.stop()

    async def _step(self) -> None:
        """One fetch, recorded and committed, or rewound to wait out an outage."""
        batches = await self.consumer.getmany(timeout_ms=300, max_records=MAX_BATCH)
        records = [record for part in batches.values() for record in part]
        if not records:
            return
        try:
            await self.record(records)
            await self.consumer.commit()
        except Exception as error:
            rewind(self.consumer, batches)
            await self.outage.wait(error)
            return
        self.outage.over()
        self.on_recorded()

    async def record(self, records: list[Record]) -> int:
        """Record the deliveries these messages call for (poison dead-lettered); how many were
        planned. Raises only what the batch should be retried for (a dependency away)."""
        decoded: list[Decoded] = []
        poison: list[tuple[Record, str]] = []
        for record in records:
            try:
                decoded.append((record, decode_event(record.value)))
            except UndecodableMessage as error:
                poison.append((record, str(error)))
        planned = await apply_or_dead_letter(decoded, self._record_deliveries,
                                             self._dead_letter_decoded, log)
        for record, reason in poison:
            await self.dead_letter(record, reason)
        return sum(planned)

    async def _record_deliveries(self, decoded: Sequence[Decoded]) -> int:
        events = [event for _, event in decoded]
        async with self.pool.connection() as conn, conn.transaction():
            subscribers = await store.subscribers(conn, sorted({e.merchant_id for e in events}))
            planned = plan_deliveries(events, subscribers)
            if planned:
                await store.record_deliveries(conn, planned)
        return len(planned)

    async def _dead_letter_decoded(self, decoded: Decoded, reason: str) -> None:
        await self.dead_letter(decoded[0], reason)

    async def dead_letter(self, record: Record, reason: str) -> None:
        log.error("dead-lettering the event at %s[%d]@%d: %s", record.topic, record.partition,
                  record.offset, reason[:200])
        letter = dead_letter(self.prefix, record, reason, "payflow-webhooks")
        await self.producer.send_and_wait(letter.topic, letter.value, key=letter.key,
                                          headers=letter.headers)
