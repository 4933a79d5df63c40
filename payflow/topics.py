"""Create the catalog's topics on the broker, idempotently (existing topics are left alone);
delete a throwaway deployment's topics and consumer groups (a test run's, a benchmark's, a
replay's)."""

from __future__ import annotations

import asyncio
import time

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.protocol.admin import DeleteGroupsRequest

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


GROUP_DELETE_SECONDS = 20.0
"""A member killed before it left its group keeps the group non-empty until the broker's session
timeout (10 s for payflow's consumers) expires it; deletion is retried that long."""
NON_EMPTY_GROUP = 68


async def delete_consumer_groups(settings: Settings,
                                 timeout_seconds: float = GROUP_DELETE_SECONDS) -> list[str]:
    """Delete every consumer group under ``settings.topic_prefix``, retrying those that still
    have members until ``timeout_seconds``; the ones left. Refuses an empty prefix.

    aiokafka 0.14 has no ``delete_consumer_groups``; the protocol request is there."""
    if not settings.topic_prefix:
        raise ValueError("refusing to delete consumer groups without a prefix")
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap)
    await admin.start()
    try:
        groups = [str(group) for group, *_ in await admin.list_consumer_groups()
                  if str(group).startswith(settings.topic_prefix)]
        deadline = time.monotonic() + timeout_seconds
        while groups:
            remaining = []
            for group in groups:
                node = await admin.find_coordinator(group)
                response = await admin._send_request_to_node(node, DeleteGroupsRequest([group]))
                remaining += [name for name, error in response.results if error == NON_EMPTY_GROUP]
            groups = remaining
            if not groups or time.monotonic() >= deadline:
                break
            await asyncio.sleep(1.0)
        return groups
    finally:
        await admin.close()
