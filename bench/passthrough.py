"""The streaming benchmark's transport reference: a raw aiokafka consume -> produce pass-through.

It reads every message already on the stream worker's input topic (``payments.requests``,
pre-filled by ``bench.streams``) from the beginning, outside any consumer group, and produces
each one's bytes unchanged, with its key, to a topic of its own; the clock runs from the first
fetch to the last acknowledged send. No decoding, no state, no scoring: what a Python process
on this machine can move through the broker, the ceiling under any stream worker's
decisions/s. Its CPU per message is the process time of this (single-threaded) loop.
"""

from __future__ import annotations

import time
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from ingest.topics import PAYMENT_REQUESTS
from payflow.settings import Settings

OUTPUT_TOPIC = "bench.passthrough"
MAX_MESSAGES = 2_000_000


async def passthrough(settings: Settings, timeout_seconds: float = 120.0) -> dict[str, Any]:
    """Figures of one pass over the input topic: messages, seconds, messages/s, µs CPU each."""
    source = PAYMENT_REQUESTS.name_for(settings.topic_prefix)
    target = f"{settings.topic_prefix}{OUTPUT_TOPIC}"
    await _create_topic(settings, target, PAYMENT_REQUESTS.partitions)
    consumer = AIOKafkaConsumer(bootstrap_servers=settings.kafka_bootstrap, group_id=None,
                                enable_auto_commit=False, auto_offset_reset="earliest")
    producer = AIOKafkaProducer(bootstrap_servers=settings.kafka_bootstrap, linger_ms=10,
                                max_batch_size=256 * 1024)
    await consumer.start()
    await producer.start()
    try:
        partitions = [TopicPartition(source, p) for p in range(PAYMENT_REQUESTS.partitions)]
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        expected = sum((await consumer.end_offsets(partitions)).values())
        assert 0 < expected <= MAX_MESSAGES, expected
        moved, started, cpu_started = 0, time.perf_counter(), time.process_time()
        while moved < expected and time.perf_counter() - started < timeout_seconds:
            batches = await consumer.getmany(timeout_ms=200, max_records=5000)
            for records in batches.values():
                for record in records:
                    await producer.send(target, record.value, key=record.key)
                moved += len(records)
        await producer.flush()
        seconds = time.perf_counter() - started
        cpu = time.process_time() - cpu_started
    finally:
        await producer.stop()
        await consumer.stop()
    return {"messages": moved, "expected": expected, "seconds": round(seconds, 3),
            "messages_per_second": round(moved / seconds), "complete": moved >= expected,
            "cpu_us_per_message": round(cpu / max(1, moved) * 1e6, 1),
            "producer": {"linger_ms": 10, "max_batch_size": 256 * 1024, "acks": 1}}


async def _create_topic(settings: Settings, name: str, partitions: int) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap)
    await admin.start()
    try:
        if name not in set(await admin.list_topics()):
            await admin.create_topics([NewTopic(name=name, num_partitions=partitions,
                                                replication_factor=1)])
    finally:
        await admin.close()
