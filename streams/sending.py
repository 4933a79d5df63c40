"""A batch's messages handed to Kafka's producer one record batch per topic partition.

aiokafka's ``send`` costs about 20 µs of Python per message (a coroutine, a future per message,
the accumulator's checks: measured with 600-byte values, partitions given), and the worker sends
five or six messages per decision: its decision, its feature-log entry, and a changelog message
per table record it changed. ``create_batch`` / ``send_batch`` append the messages of one
partition into aiokafka's C record-batch builder and hand the whole batch over at once, with
one future: 4 µs a message at 20 messages a partition, and never more than ``send`` at one.

Messages keep their order within a partition (batches go to the accumulator in the order they
filled), which is all Kafka orders. Each message must name its partition: the worker computes
every partition itself (``streams.stages``), so that a key and the partition its table record
lives in can never disagree.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from dataclasses import dataclass
from typing import Any

from aiokafka import AIOKafkaProducer


@dataclass(frozen=True)
class SentBatch:
    """One record batch handed to the producer: acknowledged when ``future`` returns."""

    topic: str
    partition: int
    count: int
    future: Awaitable[Any]


class PartitionBatches:
    """Messages gathered into record batches by (topic, partition), in the order added."""

    def __init__(self, producer: AIOKafkaProducer) -> None:
        self.producer = producer
        self.open: dict[tuple[str, int], Any] = {}
        """The batch being filled for each (topic, partition)."""
        self.full: list[tuple[str, int, Any]] = []

    def add(self, topic: str, partition: int, key: bytes | None, value: bytes) -> None:
        builder = self.open.get((topic, partition))
        if builder is not None and builder.append(key=key, value=value,
                                                  timestamp=None) is not None:
            return
        if builder is not None:  # full: it goes as it is, and another starts
            self.full.append((topic, partition, builder))
        builder = self.open[topic, partition] = self.producer.create_batch()
        appended = builder.append(key=key, value=value, timestamp=None)
        assert appended is not None, f"a message of {len(value)} bytes fits in no batch"

    async def send(self) -> list[SentBatch]:
        """Hand every batch to the producer, in the order they filled (a partition's full
        batches before its last). A batch waits only while an earlier batch of its partition
        still waits for a produce request."""
        batches = self.full + [(topic, partition, builder)
                               for (topic, partition), builder in self.open.items()]
        self.open, self.full = {}, []
        sent = []
        for topic, partition, builder in batches:
            future = await self.producer.send_batch(builder, topic, partition=partition)
            sent.append(SentBatch(topic, partition, builder.record_count(), future))
        return sent


async def acknowledged(batches: list[SentBatch]) -> dict[tuple[str, int], int]:
    """Wait until Kafka has acknowledged every batch; the newest offset of each partition."""
    results = await asyncio.gather(*(batch.future for batch in batches))  # no task each
    newest: dict[tuple[str, int], int] = {}
    for batch, metadata in zip(batches, results, strict=True):
        slot = (batch.topic, batch.partition)
        newest[slot] = max(metadata.offset + batch.count - 1, newest.get(slot, -1))
    return newest
