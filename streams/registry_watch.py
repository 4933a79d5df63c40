"""Keeps a worker's decision engine on the registry's champion model and current thresholds.

Three triggers, one refresh: at start-up; on every ``models.promotions`` event (each worker
reads that topic in full, outside any consumer group, so every worker reacts, not just one);
and every ``model_check_seconds`` as a safety net for an event lost while Kafka was away. A
champion that fails to load leaves the engine without a model: decisions continue, by rules
alone, marked degraded, until a loadable model is promoted.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from typing import Any

import psycopg
from aiokafka import AIOKafkaConsumer

from ingest.topics import MODEL_PROMOTIONS
from models import registry
from models.decision import RiskPolicy
from models.scoring import ModelLoadError
from payflow.settings import Settings
from streams.engine import DecisionEngine

log = logging.getLogger(__name__)


@dataclass
class RegistryWatch:
    settings: Settings
    engine: DecisionEngine
    loaded_version: int | None = None

    def refresh_now(self) -> None:
        """Blocking refresh, for start-up before the event loop runs."""
        try:
            self._refresh()
        except psycopg.Error as error:
            log.warning("registry not reachable at start-up; rules only for now: %s", error)

    async def refresh(self) -> None:
        try:
            await asyncio.to_thread(self._refresh)
        except psycopg.Error as error:
            log.warning("registry not reachable, keeping %s: %s", self.loaded_version, error)

    def _refresh(self) -> None:
        with psycopg.connect(self.settings.database_url, connect_timeout=5) as conn:
            self.engine.policies = load_policies(conn)
            version = registry.champion(conn)
            if version == self.loaded_version:
                return
            try:
                self.engine.model = None if version is None else registry.load(conn, version)
            except (ModelLoadError, registry.RegistryError) as error:
                log.error("champion fraud-v%s cannot be loaded; rules only: %s", version, error)
                self.engine.model = None
            self.loaded_version = version
            log.warning("fraud model now %s", registry.model_name(version) if version else None)

    async def listen(self) -> None:
        """Refresh on every promotion event from now on (runs for the worker's lifetime)."""
        consumer = AIOKafkaConsumer(
            MODEL_PROMOTIONS.name_for(self.settings.topic_prefix),
            bootstrap_servers=self.settings.kafka_bootstrap, group_id=None,
            auto_offset_reset="latest", fetch_max_wait_ms=200,
        )
        await consumer.start()
        try:
            async for _ in consumer:
                await self.refresh()
        finally:
            await consumer.stop()


def load_policies(conn: psycopg.Connection[Any]) -> dict[str, RiskPolicy]:
    rows = conn.execute(
        "SELECT merchant_id, review_threshold, block_threshold FROM risk_policies"
    ).fetchall()
    return {merchant: RiskPolicy(review, block) for merchant, review, block in rows}
