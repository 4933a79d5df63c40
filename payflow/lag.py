"""Consumer lag per group: how many messages its topics hold beyond its committed offsets."""

from __future__ import annotations

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient


async def group_lag(
    admin: AIOKafkaAdminClient, consumer: AIOKafkaConsumer, group_id: str, topic: str
) -> int:
    """Messages on ``topic`` not yet committed by ``group_id`` (all of them if it never ran)."""
    partitions = consumer.partitions_for_topic(topic)
    if partitions is None:
        await consumer._client.force_metadata_update()
        partitions = consumer.partitions_for_topic(topic) or set()
    parts = [TopicPartition(topic, p) for p in sorted(partitions)]
    if not parts:
        return 0
    ends = await consumer.end_offsets(parts)
    committed = await admin.list_consumer_group_offsets(group_id, partitions=parts)
    lag = 0
    for part in parts:
        meta = committed.get(part)
        position = meta.offset if meta is not None and meta.offset >= 0 else 0
        lag += max(0, ends[part] - position)
    return lag
