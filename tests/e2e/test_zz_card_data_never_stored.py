"""After the session's traffic (this module runs last among the end-to-end tests): no full card
or account number and no CVC field appears in any log line, any Kafka message on this run's
topics, or any database table — only the vault's AES-GCM ciphertext holds them."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path

import httpx
import psycopg
import pytest
from aiokafka import AIOKafkaConsumer
from aiokafka.admin import AIOKafkaAdminClient

from ingest.sandbox import SandboxCard
from ingest.simulator import APPROVING_CARDS, DECLINING_CARDS
from tests.harness import RunningStack

pytestmark = pytest.mark.integration

ACCOUNT_NUMBER = "000123456789"
SECRETS = sorted({*(card.value for card in SandboxCard), *APPROVING_CARDS, *DECLINING_CARDS,
                  ACCOUNT_NUMBER})
PATTERNS = [re.compile(re.escape(s).encode()) for s in SECRETS] + [
    re.compile(rb"4242[ -]4242[ -]4242[ -]4242"), re.compile(rb'"cvc"\s*:')]


def _leaks(data: bytes) -> set[str]:
    return {p.pattern.decode(errors="replace") for p in PATTERNS if p.search(data)}


def test_card_numbers_reach_no_log_no_topic_and_no_table(stack: RunningStack) -> None:
    client = httpx.Client(base_url=stack.base_url, timeout=15, headers={
        "Authorization": f"Bearer {stack.environment.create_merchant('Scan').api_key}"})
    for number in ("4242424242424242", "4242 4242 4242 4242", "4000000000000002"):
        client.post("/v1/payments", json={"amount": 100, "currency": "usd", "payment_method": {
            "type": "card", "card": {"number": number, "exp_month": 1, "exp_year": 2031,
                                     "cvc": "123"}}})
    client.post("/v1/payments", json={"amount": 100, "currency": "usd",
                                      "payment_method": {"type": "card", "card": {
                                          "number": "4242424242424241", "exp_month": 1,
                                          "exp_year": 2031, "cvc": "123"}}})  # a Luhn failure
    found: dict[str, set[str]] = {}
    for path in Path(stack.supervisor.log_dir).glob("*.log"):
        if leaks := _leaks(path.read_bytes()):
            found[f"log {path.name}"] = leaks
    found.update(asyncio.run(_scan_topics(stack)))
    found.update(_scan_tables(stack))
    assert not found, f"card data found: {found}"


async def _scan_topics(stack: RunningStack) -> dict[str, set[str]]:
    settings = stack.environment.settings
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap)
    await admin.start()
    topics = [t for t in await admin.list_topics() if t.startswith(settings.topic_prefix)]
    await admin.close()
    assert len(topics) >= 5
    consumer = AIOKafkaConsumer(*topics, bootstrap_servers=settings.kafka_bootstrap,
                                auto_offset_reset="earliest", group_id=None)
    await consumer.start()
    found: dict[str, set[str]] = {}
    try:
        quiet = 0
        while quiet < 3:
            batches = await consumer.getmany(timeout_ms=700, max_records=5_000)
            quiet = 0 if batches else quiet + 1
            for tp, records in batches.items():
                for record in records:
                    data = (record.key or b"") + b"\n" + (record.value or b"")
                    if leaks := _leaks(data):
                        found.setdefault(f"topic {tp.topic}", set()).update(leaks)
    finally:
        await consumer.stop()
    return found


def _scan_tables(stack: RunningStack) -> dict[str, set[str]]:
    found: dict[str, set[str]] = {}
    with psycopg.connect(stack.environment.settings.database_url) as conn:
        tables = [t for (t,) in conn.execute(
            "SELECT tablename FROM pg_tables WHERE schemaname = 'public'")]
        assert "payment_methods" in tables
        for table in tables:
            with conn.cursor().copy(f'COPY "{table}" TO STDOUT') as copy:  # type: ignore[arg-type]
                data = b"".join(bytes(chunk) for chunk in copy)
            if leaks := _leaks(data):
                found[f"table {table}"] = leaks
    return found
