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
from dataclasses import dataclass
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


@dataclass(frozen=True)
class Wiring:
    """What every agent of one worker shares."""

    app: faust.App
    settings: Settings
    topics: StageTopics
    tables: RiskTables
    engine: DecisionEngine

    def source(self, topic: Topic) -> Any:
        return self.app.topic(topic.name_for(self.settings.topic_prefix), key_type=bytes,
                              value_type=bytes, key_serializer="raw", value_serializer="raw")

    def batches(self, stream: Any, wait_seconds: float | None = None) -> Any:
        size, wait = self.settings.stream_batch_size, self.settings.stream_batch_wait_seconds
        return stream.take_events(size, wait if wait_seconds is None else wait_seconds)


def register_agents(app: faust.App, settings: Settings) -> None:
    """Declare the worker's topics, tables, agents and tasks on ``app``."""
    engine = DecisionEngine(settings.card_fingerprint_key.get_secret_value().encode())
    wiring = Wiring(app, settings, StageTopics.for_prefix(settings.topic_prefix),
                    RiskTables.create(app), engine)
    route(wiring)
    entity(wiring, RISK_CARDS, wiring.tables.cards, card_features, lambda f: f.card)
    entity(wiring, RISK_ORIGINS, wiring.tables.origins, origin_features, lambda f: f.origin)
    entity(wiring, RISK_CUSTOMERS, wiring.tables.customers, customer_features,
           lambda f: f.customer_id)
    decide(wiring)
    labels(wiring)
    materialize_feature_log(wiring)
    follow_registry(wiring)


def route(w: Wiring) -> None:
    async def run(stream: Any) -> None:
        async for events in w.batches(stream):
            await send_all(w.app, route_batch(events, w.topics))

    w.app.agent(w.source(PAYMENT_REQUESTS), name="route")(run)


def entity(w: Wiring, topic: Topic, table: Any, step: Step,
           key_of: Callable[[PaymentFacts], str | None]) -> None:
    stage = topic.name.removeprefix("risk.")

    async def run(stream: Any) -> None:
        records = BatchRecords(table)
        async for events in w.batches(stream):
            await send_all(w.app, entity_batch(events, records, step, stage, key_of, w.topics))

    w.app.agent(w.source(topic), name=stage)(run)


def decide(w: Wiring) -> None:
    prefix = w.settings.topic_prefix
    decisions, logged = PAYMENT_DECISIONS.name_for(prefix), FEATURE_LOG.name_for(prefix)

    async def run(stream: Any) -> None:
        records = BatchRecords(w.tables.merchants)
        async for events in w.batches(stream):
            out: list[Outgoing] = []
            cases = merchant_batch(events, records, w.topics, out)
            for case, decided in zip(cases, w.engine.decide(cases), strict=True):
                out.append((decisions, decided.key(), decided.encode(), None))
                out.append((logged, decided.key(), feature_log_entry(case, decided), None))
            await send_all(w.app, out)

    w.app.agent(w.source(RISK_MERCHANTS), name="decide")(run)


def labels(w: Wiring) -> None:
    """Fraud labels: ``dispute.created`` events, re-keyed by merchant for the merchant stage."""

    async def run(stream: Any) -> None:
        async for events in w.batches(stream, 0.2):
            out: list[Outgoing] = []
            for event in events:
                try:
                    message = decode_event(event.value)
                except UndecodableMessage as error:
                    out.append(w.topics.dead_letter(event, str(error)))
                    continue
                if isinstance(message, DisputeEvent):
                    label = label_facts(message)
                    out.append((w.topics.merchants, label.merchant_id.encode(),
                                encode_label(label), None))
            await send_all(w.app, out)

    w.app.agent(w.source(PAYMENT_EVENTS), name="labels")(run)


def materialize_feature_log(w: Wiring) -> None:
    async def run(stream: Any) -> None:
        pool: AsyncConnectionPool[Any] = AsyncConnectionPool(
            w.settings.database_url, min_size=1, max_size=2, open=False)
        await pool.open(wait=True)
        try:
            async for events in stream.take_events(2000, 0.2):
                await feature_log.write(pool, [event.value for event in events])
        finally:
            await pool.close()

    w.app.agent(w.source(FEATURE_LOG), name="feature-log")(run)


def follow_registry(w: Wiring) -> None:
    """Load the champion now; reload on promotion events and every ``model_check_seconds``."""
    watch = RegistryWatch(w.settings, w.engine)
    watch.refresh_now()

    async def follow_promotions() -> None:
        await watch.listen()

    async def check_registry() -> None:
        await watch.refresh()

    w.app.task(follow_promotions)
    w.app.timer(w.settings.model_check_seconds)(check_registry)
