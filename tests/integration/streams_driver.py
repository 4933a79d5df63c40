"""Drives the risk engine on the real services: its own database and topic prefix, stream
workers as processes, crafted requests in, decisions and dead letters out.

The session's ``environment`` is shared with the end-to-end stack (whose worker would join the
same consumer group and read the same registry), so the risk-engine tests run in a database and
topic prefix of their own, created here and dropped afterwards.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import psycopg
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from ingest.contracts import (
    CardSummary,
    PaymentDecided,
    PaymentMethodSummary,
    PaymentRequest,
    PaymentRequested,
    decode_decision,
)
from ingest.sandbox import card_fingerprint
from ingest.topics import DEAD_LETTERS, PAYMENT_DECISIONS, PAYMENT_REQUESTS
from payflow.db.databases import drop_database
from payflow.db.migrate import migrate
from payflow.settings import Settings
from payflow.supervisor import Child, Supervisor, free_port
from payflow.topics import create_topics, delete_topics
from tests.harness import IsolatedEnvironment

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC).timestamp()
FEATURE_LOG_WRITER = "feature-log"
"""The name of the environment's feature-log writer, started with it for every test module."""


@dataclass
class RiskEnvironment:
    settings: Settings
    env: dict[str, str]
    supervisor: Supervisor
    workers: dict[str, Child] = field(default_factory=dict)

    def start_worker(self, name: str, *, ready: bool = True) -> Child:
        """Start a worker process; with ``ready``, return once it has decided a probe."""
        env = {"PAYFLOW_WORKER_NAME": name, "PAYFLOW_WORKER_WEB_PORT": str(free_port())}
        child = self.supervisor.start(name, "worker", extra_env=env)
        self.workers[name] = child
        if ready:
            probe = request(f"probe_{uuid.uuid4().hex[:12]}", T0, merchant="m_probe",
                            card=f"probe_{uuid.uuid4().hex[:12]}")
            asyncio.run(decide_in_order(self.settings, [probe], timeout_seconds=120))
        return child

    def stop_worker(self, name: str, hard: bool = False) -> None:
        self._stop(self.workers.pop(name), hard)

    def stop_feature_log(self) -> None:
        """Stop the environment's feature-log writer (started with it)."""
        [writer] = [c for c in self.supervisor.children if c.name == FEATURE_LOG_WRITER]
        self._stop(writer, hard=False)

    def _stop(self, child: Child, hard: bool) -> None:
        child.process.send_signal(9 if hard else 15)
        child.process.wait(timeout=30)
        self.supervisor.children.remove(child)

    def fingerprint(self, number: str) -> str:
        return card_fingerprint(number, self.settings.card_fingerprint_key.get_secret_value()
                                .encode())


@pytest.fixture(scope="module")
def risk(environment: IsolatedEnvironment) -> Iterator[RiskEnvironment]:
    run = uuid.uuid4().hex[:6]
    database = f"{environment.settings.database_url.rsplit('/', 1)[1]}_risk_{run}"
    admin = environment.admin_database_url
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{database}"')  # type: ignore[arg-type]
    url = admin.rsplit("/", 1)[0] + f"/{database}"
    prefix = f"{environment.settings.topic_prefix}risk{run}."
    settings = environment.settings.model_copy(
        update={"database_url": url, "topic_prefix": prefix, "model_check_seconds": 2.0})
    env = {**environment.env, "PAYFLOW_DATABASE_URL": url, "PAYFLOW_TOPIC_PREFIX": prefix,
           "PAYFLOW_MODEL_CHECK_SECONDS": "2", "PAYFLOW_STREAM_BATCH_WAIT_SECONDS": "0.005"}
    migrate(url)
    asyncio.run(create_topics(settings))
    supervisor = Supervisor(settings.home / "logs" / f"test-risk-{run}", env=env)
    try:
        supervisor.start(FEATURE_LOG_WRITER, "feature-log")
        yield RiskEnvironment(settings, env, supervisor)
    finally:
        supervisor.stop_all()
        asyncio.run(delete_topics(settings))
        drop_database(admin, database)


def request(payment_id: str, at: float, *, merchant: str, card: str, amount: int = 2500,
            ip: str | None = None, customer: str | None = None,
            country: str | None = None) -> PaymentRequested:
    """A crafted request at event time ``at`` (seconds since the epoch)."""
    method = PaymentMethodSummary(id=f"pm_{payment_id}", type="card", card=CardSummary(
        brand="visa", funding="credit", last4="4242", exp_month=12, exp_year=2030,
        fingerprint=card))
    data = PaymentRequest(payment_id=payment_id, amount=amount, currency="USD",
                          payment_method=method, customer_id=customer, ip_address=ip,
                          ip_country=country)
    return PaymentRequested(source="test", merchant_id=merchant, subject=payment_id,
                            time=datetime.fromtimestamp(at, UTC), data=data)


