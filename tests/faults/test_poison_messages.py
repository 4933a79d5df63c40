"""Poison messages on every topic a payflow consumer reads, on the real stack.

The promise: a message a consumer cannot decode, or that decodes but breaks the topic's
contract, goes to ``payflow.deadletter`` with the reason in a header, and the consumer goes on
with the messages behind it. Poison is sent to every partition of every consumed topic (so
whatever partition good traffic takes, poison is ahead of it there), then a payment is
authorized, captured, disputed and paid out through the API and the settlement; each consumer
must have dead-lettered each poison message it reads, committed its offsets past the poison on
every partition, and done its part of the good traffic.

The stack here runs on a database and topic prefix of its own (``derived_environment``): the
session's public topics are read whole by other tests, which poison would fail. The topic list
comes from the catalog (``ingest/topics.py``): a topic that is neither in ``READERS`` nor in
``NOT_CONSUMED`` fails ``test_every_catalog_topic_is_known_to_be_consumed_or_not``.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import psycopg
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.structs import TopicPartition

from ingest.topics import (
    CATALOG,
    DEAD_LETTER_HEADERS,
    DEAD_LETTERS,
    FEATURE_LOG,
    MODEL_PROMOTIONS,
    PAYMENT_COMMANDS,
    PAYMENT_DECISIONS,
    PAYMENT_EVENTS,
    PAYMENT_REQUESTS,
    PAYOUTS,
    RISK_CARDS,
    RISK_CUSTOMERS,
    RISK_MERCHANTS,
    RISK_ORIGINS,
    RISK_TABLE_CHANGELOGS,
    Topic,
)
from ledger.settle import settle_day
from tests.harness import IsolatedEnvironment, RunningStack, derived_environment

pytestmark = pytest.mark.integration
WAIT_SECONDS = 90.0
CARD = {"type": "card", "card": {"number": "4242424242424242", "exp_month": 12,
                                 "exp_year": 2030, "cvc": "123"}}
DISPUTE_MARKER = '"dispute.created.v1"'


@dataclass(frozen=True)
class Reader:
    """A consumer of topics, as its dead letters name it."""

    name: str
    header: str | None
    """Its dead letters' ``consumer`` header (None: it dead-letters nothing)."""
    decodes: bool = True
    """False for a reader that never decodes a message (nothing to dead-letter)."""


WORKER = Reader("stream worker", "payflow-streams")
LABELS = Reader("stream worker: labels", "payflow-risk-labels")
FEATURE_LOG_WRITER = Reader("feature-log writer", "payflow-feature-log")
REGISTRY_WATCH = Reader("stream worker: registry watch (any message means re-read the "
                        "registry in PostgreSQL; no consumer group)", None, decodes=False)
LEDGER = Reader("ledger", "payflow-ledger")
WEBHOOKS = Reader("webhook sender", "payflow-webhooks")
ANALYTICS = Reader("analytics", "payflow-analytics")

READERS: dict[str, tuple[Reader, ...]] = {
    PAYMENT_REQUESTS.name: (WORKER,),
    RISK_CARDS.name: (WORKER,),
    RISK_ORIGINS.name: (WORKER,),
    RISK_CUSTOMERS.name: (WORKER,),
    RISK_MERCHANTS.name: (WORKER,),
    PAYMENT_DECISIONS.name: (LEDGER, ANALYTICS),
    PAYMENT_COMMANDS.name: (LEDGER,),
    PAYMENT_EVENTS.name: (WEBHOOKS, ANALYTICS, LABELS),
    PAYOUTS.name: (WEBHOOKS,),
    FEATURE_LOG.name: (FEATURE_LOG_WRITER,),
    MODEL_PROMOTIONS.name: (REGISTRY_WATCH,),
}
"""Every catalog topic a payflow process consumes, and who consumes it."""

NOT_CONSUMED: dict[str, str] = {
    DEAD_LETTERS.name: "the dead letters themselves: no payflow process consumes them",
    **{t.name: "a table changelog: written and restored by Faust's table recovery only, never "
               "consumed as messages" for t in RISK_TABLE_CHANGELOGS},
}


