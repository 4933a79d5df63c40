"""The worker's two stateless side consumers, on plain aiokafka rather than Faust agents.

Neither keeps a table, and Faust's per-event machinery costs several times what aiokafka's
does (../shared/notes/performance-facts.md), so they run as tasks of the worker, each in a
consumer group of its own (several workers split the partitions):

- **labels**: reads ``payments.events`` — two or three events per payment, of which only
  ``dispute.created`` matters — and forwards each dispute as a fraud label to the merchant
  stage. Other events are skipped on a byte check, before any decoding.
- **feature log**: writes ``risk.feature-log`` entries into PostgreSQL in batches.

Both commit their offsets only after the batch's effect (labels acknowledged by Kafka, rows
committed in PostgreSQL): at-least-once, with idempotent effects.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRecord
from psycopg_pool import AsyncConnectionPool

from ingest.contracts import DisputeEvent, UndecodableMessage, decode_event
from ingest.topics import DEAD_LETTERS, FEATURE_LOG, PAYMENT_EVENTS, RISK_MERCHANTS
from models.facts import label_facts
from payflow.settings import Settings
from streams import feature_log
from streams.cases import encode_label

log = logging.getLogger(__name__)
DISPUTE_MARKER = b'"dispute.created.v1"'
Handler = Callable[[list[ConsumerRecord[bytes, bytes]]], Awaitable[None]]


async def consume(settings: Settings, topic: str, group: str, handle: Handler) -> None:
    """Feed ``handle`` batches from ``topic`` and commit after each, until cancelled."""
    consumer = AIOKafkaConsumer(
        topic, bootstrap_servers=settings.kafka_bootstrap,
        group_id=f"{settings.topic_prefix}{group}", enable_auto_commit=False,
        auto_offset_reset="earliest", fetch_max_wait_ms=100, max_poll_records=2000,
        session_timeout_ms=10_000, heartbeat_interval_ms=2_000,
    )
    await consumer.start()
    try:
        while True:
            batches = await consumer.getmany(timeout_ms=500)
            records = [record for part in batches.values() for record in part]
            if records:
                await handle(records)
                await consumer.commit()
    finally:
        await consumer.stop()


async def forward_labels(settings: Settings) -> None:
    prefix = settings.topic_prefix
    merchants, dead = RISK_MERCHANTS.name_for(prefix), DEAD_LETTERS.name_for(prefix)
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
                headers = [("reason", str(error).encode()), ("topic", record.topic.encode())]
                sends.append(await producer.send(dead, record.value, key=record.key,
                                                 headers=headers))
                continue
            if isinstance(message, DisputeEvent):
                label = label_facts(message)
                sends.append(await producer.send(merchants, encode_label(label),
                                                 key=label.merchant_id.encode()))
        await asyncio.gather(*sends)

    try:
        await consume(settings, PAYMENT_EVENTS.name_for(prefix), "payflow-risk-labels", handle)
    finally:
        await producer.stop()


async def materialize_feature_log(settings: Settings) -> None:
    pool: AsyncConnectionPool[Any] = AsyncConnectionPool(
        settings.database_url, min_size=1, max_size=2, open=False)
    await pool.open(wait=True)

    async def handle(records: list[ConsumerRecord[bytes, bytes]]) -> None:
        await feature_log.write(pool, [r.value for r in records if r.value is not None])

    try:
        await consume(settings, FEATURE_LOG.name_for(settings.topic_prefix),
                      "payflow-feature-log", handle)
    finally:
        await pool.close()
