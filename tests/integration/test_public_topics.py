"""The guarantees docs/topics.md states for the public topics, on the real stack: one payment's
events arrive in order on one partition; every state change is exactly one event with one id,
and a redelivered decision or command adds none; every public message is valid against its
published schema and carries no card number, CVC or secret."""

from __future__ import annotations

import asyncio
import json
import re
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import cache
from typing import Any

import httpx
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient
from jsonschema import Draft202012Validator

from ingest.schema_export import public_topics
from ingest.topics import DEAD_LETTERS, PAYMENT_COMMANDS, PAYMENT_DECISIONS, PAYMENT_EVENTS
from payflow.settings import REPO_ROOT, Settings
from tests.harness import RunningStack

pytestmark = pytest.mark.integration

CARDS = {"approves": "4242424242424242", "declines": "4000000000000002",
         "other": "4000056655665556"}
ACCOUNT_NUMBER = "000123456789"
WAIT_SECONDS = 30.0


@dataclass(frozen=True)
class Record:
    topic: str
    partition: int
    offset: int
    key: bytes
    raw: bytes

    @property
    def message(self) -> dict[str, Any]:
        value: dict[str, Any] = json.loads(self.raw)
        return value


@dataclass
class Merchant:
    client: httpx.Client
    api_key: str

    def pay(self, amount: int = 10_000, capture: bool = True,
            card: str = CARDS["approves"]) -> dict[str, Any]:
        response = self.client.post("/v1/payments", json={
            "amount": amount, "currency": "usd", "capture": capture, "payment_method": {
                "type": "card", "card": {"number": card, "exp_month": 12, "exp_year": 2031,
                                         "cvc": "123"}}})
        assert response.status_code == 201, response.text
        payment: dict[str, Any] = response.json()["transaction"]
        return payment

    def command(self, payment_id: str, action: str, **body: Any) -> httpx.Response:
        return self.client.post(f"/v1/payments/{payment_id}/{action}", json=body)


@pytest.fixture(scope="module")
def merchant(stack: RunningStack) -> Iterator[Merchant]:
    created = stack.environment.create_merchant("Public Topics Merchant")
    with httpx.Client(base_url=stack.base_url, timeout=15,
                      headers={"Authorization": f"Bearer {created.api_key}"}) as client:
        yield Merchant(client, created.api_key)


def read_topic(settings: Settings, topic: str,
               done: Callable[[list[Record]], bool] = lambda _: True) -> list[Record]:
    """Every record of the session's ``topic`` from the beginning, read until ``done`` holds
    and nothing more arrives (bounded by WAIT_SECONDS)."""
    return asyncio.run(_read(settings, topic, done))


async def _read(settings: Settings, topic: str,
                done: Callable[[list[Record]], bool]) -> list[Record]:
    consumer = AIOKafkaConsumer(f"{settings.topic_prefix}{topic}", group_id=None,
                                bootstrap_servers=settings.kafka_bootstrap,
                                auto_offset_reset="earliest", enable_auto_commit=False)
    await consumer.start()
    records: list[Record] = []
    deadline = time.monotonic() + WAIT_SECONDS
    try:
        quiet = 0
        while time.monotonic() < deadline and (quiet < 2 or not done(records)):
            batches = await consumer.getmany(timeout_ms=400, max_records=5_000)
            quiet = 0 if batches else quiet + 1
            records += [Record(topic, r.partition, r.offset, r.key or b"", r.value or b"")
                        for part in batches.values() for r in part]
    finally:
        await consumer.stop()
    return sorted(records, key=lambda r: (r.partition, r.offset))


def events_of(records: list[Record], payment_id: str) -> list[Record]:
    return [r for r in records if r.message["subject"] == payment_id]


def event_types(records: list[Record], payment_id: str) -> list[str]:
    return [r.message["type"] for r in events_of(records, payment_id)]


def wait_for_events(settings: Settings, expected: dict[str, list[str]]) -> list[Record]:
    """payments.events once every payment in ``expected`` has at least its expected events."""
    def complete(records: list[Record]) -> bool:
        return all(len(events_of(records, pid)) >= len(types)
                   for pid, types in expected.items())
    return read_topic(settings, PAYMENT_EVENTS.name, complete)


