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
