"""``payflow webhooks``: the webhook sender's composition root.

Builds its adapters once from the settings — a PostgreSQL pool, a Kafka consumer (its own
group) and producer (dead letters), the vault that opens endpoint secrets, an SSRF-guarded HTTP
client — and runs two loops: the event consumer records deliveries, the dispatcher sends what
is due. They share nothing but PostgreSQL (and a wake-up signal), so any number of sender
processes can run side by side, and a restarted one picks up every scheduled retry.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from aiokafka import AIOKafkaProducer
from psycopg import AsyncConnection
from psycopg_pool import AsyncConnectionPool

from api.vault import Vault
from api.webhooks.guard import guarded_client
from api.webhooks.sender.consumer import EventConsumer
from api.webhooks.sender.dispatcher import Dispatcher
from api.webhooks.urls import UrlPolicy
from ingest.partitioning import partitioner
from payflow.failures import consumer_pool, open_pool
from payflow.settings import Settings

log = logging.getLogger(__name__)


class WebhookSender:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.pool: AsyncConnectionPool[AsyncConnection[Any]] = consumer_pool(
            settings.database_url, max_size=6)
        self.producer = AIOKafkaProducer(
            bootstrap_servers=settings.kafka_bootstrap, enable_idempotence=True,
            partitioner=partitioner,
        )
        self.client = guarded_client(
            UrlPolicy.from_settings(settings), max_connections=settings.webhooks_max_in_flight
        )
        self.dispatcher = Dispatcher(
            settings, self.pool, Vault(settings.vault_key.get_secret_value()), self.client
        )
        self.consumer = EventConsumer(
            settings, self.pool, self.producer, on_recorded=self.dispatcher.wake.set
        )
        self._stopping = asyncio.Event()

    async def run(self) -> None:
        await open_pool(self.pool, self.consumer.outage)
        await self.producer.start()
        log.info("webhook sender started (retry schedule %s s)",
                 list(self.settings.webhooks_retry_schedule_seconds))
        try:
            consume = asyncio.create_task(self.consumer.run(self._stopping), name="consume")
            dispatch = asyncio.create_task(self.dispatcher.run(self._stopping), name="dispatch")
            done, _ = await asyncio.wait({consume, dispatch},
                                         return_when=asyncio.FIRST_EXCEPTION)
            self._stopping.set()
            await asyncio.gather(consume, dispatch, return_exceptions=True)
            for task in done:
                task.result()  # a loop that died takes the process down, loudly
        finally:
            await self.client.aclose()
            await self.producer.stop()
            await self.pool.close()

    def stop(self) -> None:
        self._stopping.set()
