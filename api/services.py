"""The API process's composition root: builds every adapter once from the settings."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import psycopg
from aiokafka import AIOKafkaProducer
from psycopg import AsyncConnection
from psycopg_pool import AsyncConnectionPool
from redis.asyncio import Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

from api.breaker import SendBreaker
from api.replies import ReplyWaiter
from api.vault import Vault
from ingest.partitioning import partitioner
from payflow.settings import Settings

log = logging.getLogger(__name__)
REDIS_CONNECT_SECONDS = 1.0


@dataclass
class Services:
    settings: Settings
    pool: AsyncConnectionPool[AsyncConnection[Any]]
    producer: AIOKafkaProducer
    redis: Redis
    replies: ReplyWaiter
    vault: Vault
    fingerprint_key: bytes
    kafka_breaker: SendBreaker = field(default_factory=SendBreaker)

    @classmethod
    def build(cls, settings: Settings) -> Services:
        # One retry, at once: a connection that died with a restarted Redis is replaced, while
        # a Redis that is down costs a request milliseconds, not the client's default ten
        # retries with backoff (seconds, on every rate-limit check).
        redis = Redis.from_url(settings.redis_url, socket_connect_timeout=REDIS_CONNECT_SECONDS,
                               retry=Retry(NoBackoff(), retries=1))
        return cls(
            settings=settings,
            pool=AsyncConnectionPool(
                settings.database_url,
                min_size=settings.database_pool_min,
                max_size=settings.database_pool_max,
                timeout=settings.database_pool_timeout_seconds,
                open=False,
            ),
            producer=AIOKafkaProducer(
                bootstrap_servers=settings.kafka_bootstrap,
                enable_idempotence=True,
                linger_ms=2,
                request_timeout_ms=5000,
                partitioner=partitioner,
            ),
            redis=redis,
            replies=ReplyWaiter(redis),
            vault=Vault(settings.vault_key.get_secret_value()),
            fingerprint_key=settings.card_fingerprint_key.get_secret_value().encode(),
        )

    @contextlib.asynccontextmanager
    async def autocommit(
        self, wait_seconds: float | None = None
    ) -> AsyncIterator[AsyncConnection[Any]]:
        """A pooled connection on which each statement commits by itself: a lone statement
        costs one round trip instead of three (the implicit BEGIN, it, COMMIT). Statements
        that must hold together still go in ``conn.transaction()``. The connection goes back
        to the pool as it came (not autocommit); one left mid-statement is closed by the pool.
        ``wait_seconds``: how long to wait for a connection, if not the pool's own timeout.
        """
        async with self.pool.connection(timeout=wait_seconds) as conn:
            await conn.set_autocommit(True)
            try:
                yield conn
            finally:
                with contextlib.suppress(psycopg.Error):
                    await conn.set_autocommit(False)

    async def start(self) -> None:
        await self.pool.open(wait=True, timeout=30)
        await self.producer.start()
        await self.replies.start()

    async def stop(self) -> None:
        await self.replies.stop()
        await self.producer.stop()
        await self.pool.close()
        await self.redis.aclose()
