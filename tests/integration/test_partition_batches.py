"""``streams.sending.PartitionBatches`` on the real broker: messages handed over a record batch
per topic partition arrive in the order they were added, batches that fill up are followed by
new ones, and the offsets reported are those of each partition's last message."""

from __future__ import annotations

import asyncio
import uuid

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from streams.sending import PartitionBatches, acknowledged
from tests.harness import IsolatedEnvironment

pytestmark = pytest.mark.integration

PARTITIONS = 3
BATCH_BYTES = 2048
"""Small enough that a partition's 40 messages of 100 bytes fill several batches."""


def test_batches_keep_each_partitions_order_and_report_its_last_offset(
    environment: IsolatedEnvironment,
) -> None:
    bootstrap = environment.settings.kafka_bootstrap
    topics = [f"{environment.settings.topic_prefix}test.batches.{uuid.uuid4().hex[:8]}"
              for _ in range(2)]
    sent = [(topics[index % 2], index % PARTITIONS, f"key-{index}".encode(),
             f"{index:04d}".encode() * 25) for index in range(240)]

    async def scenario() -> tuple[dict[tuple[str, int], int], int, list[tuple[str, int, bytes]]]:
        admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
        await admin.start()
        try:
            await admin.create_topics([NewTopic(topic, PARTITIONS, 1) for topic in topics])
            producer = AIOKafkaProducer(bootstrap_servers=bootstrap, max_batch_size=BATCH_BYTES)
            await producer.start()
            try:
                batches = PartitionBatches(producer)
                for topic, partition, key, value in sent:
                    batches.add(topic, partition, key, value)
                handed = await batches.send()
                newest = await acknowledged(handed)
            finally:
                await producer.stop()
            consumer = AIOKafkaConsumer(*topics, bootstrap_servers=bootstrap,
                                        auto_offset_reset="earliest", group_id=None)
            await consumer.start()
            received: list[tuple[str, int, bytes]] = []
            try:
                for _ in range(100):
                    if len(received) >= len(sent):
                        break
                    for part in (await consumer.getmany(timeout_ms=200)).values():
                        received.extend((r.topic, r.partition, r.value or b"") for r in part)
            finally:
                await consumer.stop()
            return newest, len(handed), received
        finally:
            await admin.delete_topics(topics)
            await admin.close()

    newest, handed, received = asyncio.run(scenario())
    for topic in topics:
        for partition in range(PARTITIONS):
            expected = [value for t, p, _, value in sent if (t, p) == (topic, partition)]
            got = [value for t, p, value in received if (t, p) == (topic, partition)]
            assert got == expected, (topic, partition)
            assert newest[topic, partition] == len(expected) - 1
    assert handed > 2 * PARTITIONS, "no batch filled up: the test sends too little"