def test_every_catalog_topic_is_known_to_be_consumed_or_not() -> None:
    """A topic added to the catalog fails here until this module knows who reads it."""
    names = {topic.name for topic in CATALOG}
    assert sorted(names - READERS.keys() - NOT_CONSUMED.keys()) == []
    assert sorted((READERS.keys() | NOT_CONSUMED.keys()) - names) == []
    assert not READERS.keys() & NOT_CONSUMED.keys()


def poison_for(topic: Topic, nonce: str) -> list[tuple[str, bytes]]:
    """(kind, value): bytes that are not even JSON, and JSON that breaks the topic's contract.
    Each carries the dispute marker, so that the labels reader (which decodes only messages
    that carry it) must handle both too."""
    undecodable = f"\xff\x00 poison {nonce} {DISPUTE_MARKER}".encode("latin-1")
    invalid: Any
    if topic.name.startswith("risk.") and topic != FEATURE_LOG:
        invalid = ["case", nonce, DISPUTE_MARKER]  # a stage item of the wrong arity
    elif topic == FEATURE_LOG:
        invalid = {"payment_id": nonce, "note": DISPUTE_MARKER}  # no features, no outcome
    else:
        types = {PAYMENT_REQUESTS.name: "payment.requested.v1",
                 PAYMENT_DECISIONS.name: "payment.decided.v1",
                 PAYMENT_COMMANDS.name: "payment.capture.v1",
                 PAYOUTS.name: "payout.paid.v1"}
        invalid = {"id": nonce, "type": types.get(topic.name, "dispute.created.v1"),
                   "source": "poison-test", "merchant_id": 42, "note": DISPUTE_MARKER}
    return [("undecodable", undecodable), ("schema-invalid", json.dumps(invalid).encode())]


@dataclass(frozen=True)
class Sent:
    topic: str
    kind: str
    partition: int
    offset: int
    value: bytes


async def send_poison(settings: Any, nonce: str, topics: list[Topic]) -> list[Sent]:
    """Two poison messages to every partition of each of ``topics``."""
    producer = AIOKafkaProducer(bootstrap_servers=settings.kafka_bootstrap)
    await producer.start()
    sent = []
    try:
        for topic in topics:
            name = topic.name_for(settings.topic_prefix)
            for partition in range(topic.partitions):
                for kind, value in poison_for(topic, f"{nonce}-{partition}"):
                    meta = await producer.send_and_wait(name, value, key=b"poison",
                                                        partition=partition)
                    sent.append(Sent(topic.name, kind, partition, meta.offset, value))
    finally:
        await producer.stop()
    return sent


@pytest.fixture(scope="module")
def poisoned(environment: IsolatedEnvironment) -> Iterator[RunningStack]:
    isolated = derived_environment(environment, f"poison{uuid.uuid4().hex[:4]}")
    try:
        stack = RunningStack.start(isolated)
        try:
            yield stack
        finally:
            stack.stop()
    finally:
        isolated.teardown()


def test_poison_on_every_consumed_topic_is_dead_lettered_and_every_consumer_goes_on(
    poisoned: RunningStack,
) -> None:
    """Each poison message reaches the dead letters from every consumer that decodes it, with
    its reason, source topic and (ledger, webhooks, analytics) consumer; every consumer group
    commits past the poison on every partition; then good traffic flows through all of them."""
    settings = poisoned.environment.settings
    topics = [t for t in CATALOG if t.name in READERS]
    sent = asyncio.run(send_poison(settings, uuid.uuid4().hex[:8], topics))
    survivor = good_traffic(poisoned)
    problems = dead_letter_problems(settings, sent)
    problems += offset_problems(settings, sent)
    problems += survivor_problems(poisoned, survivor)
    if dead := poisoned.supervisor.dead():
        problems.append(f"processes died: {[child.name for child in dead]}")
    assert problems == [], "\n".join(problems)


# --- the good traffic behind the poison ---------------------------------------------------