def test_one_payments_events_arrive_in_order_on_one_partition(
    stack: RunningStack, merchant: Merchant,
) -> None:
    refunded = merchant.pay(capture=False)
    assert merchant.command(refunded["id"], "capture").status_code == 200
    assert merchant.command(refunded["id"], "refund", amount=3_000).status_code == 200
    assert merchant.command(refunded["id"], "refund").status_code == 200
    voided = merchant.pay(capture=False)
    assert merchant.command(voided["id"], "void").status_code == 200
    failed = merchant.pay(card=CARDS["declines"])
    disputed = merchant.pay(amount=7_500)
    assert merchant.command(disputed["id"], "dispute", reason="fraudulent").status_code == 200
    expected = {
        refunded["id"]: ["payment.authorized.v1", "payment.captured.v1", "refund.created.v1",
                         "refund.created.v1", "payment.refunded.v1"],
        voided["id"]: ["payment.authorized.v1", "payment.voided.v1"],
        failed["id"]: ["payment.failed.v1"],
        disputed["id"]: ["payment.authorized.v1", "payment.captured.v1", "dispute.created.v1"],
    }
    records = wait_for_events(stack.environment.settings, expected)
    for payment_id, types in expected.items():
        own = events_of(records, payment_id)
        assert [r.message["type"] for r in own] == types, payment_id
        assert {r.partition for r in own} == {own[0].partition}, "one key, one partition"
        assert all(r.key == payment_id.encode() for r in own)
        times = [datetime.fromisoformat(r.message["time"]) for r in own]
        assert times == sorted(times), "event times follow the order"
    amounts = [r.message["data"].get("refunded_amount")
               for r in events_of(records, refunded["id"])]
    assert amounts[-1] == 10_000


def test_a_redelivered_decision_or_command_adds_no_event_and_ids_never_change(
    stack: RunningStack, merchant: Merchant,
) -> None:
    settings = stack.environment.settings
    payment = merchant.pay(capture=False)
    assert merchant.command(payment["id"], "capture", amount=6_000).status_code == 200
    assert merchant.command(payment["id"], "refund", amount=1_000).status_code == 200
    expected = ["payment.authorized.v1", "payment.captured.v1", "refund.created.v1"]
    before = events_of(wait_for_events(settings, {payment["id"]: expected}), payment["id"])
    assert [r.message["type"] for r in before] == expected
    inputs = [r for topic in (PAYMENT_DECISIONS.name, PAYMENT_COMMANDS.name)
              for r in read_topic(settings, topic) if r.key == payment["id"].encode()]
    assert sorted({r.topic for r in inputs}) == [PAYMENT_COMMANDS.name, PAYMENT_DECISIONS.name]
    assert len([r for r in inputs if r.topic == PAYMENT_COMMANDS.name]) == 2
    asyncio.run(_redeliver(settings, inputs))
    after = events_of(read_topic(settings, PAYMENT_EVENTS.name), payment["id"])
    assert [(r.message["id"], r.raw) for r in after] == [(r.message["id"], r.raw)
                                                        for r in before]
    dead = [r for r in read_topic(settings, DEAD_LETTERS.name) if r.key == payment["id"].encode()]
    assert dead == [], "a redelivery is skipped, not dead-lettered"


async def _redeliver(settings: Settings, records: list[Record]) -> None:
    """Send the records again, as Kafka would redeliver them, and wait until the ledger's
    consumer group has committed past every one of them (so it has processed them)."""
    producer = AIOKafkaProducer(bootstrap_servers=settings.kafka_bootstrap)
    await producer.start()
    try:
        sent = [await producer.send_and_wait(f"{settings.topic_prefix}{r.topic}", r.raw,
                                             key=r.key) for r in records]
    finally:
        await producer.stop()
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap)
    await admin.start()
    try:
        deadline = time.monotonic() + WAIT_SECONDS
        while True:
            committed = await admin.list_consumer_group_offsets(
                f"{settings.topic_prefix}payflow-ledger")
            positions = {(tp.topic, tp.partition): meta.offset for tp, meta in committed.items()}
            if all(positions.get((s.topic, s.partition), -1) > s.offset for s in sent):
                return
            assert time.monotonic() < deadline, "the ledger did not consume the redelivery"
            await asyncio.sleep(0.3)
    finally:
        await admin.close()


def test_every_event_id_names_one_state_change(stack: RunningStack, merchant: Merchant) -> None:
    """Across the session: an id seen twice (an outbox re-publish) has identical bytes, and two
    ids never carry the same change."""
    merchant.pay()
    records = read_topic(stack.environment.settings, PAYMENT_EVENTS.name)
    assert records
    by_id: dict[str, set[bytes]] = {}
    changes: dict[tuple[str, str, str], str] = {}
    for record in records:
        message = record.message
        by_id.setdefault(message["id"], set()).add(record.raw)
        change = (message["subject"], message["type"], json.dumps(message["data"],
                                                                   sort_keys=True))
        assert changes.setdefault(change, message["id"]) == message["id"], change[:2]
    assert all(len(bodies) == 1 for bodies in by_id.values())


