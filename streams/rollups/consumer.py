"""``payflow analytics``: keeps the rollups current from ``payments.events`` and decisions.

A plain aiokafka consumer group (like the ledger's). For each consumed batch, in one PostgreSQL
transaction: claim the batch's message ids in ``analytics_processed_messages`` (ids claimed
before are skipped), add the new messages' contributions to their hour and day buckets, commit;
then commit the Kafka offsets. A crash before the database commit redelivers the batch and it is
counted once; a crash after it redelivers messages whose ids are already claimed.

Review decisions are claimed per payment (``review:<payment id>``), so a decision the ledger
ignores as a duplicate is not counted twice either.

Failures follow ``payflow.failures``: while PostgreSQL or Kafka is away the batch is retried
with backoff and no offset is committed; an undecodable message, or one that cannot be counted
on its own, goes to the dead-letter topic with the reason, and counting goes on.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, TypeAlias

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRecord
from psycopg import AsyncConnection
from psycopg_pool import AsyncConnectionPool

from ingest.contracts import UndecodableMessage, decode_decision, decode_event
from ingest.topics import PAYMENT_DECISIONS, PAYMENT_EVENTS, dead_letter
from payflow.failures import Outage, apply_or_dead_letter, consumer_pool, open_pool, rewind
from payflow.settings import Settings
from payflow.watchdog import watching
from streams.rollups import store
from streams.rollups.model import BatchRollup, Contribution, contribution, review_contribution

log = logging.getLogger(__name__)
MAX_BATCH = 1000
PRUNE_EVERY_SECONDS = 3600.0
CLAIM_RETENTION_DAYS = 31
"""Longer than the retention of both consumed topics (30 days)."""
Record: TypeAlias = ConsumerRecord[bytes, bytes]


@dataclass(frozen=True, slots=True)
class Review:
    """A review decision, waiting for its payment's currency."""

    merchant_id: str
    payment_id: str
    time: datetime


@dataclass(frozen=True, slots=True)
class Counted:
    """A message that counts: its claim id and what it adds."""

    record: Record
    claim: str
    item: Contribution | Review


@dataclass
class ParsedBatch:
    items: list[Counted] = field(default_factory=list)
    """Every message that counts, once per claim id."""
    dead_letters: list[tuple[Record, str]] = field(default_factory=list)


def parse(records: list[Record], decisions_topic: str) -> ParsedBatch:
    """Decode a batch into what counts, keyed by claim id; poison messages set aside."""
    parsed = ParsedBatch()
    seen: set[str] = set()
    for record in records:
        try:
            claim, item = _item(record, decisions_topic)
        except UndecodableMessage as error:
            parsed.dead_letters.append((record, str(error)))
            continue
        if item is not None and claim not in seen:
            seen.add(claim)
            parsed.items.append(Counted(record, claim, item))
    return parsed


def _item(record: ConsumerRecord[bytes, bytes],
          decisions_topic: str) -> tuple[str, Contribution | Review | None]:
    if record.topic == decisions_topic:
        decision = decode_decision(record.value)
        if decision.data.outcome != "review":
            return decision.id, None
        payment_id = decision.data.payment_id
        return f"review:{payment_id}", Review(decision.merchant_id, payment_id, decision.time)
    event = decode_event(record.value)
    return event.id, contribution(event)


