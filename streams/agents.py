"""The risk engine's agents: requests in, decisions and feature-log entries out.

    payments.requests ─route─▶ risk.cards ─cards─▶ risk.origins ─origins─▶ risk.customers
      ─customers─▶ risk.merchants ─decide─▶ payments.decisions + risk.feature-log
    payments.events (dispute.created) ─labels─▶ risk.merchants (fraud labels)
    risk.feature-log ─feature-log─▶ PostgreSQL feature_log

Every agent reads micro-batches (``take_events``, bounded size and wait) and does one batch's
work in ``streams.stages``. At-least-once: a batch's messages are acknowledged by Kafka before
the agent asks for the next batch (when Faust may commit its offsets). A redelivered request
yields a second decision for the same payment; the ledger applies the first, the feature log
keeps one row.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from typing import Any

import faust
from psycopg_pool import AsyncConnectionPool

from ingest.contracts import DisputeEvent, UndecodableMessage, decode_event
from ingest.topics import (
    FEATURE_LOG,
    PAYMENT_DECISIONS,
    PAYMENT_EVENTS,
    PAYMENT_REQUESTS,
    RISK_CARDS,
    RISK_CUSTOMERS,
    RISK_MERCHANTS,
    RISK_ORIGINS,
    Topic,
)
from models.facts import PaymentFacts, label_facts
from models.features import Step, card_features, customer_features, origin_features
from payflow.settings import Settings
from streams import feature_log
from streams.cases import encode_label
from streams.engine import DecisionEngine, feature_log_entry
from streams.registry_watch import RegistryWatch
from streams.stages import (
    BatchRecords,
    Outgoing,
    StageTopics,
    entity_batch,
    merchant_batch,
    route_batch,
)
from streams.tables import RiskTables

log = logging.getLogger(__name__)


async def send_all(app: faust.App, messages: Sequence[Outgoing]) -> None:
    """Send in order and wait until Kafka has acknowledged every message."""
    pending = [await app.producer.send(topic, key, value, None, None, headers)
               for topic, key, value, headers in messages]
    await asyncio.gather(*pending)


def register_agents(app: faust.App, settings: Settings) -> None:
    """Declare the worker's topics, tables, agents and tasks on ``app``."""
    prefix, size, within = (settings.topic_prefix, settings.stream_batch_size,
                            settings.stream_batch_wait_seconds)
    topics, tables = StageTopics.for_prefix(prefix), RiskTables.create(app)
    engine = DecisionEngine(settings.card_fingerprint_key.get_secret_value().encode())
    watch = RegistryWatch(settings, engine)
    watch.refresh_now()
    decisions, logged = PAYMENT_DECISIONS.name_for(prefix), FEATURE_LOG.name_for(prefix)

    def source(topic: Topic) -> Any:
        return app.topic(topic.name_for(prefix), key_type=bytes, value_type=bytes,
                         key_serializer="raw", value_serializer="raw")

    @app.agent(source(PAYMENT_REQUESTS), name="route")
    async def route(stream: Any) -> None:
        async for events in stream.take_events(size, within):
            await send_all(app, route_batch(events, topics))

    def entity(topic: Topic, table: Any, step: Step,
               key_of: Callable[[PaymentFacts], str | None]) -> None:
        stage = topic.name.removeprefix("risk.")

        async def run(stream: Any) -> None:
            records = BatchRecords(table)
            async for events in stream.take_events(size, within):
                await send_all(app, entity_batch(events, records, step, stage, key_of, topics))

        app.agent(source(topic), name=stage)(run)

    entity(RISK_CARDS, tables.cards, card_features, lambda facts: facts.card)
    entity(RISK_ORIGINS, tables.origins, origin_features, lambda facts: facts.origin)
    entity(RISK_CUSTOMERS, tables.customers, customer_features, lambda facts: facts.customer_id)

    @app.agent(source(RISK_MERCHANTS), name="decide")
    async def decide(stream: Any) -> None:
        records = BatchRecords(tables.merchants)
        async for events in stream.take_events(size, within):
            out: list[Outgoing] = []
            cases = merchant_batch(events, records, topics, out)
            for case, decided in zip(cases, engine.decide(cases), strict=True):
                out.append((decisions, decided.key(), decided.encode(), None))
                out.append((logged, decided.key(), feature_log_entry(case, decided), None))
            await send_all(app, out)

    @app.agent(source(PAYMENT_EVENTS), name="labels")
    async def labels(stream: Any) -> None:
        async for events in stream.take_events(size, 0.2):
            out: list[Outgoing] = []
            for event in events:
                try:
                    message = decode_event(event.value)
                except UndecodableMessage as error:
                    out.append(topics.dead_letter(event, str(error)))
                    continue
                if isinstance(message, DisputeEvent):
                    label = label_facts(message)
                    out.append((topics.merchants, label.merchant_id.encode(),
                                encode_label(label), None))
            await send_all(app, out)

    @app.agent(source(FEATURE_LOG), name="feature-log")
    async def materialize(stream: Any) -> None:
        pool: AsyncConnectionPool[Any] = AsyncConnectionPool(
            settings.database_url, min_size=1, max_size=2, open=False)
        await pool.open(wait=True)
        try:
            async for events in stream.take_events(2000, 0.2):
                await feature_log.write(pool, [event.value for event in events])
        finally:
            await pool.close()

    async def follow_promotions() -> None:
        await watch.listen()

    async def check_registry() -> None:
        await watch.refresh()

    app.task(follow_promotions)
    app.timer(settings.model_check_seconds)(check_registry)