@dataclass(frozen=True)
class Survivor:
    merchant_id: str
    client: httpx.Client
    payment_id: str


def good_traffic(stack: RunningStack) -> Survivor:
    """A payment through every stage (card, origin, customer, merchant), captured, disputed
    and paid out, for a merchant whose endpoint takes every event."""
    created = stack.environment.create_merchant("Poison Survivor")
    client = httpx.Client(base_url=stack.base_url, timeout=20,
                          headers={"Authorization": f"Bearer {created.api_key}"})
    endpoint = client.post("/v1/webhook_endpoints", json={"url": "http://127.0.0.1:9/hook"})
    assert endpoint.status_code == 201, endpoint.text
    paid = client.post("/v1/payments", timeout=30, json={
        "amount": 5_000, "currency": "usd", "capture": False, "payment_method": CARD,
        "customer": {"id": f"cus_{uuid.uuid4().hex[:8]}", "ip_address": "203.0.113.7"}})
    assert paid.status_code == 201, f"not decided behind the poison: {paid.text}"
    payment = paid.json()["transaction"]
    assert payment["status"] == "authorized", payment
    for action, body in (("capture", {}), ("dispute", {"reason": "fraudulent"})):
        answer = client.post(f"/v1/payments/{payment['id']}/{action}", json=body)
        assert answer.status_code == 200, f"{action} behind the poison: {answer.text}"
    # A payout, for the payouts topic (the disputed payment leaves nothing to pay out).
    kept = client.post("/v1/payments", json={"amount": 7_000, "currency": "usd",
                                             "payment_method": CARD})
    assert kept.status_code == 201, kept.text
    day = datetime.now(UTC).date() + timedelta(days=stack.environment.settings
                                               .settlement_delay_days)
    settled = asyncio.run(settle_day(stack.environment.settings.database_url, day))
    assert [r.payout_id is not None for r in settled
            if r.plan.merchant_id == created.merchant_id] == [True], settled
    return Survivor(created.merchant_id, client, payment["id"])


def survivor_problems(stack: RunningStack, survivor: Survivor) -> list[str]:
    """What the webhook sender, analytics, labels and feature log did not do for the good
    traffic within ``WAIT_SECONDS`` (the worker and the ledger answered the API above)."""
    wanted = {"payment.authorized", "payment.captured", "dispute.created", "payout.paid"}
    url = stack.environment.settings.database_url
    deadline = time.monotonic() + WAIT_SECONDS
    while True:
        deliveries = survivor.client.get("/api/webhooks/deliveries",
                                         params={"limit": 100}).json()["data"]
        with psycopg.connect(url) as conn:
            counted, logged = conn.execute(
                """SELECT (SELECT coalesce(sum(payment_count), 0) FROM analytics_rollups
                           WHERE merchant_id = %(m)s AND granularity = 'hour'),
                          (SELECT count(*) FROM feature_log WHERE payment_id = %(p)s)""",
                {"m": survivor.merchant_id, "p": survivor.payment_id}).fetchone() or (0, 0)
        labelled = asyncio.run(label_sent(stack.environment.settings, survivor.payment_id))
        missing = wanted - {d["event_type"] for d in deliveries}
        problems = ([f"webhook sender: no delivery of {sorted(missing)}"] if missing else [])
        problems += [] if counted >= 1 else ["analytics: the payment is not counted"]
        problems += [] if logged == 1 else ["feature log: no row for the payment"]
        problems += [] if labelled else ["labels: the dispute never reached risk.merchants"]
        if not problems or time.monotonic() > deadline:
            survivor.client.close()
            return problems
        time.sleep(1)


async def label_sent(settings: Any, payment_id: str) -> bool:
    records = await read_all(settings, RISK_MERCHANTS.name_for(settings.topic_prefix), 3.0)
    return any(b'"label"' in (r.value or b"") and payment_id.encode() in (r.value or b"")
               for r in records)


# --- dead letters and offsets -------------------------------------------------------------

