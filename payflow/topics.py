"""Create the catalog's topics on the broker, idempotently (existing topics are left alone)."""

from __future__ import annotations

from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from ingest.topics import CATALOG, Topic
from payflow.settings import Settings


async def create_topics(settings: Settings, topics: tuple[Topic, ...] = CATALOG) -> list[str]:
    """Create every missing topic; return the names created now."""
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap)
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        missing = [
            NewTopic(
                name=topic.name_for(settings.topic_prefix),
                num_partitions=topic.partitions,
                replication_factor=1,
                topic_configs=topic.config(),
            )
            for topic in topics
            if topic.name_for(settings.topic_prefix) not in existing
        ]
        if missing:
            await admin.create_topics(missing)
        return [topic.name for topic in missing]
    finally:
        await admin.close()


async def delete_topics(settings: Settings) -> list[str]:
    """Delete every topic under ``settings.topic_prefix`` (a test run's or a benchmark's own
    topics); return their names. Refuses an empty prefix: that would be every topic."""
    if not settings.topic_prefix:
        raise ValueError("refusing to delete topics without a prefix")
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap)
    await admin.start()
    try:
        names = [t for t in await admin.list_topics() if t.startswith(settings.topic_prefix)]
        if names:
            await admin.delete_topics(names)
        return names
    finally:
        await admin.close()