class AnalyticsConsumer:
    def __init__(self, settings: Settings) -> None:
        prefix = settings.topic_prefix
        self.settings = settings
        self.decisions_topic = PAYMENT_DECISIONS.name_for(prefix)
        self.prefix = prefix
        self.consumer = AIOKafkaConsumer(
            PAYMENT_EVENTS.name_for(prefix), self.decisions_topic,
            bootstrap_servers=settings.kafka_bootstrap, group_id=f"{prefix}payflow-analytics",
            enable_auto_commit=False, auto_offset_reset="earliest", fetch_max_wait_ms=200,
            max_poll_records=MAX_BATCH,
        )
        self.producer = AIOKafkaProducer(bootstrap_servers=settings.kafka_bootstrap, linger_ms=5)
        self.pool: AsyncConnectionPool[AsyncConnection[Any]] = consumer_pool(
            settings.database_url, max_size=2)
        self._stopping = asyncio.Event()
        self.counted = 0
        self.outage = Outage("analytics consumer", log)

    async def run(self) -> None:
        await open_pool(self.pool, self.outage)
        await self.producer.start()
        await self.consumer.start()
        log.info("analytics consumer started")
        last_prune = time.monotonic()
        try:
            async with watching(self.settings, "the analytics consumer", self.consumer,
                                f"{self.prefix}payflow-analytics",
                                self.outage):
                while not self._stopping.is_set():
                    await self._step()
                    if time.monotonic() - last_prune > PRUNE_EVERY_SECONDS:
                        last_prune = time.monotonic()
                        try:
                            await self.prune()
                        except Exception as error:  # housekeeping: the next hour tries again
                            log.warning("could not prune analytics claims: %s", error)
        finally:
            await self.consumer.stop()
            await self.producer.stop()
            await self.pool.close()

    def stop(self) -> None:
        self._stopping.set()

    async def _step(self) -> None:
        """One fetch, counted and committed, or rewound to wait out an outage."""
        batches = await self.consumer.getmany(timeout_ms=500, max_records=MAX_BATCH)
        records = [record for part in batches.values() for record in part]
        if not records:
            return
        try:
            counts = await self.process(records)
            await self.consumer.commit()
        except Exception as error:
            rewind(self.consumer, batches)
            await self.outage.wait(error)
            return
        if counts:  # a batch of uncounted decisions does not need PostgreSQL
            self.outage.over()

    async def process(self, records: list[Record]) -> int:
        """Count a batch (poison dead-lettered); how many of its messages count. Raises only
        what the batch should be retried for (a dependency away)."""
        parsed = parse(records, self.decisions_topic)
        counted = await apply_or_dead_letter(parsed.items, self._count,
                                             self._dead_letter_counted, log)
        self.counted += sum(counted)
        for record, reason in parsed.dead_letters:
            await self._dead_letter(record, reason)
        return len(parsed.items)

    async def _count(self, items: Sequence[Counted]) -> int:
        """Claim the items' ids and add the fresh ones to their buckets, in one transaction;
        how many were fresh."""
        async with self.pool.connection() as conn, conn.transaction():
            fresh = await store.claim(conn, {c.claim: c.record.topic for c in items})
            new = [(c.claim, c.item) for c in items if c.claim in fresh]
            batch = BatchRollup().extend(await self._resolve(conn, new))
            await store.write(conn, batch)
        return len(new)

    async def _dead_letter_counted(self, counted: Counted, reason: str) -> None:
        await self._dead_letter(counted.record, reason)

    async def _dead_letter(self, record: Record, reason: str) -> None:
        log.warning("dead-lettering a message from %s: %s", record.topic, reason[:200])
        letter = dead_letter(self.prefix, record, reason, "payflow-analytics")
        await self.producer.send_and_wait(letter.topic, letter.value, key=letter.key,
                                          headers=letter.headers)

    async def _resolve(self, conn: AsyncConnection[Any],
                       items: list[tuple[str, Contribution | Review]]) -> list[Contribution]:
        """Contributions, with each review given its payment's currency."""
        reviews = [item for _, item in items if isinstance(item, Review)]
        currencies = await store.currencies_of(conn, [r.payment_id for r in reviews])
        resolved = [item for _, item in items if isinstance(item, Contribution)]
        for review in reviews:
            currency = currencies.get(review.payment_id)
            if currency is None:
                log.error("review decision for unknown payment %s", review.payment_id)
                continue
            resolved.append(review_contribution(review.merchant_id, currency, review.time))
        return resolved

    async def prune(self) -> None:
        async with self.pool.connection() as conn:
            removed = await store.prune(conn, CLAIM_RETENTION_DAYS)
        if removed:
            log.info("forgot %d analytics claims older than %d days", removed,
                     CLAIM_RETENTION_DAYS)