async def read_all(settings: Any, topic: str, quiet_seconds: float) -> list[Any]:
    """Every record of ``topic`` from the beginning (until nothing arrives for a while)."""
    consumer = AIOKafkaConsumer(topic, bootstrap_servers=settings.kafka_bootstrap,
                                group_id=None, auto_offset_reset="earliest",
                                enable_auto_commit=False)
    await consumer.start()
    records: list[Any] = []
    try:
        deadline, last = time.monotonic() + 30, time.monotonic()
        while time.monotonic() < deadline and time.monotonic() - last < quiet_seconds:
            batches = await consumer.getmany(timeout_ms=300, max_records=5_000)
            for part in batches.values():
                records += part
                last = time.monotonic()
    finally:
        await consumer.stop()
    return records


def expected_letters(sent: list[Sent]) -> list[tuple[Sent, Reader]]:
    return [(message, reader) for message in sent for reader in READERS[message.topic]
            if reader.decodes]


def _letter_matches(record: Any, message: Sent, reader: Reader, prefix: str) -> bool:
    headers = {k: v.decode("latin-1") for k, v in record.headers}
    return (record.value == message.value and bool(headers.get("reason"))
            and headers.get("topic") == f"{prefix}{message.topic}"
            and headers.get("consumer") == reader.header
            and set(DEAD_LETTER_HEADERS) <= headers.keys())


def dead_letter_problems(settings: Any, sent: list[Sent]) -> list[str]:
    """Every (poison message, consumer that decodes it) pair has its dead letter."""
    expected = expected_letters(sent)
    deadline = time.monotonic() + WAIT_SECONDS
    prefix = settings.topic_prefix
    while True:
        letters = asyncio.run(read_all(settings, DEAD_LETTERS.name_for(prefix), 2.0))
        missing = [(m, r) for m, r in expected
                   if not any(_letter_matches(x, m, r, prefix) for x in letters)]
        if not missing or time.monotonic() > deadline:
            break
        time.sleep(1)
    by_reader: dict[tuple[str, str], int] = {}
    for message, reader in missing:
        key = (message.topic, reader.name)
        by_reader[key] = by_reader.get(key, 0) + 1
    return [f"{topic}: {count} poison messages never dead-lettered by the {reader}"
            for (topic, reader), count in sorted(by_reader.items())]


def offset_problems(settings: Any, sent: list[Sent]) -> list[str]:
    """On each consumed topic, as many consumer groups as it has grouped readers have
    committed past the poison on every partition."""
    last: dict[tuple[str, int], int] = {}
    for message in sent:
        key = (message.topic, message.partition)
        last[key] = max(last.get(key, -1), message.offset)
    deadline = time.monotonic() + WAIT_SECONDS
    while True:
        committed = asyncio.run(committed_offsets(settings))
        problems = []
        for topic, readers in READERS.items():
            grouped = [r for r in readers if r is not REGISTRY_WATCH]
            partitions = [(t, p) for (t, p) in last if t == topic]
            past = [group for group, offsets in committed.items()
                    if all(offsets.get(TopicPartition(f"{settings.topic_prefix}{t}", p), -1)
                           > last[(t, p)] for t, p in partitions)]
            if len(past) < len(grouped):
                problems.append(f"{topic}: {len(past)} consumer groups past the poison "
                                f"({past}), {len(grouped)} expected")
        if not problems or time.monotonic() > deadline:
            return problems
        time.sleep(1)


async def committed_offsets(settings: Any) -> dict[str, dict[TopicPartition, int]]:
    """Committed offsets of every consumer group of this stack (named under its prefix)."""
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap)
    await admin.start()
    try:
        groups = [group for group, *_ in await admin.list_consumer_groups()
                  if group.startswith(settings.topic_prefix)]
        result = {}
        for group in groups:
            offsets = await admin.list_consumer_group_offsets(group)
            mine = {tp: meta.offset for tp, meta in offsets.items()
                    if tp.topic.startswith(settings.topic_prefix)}
            if mine:
                result[group] = mine
        return result
    finally:
        await admin.close()