async def produce(settings: Settings, messages: Iterable[PaymentRequested | tuple[bytes, bytes]],
                  topic: str | None = None) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=settings.kafka_bootstrap, linger_ms=5)
    await producer.start()
    try:
        name = topic or PAYMENT_REQUESTS.name_for(settings.topic_prefix)
        for message in messages:
            key, value = ((message.key(), message.encode())
                          if isinstance(message, PaymentRequested) else message)
            await producer.send(name, value, key=key)
        await producer.flush()
    finally:
        await producer.stop()


async def decisions(settings: Settings, payment_ids: Iterable[str],
                    timeout_seconds: float = 60) -> dict[str, list[PaymentDecided]]:
    """Every decision for ``payment_ids`` (waits until each has at least one)."""
    wanted = set(payment_ids)
    found: dict[str, list[PaymentDecided]] = {}
    records = await _read(settings, PAYMENT_DECISIONS.name_for(settings.topic_prefix),
                          lambda: wanted <= set(found), timeout_seconds,
                          lambda r: _keep(found, wanted, decode_decision(r.value)))
    assert wanted <= set(found), f"no decision for {sorted(wanted - set(found))[:5]} " \
                                 f"after {timeout_seconds}s ({records} records read)"
    return found


def _keep(found: dict[str, list[PaymentDecided]], wanted: set[str],
          decided: PaymentDecided) -> None:
    if decided.subject in wanted:
        found.setdefault(decided.subject, []).append(decided)


class DecisionReader:
    """A consumer of the decisions topic kept open across waits (``async with``)."""

    def __init__(self, settings: Settings) -> None:
        self.consumer = AIOKafkaConsumer(
            PAYMENT_DECISIONS.name_for(settings.topic_prefix),
            bootstrap_servers=settings.kafka_bootstrap, auto_offset_reset="earliest",
            group_id=None, fetch_max_wait_ms=20)
        self.found: dict[str, list[PaymentDecided]] = {}

    async def __aenter__(self) -> DecisionReader:
        await self.consumer.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.consumer.stop()

    async def wait_for(self, payment_id: str, timeout_seconds: float = 30) -> PaymentDecided:
        deadline = time.monotonic() + timeout_seconds
        while payment_id not in self.found and time.monotonic() < deadline:
            for batch in (await self.consumer.getmany(timeout_ms=100)).values():
                for record in batch:
                    decided = decode_decision(record.value)
                    self.found.setdefault(decided.subject, []).append(decided)
        assert payment_id in self.found, f"no decision for {payment_id} in {timeout_seconds}s"
        return self.found[payment_id][0]


async def decide_in_order(settings: Settings, messages: Iterable[PaymentRequested],
                          timeout_seconds: float = 30) -> list[PaymentDecided]:
    """Send each request once the previous one is decided, so every stage sees them in event
    order (requests are keyed by payment id: a burst sent at once may be re-ordered per card)."""
    producer = AIOKafkaProducer(bootstrap_servers=settings.kafka_bootstrap)
    topic = PAYMENT_REQUESTS.name_for(settings.topic_prefix)
    await producer.start()
    try:
        async with DecisionReader(settings) as reader:
            decided = []
            for message in messages:
                await producer.send_and_wait(topic, message.encode(), key=message.key())
                decided.append(await reader.wait_for(message.subject, timeout_seconds))
            return decided
    finally:
        await producer.stop()


async def dead_letters(settings: Settings, count: int,
                       timeout_seconds: float = 30) -> list[Any]:
    got: list[Any] = []
    await _read(settings, DEAD_LETTERS.name_for(settings.topic_prefix),
                lambda: len(got) >= count, timeout_seconds, got.append)
    return got


async def _read(settings: Settings, topic: str, done: Any, timeout_seconds: float,
                handle: Any) -> int:
    consumer = AIOKafkaConsumer(topic, bootstrap_servers=settings.kafka_bootstrap,
                                auto_offset_reset="earliest", group_id=None)
    await consumer.start()
    deadline, read = time.monotonic() + timeout_seconds, 0
    try:
        while time.monotonic() < deadline and not done():
            for batch in (await consumer.getmany(timeout_ms=300)).values():
                for record in batch:
                    read += 1
                    handle(record)
    finally:
        await consumer.stop()
    return read