def test_public_messages_match_their_schemas_and_carry_no_card_data_or_secrets(
    stack: RunningStack, merchant: Merchant,
) -> None:
    endpoint = merchant.client.post("/v1/webhook_endpoints", json={
        "url": "http://127.0.0.1:9/hook", "enabled_events": ["payout.paid"]})
    assert endpoint.status_code == 201, endpoint.text
    secret = endpoint.json()["secret"]
    for card in CARDS.values():
        merchant.client.post("/v1/payments", json={
            "amount": 500, "currency": "usd", "payment_method": {"type": "card", "card": {
                "number": card, "exp_month": 1, "exp_year": 2032, "cvc": "123"}}})
    bank = merchant.client.post("/v1/payments", json={
        "amount": 2_000, "currency": "eur", "payment_method": {
            "type": "bank_transfer", "bank_account": {
                "routing_number": "110000000", "account_number": ACCOUNT_NUMBER,
                "account_holder_name": "Ada Lovelace"}}})
    assert bank.status_code in (201, 202), bank.text
    secrets = [*CARDS.values(), ACCOUNT_NUMBER, merchant.api_key, secret,
               secret.removeprefix("whsec_")]
    settings = stack.environment.settings
    problems: list[str] = []
    for topic in public_topics():
        records = read_topic(settings, topic.name)
        for record in records:
            where = f"{topic.name}@{record.partition}:{record.offset}"
            problems += [f"{where}: {p}" for p in leaks(record.raw, secrets)]
            problems += [f"{where}: {e.message}" for e in schema_errors(record.message)]
            if datetime.fromisoformat(record.message["time"]).utcoffset() != timedelta(0):
                problems.append(f"{where}: time {record.message['time']} is not UTC")
        if topic.name in (PAYMENT_EVENTS.name, PAYMENT_DECISIONS.name):
            assert records, f"no traffic on {topic.name} to check"
    assert not problems, "\n".join(problems[:20])


FORBIDDEN_KEYS = {"number", "card_number", "cvc", "cvv", "account_number", "secret", "password",
                  "api_key"}
DIGIT_RUNS = re.compile(rb"(?<![0-9A-Za-z._-])\d{13,19}(?![0-9A-Za-z._-])")
"""A card number standing alone (not part of an id, a hex digest or a decimal)."""


FREE_TEXT = {"metadata", "description", "customer"}
"""What merchants write themselves (the API fuzz tests write anything there): only the known
secrets are looked for in it, not the card-number heuristics."""


def leaks(raw: bytes, secrets: list[str]) -> list[str]:
    found = [f"contains {s[:6]}..." for s in secrets if s.encode() in raw]
    structured = without_free_text(json.loads(raw))
    dumped = json.dumps(structured).encode()
    found += [f"a card-like number {m.group().decode()[:4]}..."
              for m in DIGIT_RUNS.finditer(dumped) if luhn(m.group().decode())]
    found += [f"a field named {key!r}" for key in keys(structured) if key in FORBIDDEN_KEYS]
    return found


def without_free_text(node: Any) -> Any:
    if isinstance(node, dict):
        return {k: without_free_text(v) for k, v in node.items() if k not in FREE_TEXT}
    if isinstance(node, list):
        return [without_free_text(item) for item in node]
    return node


def keys(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        for key, value in node.items():
            yield key
            yield from keys(value)
    elif isinstance(node, list):
        for item in node:
            yield from keys(item)


def luhn(digits: str) -> bool:
    total = 0
    for position, digit in enumerate(reversed(digits)):
        value = int(digit) * (2 if position % 2 else 1)
        total += value - 9 if value > 9 else value
    return total % 10 == 0


def schema_errors(message: dict[str, Any]) -> list[Any]:
    return list(validator(str(message.get("type"))).iter_errors(message))


@cache
def validator(event_type: str) -> Draft202012Validator:
    path = REPO_ROOT / "schemas" / f"{event_type}.json"
    assert path.is_file(), f"{event_type} is published without a schema"
    return Draft202012Validator(json.loads(path.read_text()),
                                format_checker=Draft202012Validator.FORMAT_CHECKER)
