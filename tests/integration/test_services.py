"""The real services answer: Kafka metadata, a PostgreSQL query, a Redis ping."""

from __future__ import annotations

import subprocess
import sys

import psycopg
import pytest
from aiokafka.admin import AIOKafkaAdminClient
from redis.asyncio import Redis

from ingest.topics import CATALOG
from tests.harness import IsolatedEnvironment

pytestmark = pytest.mark.integration


async def test_kafka_lists_this_runs_topics(environment: IsolatedEnvironment) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=environment.settings.kafka_bootstrap)
    await admin.start()
    try:
        topics = set(await admin.list_topics())
        described = await admin.describe_topics(
            [CATALOG[0].name_for(environment.settings.topic_prefix)]
        )
    finally:
        await admin.close()
    prefix = environment.settings.topic_prefix
    assert {topic.name_for(prefix) for topic in CATALOG} <= topics
    assert len(described[0]["partitions"]) == CATALOG[0].partitions


def test_postgres_holds_the_migrated_schema(environment: IsolatedEnvironment) -> None:
    with psycopg.connect(environment.settings.database_url) as conn:
        tables = {row[0] for row in conn.execute(
            "SELECT tablename FROM pg_tables WHERE schemaname = 'public'")}
    assert {"merchants", "payments", "idempotency_keys", "processed_messages"} <= tables


async def test_redis_answers_ping(environment: IsolatedEnvironment) -> None:
    redis = Redis.from_url(environment.settings.redis_url)
    try:
        assert await redis.ping()
    finally:
        await redis.aclose()


def test_services_status_reports_every_service_running(environment: IsolatedEnvironment) -> None:
    result = subprocess.run([sys.executable, "-m", "payflow", "services", "status"],
                            capture_output=True, text=True, check=False, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr
    for name in ("kafka", "postgres", "redis"):
        assert f"{name}" in result.stdout
    assert "stopped" not in result.stdout
