"""The ledger on the real stack: the database enforces balance and append-only; redelivered
batches change nothing; settlement pays out exactly what the ledger says and ties to the cent;
reconciliation passes after a mixed workload and names a tampered posting."""

from __future__ import annotations

import asyncio
import csv
import random
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from psycopg import AsyncConnection

from ingest.topics import PAYMENT_DECISIONS
from ledger.reconcile import reconcile
from ledger.settle import settle_day
from tests.harness import RunningStack

pytestmark = pytest.mark.integration

CARD = {"type": "card", "card": {"number": "4242424242424242", "exp_month": 12,
                                 "exp_year": 2030, "cvc": "123"}}


@pytest.fixture(scope="module")
def merchant(stack: RunningStack) -> Iterator[tuple[str, httpx.Client]]:
    created = stack.environment.create_merchant("Ledger Merchant")
    with httpx.Client(base_url=stack.base_url, timeout=15,
                      headers={"Authorization": f"Bearer {created.api_key}"}) as client:
        yield created.merchant_id, client


def db(stack: RunningStack) -> psycopg.Connection[Any]:
    return psycopg.connect(stack.environment.settings.database_url, autocommit=True)


def pay(client: httpx.Client, amount: int, capture: bool = True,
        currency: str = "usd") -> dict[str, Any]:
    response = client.post("/v1/payments", json={"amount": amount, "currency": currency,
                                                 "capture": capture, "payment_method": CARD})
    assert response.status_code == 201, response.text
    result: dict[str, Any] = response.json()["transaction"]
    return result


def test_an_unbalanced_entry_is_refused_by_the_database(stack: RunningStack) -> None:
    with (db(stack) as conn,
          pytest.raises(psycopg.errors.CheckViolation, match="unbalanced"),
          conn.transaction()):
        entry = conn.execute("INSERT INTO journal_entries (message_id, kind, currency) "
                             "VALUES ('test', 'capture', 'USD') RETURNING id").fetchone()
        assert entry is not None
        conn.execute("INSERT INTO accounts (name, owner, kind, currency, normal, "
                     "non_negative) VALUES ('platform:bank:USD', 'platform', 'bank', "
                     "'USD', 'debit', false) ON CONFLICT DO NOTHING")
        conn.execute("INSERT INTO postings (entry_id, account, amount, currency) VALUES "
                     "(%s, 'platform:bank:USD', 100, 'USD')", (entry[0],))


def test_postings_and_entries_are_append_only(stack: RunningStack,
                                              merchant: tuple[str, httpx.Client]) -> None:
    pay(merchant[1], 1_000)
    with db(stack) as conn:
        for statement in ("UPDATE postings SET amount = amount + 1",
                          "DELETE FROM postings", "DELETE FROM journal_entries",
                          "UPDATE journal_entries SET kind = 'x'", "DELETE FROM audit_log"):
            with pytest.raises(psycopg.errors.InsufficientPrivilege, match="append-only"):
                conn.execute(statement)


def test_a_hold_resolves_only_once(stack: RunningStack,
                                   merchant: tuple[str, httpx.Client]) -> None:
    payment = pay(merchant[1], 1_000, capture=False)
    assert merchant[1].post(f"/v1/payments/{payment['id']}/void").status_code == 200
    with db(stack) as conn, pytest.raises(psycopg.errors.CheckViolation, match="already"):
        conn.execute("UPDATE holds SET status = 'posted', posted_amount = amount "
                     "WHERE payment_id = %s", (payment["id"],))


def _ledger_state(stack: RunningStack, merchant_id: str) -> tuple[Any, ...]:
    """This merchant's balances, and how many entries each applied message made (other tests'
    merchants may legitimately be changing meanwhile)."""
    with db(stack) as conn:
        balances = conn.execute(
            "SELECT name, posted_debits, posted_credits, pending_debits, pending_credits "
            "FROM accounts WHERE owner = %s ORDER BY name", (merchant_id,)).fetchall()
        entries = conn.execute("SELECT count(*), count(DISTINCT message_id) FROM journal_entries"
                               " WHERE kind = 'capture'").fetchone()
    return balances, entries


def test_redelivering_every_decision_changes_nothing(stack: RunningStack,
                                                     merchant: tuple[str, httpx.Client]) -> None:
    for amount in (1_100, 2_200, 3_300):
        pay(merchant[1], amount)
    balances, (captures, messages) = _ledger_state(stack, merchant[0])
    assert captures == messages  # one capture entry per applied message
    count = asyncio.run(_redeliver_decisions(stack))
    assert count >= 3
    time.sleep(3)  # the ledger consumes them in well under a second
    after, (captures_after, messages_after) = _ledger_state(stack, merchant[0])
    assert after == balances
    assert captures_after == messages_after  # no message applied twice, anywhere


async def _redeliver_decisions(stack: RunningStack) -> int:
    settings = stack.environment.settings
    topic = PAYMENT_DECISIONS.name_for(settings.topic_prefix)
    consumer = AIOKafkaConsumer(topic, bootstrap_servers=settings.kafka_bootstrap,
                                auto_offset_reset="earliest", group_id=None)
    producer = AIOKafkaProducer(bootstrap_servers=settings.kafka_bootstrap)
    await consumer.start()
    await producer.start()
    try:
        records = []
        for _ in range(10):
            batch = await consumer.getmany(timeout_ms=500)
            if not batch and records:
                break
            records += [r for part in batch.values() for r in part]
        for record in records:
            await producer.send(topic, record.value, key=record.key)
        await producer.flush()
        return len(records)
    finally:
        await consumer.stop()
        await producer.stop()


def test_settlement_pays_out_what_the_ledger_holds_and_ties_to_the_cent(
    stack: RunningStack, merchant: tuple[str, httpx.Client], tmp_path: Path
) -> None:
    merchant_id, client = merchant
    paid = [pay(client, amount, currency="eur") for amount in (10_000, 5_000, 2_500)]
    client.post(f"/v1/payments/{paid[1]['id']}/refund", json={"amount": 2_000})
    client.post(f"/v1/payments/{paid[2]['id']}/dispute", json={"reason": "fraudulent"})
    day = datetime.now(UTC).date() + timedelta(days=stack.environment.settings
                                               .settlement_delay_days)
    url = stack.environment.settings.database_url
    results = asyncio.run(settle_day(url, day, tmp_path))
    mine = [r for r in results if r.plan.merchant_id == merchant_id and r.plan.currency == "EUR"]
    assert len(mine) == 1
    plan = mine[0].plan
    fees = sum(290 * a // 10_000 + (1 if (290 * a) % 10_000 >= 5_000 else 0) + 30
               for a in (10_000, 5_000, 2_500))
    fee_back = (290 * 5_000 // 10_000 + 30) * 2_000 // 5_000
    assert plan.payout_amount == 17_500 - fees - 2_000 + fee_back - 2_500
    with db(stack) as conn:
        available, paid_out = conn.execute(
            """SELECT (SELECT posted_credits - posted_debits FROM accounts WHERE name = %s),
                      (SELECT posted_debits FROM accounts WHERE name = %s)""",
            (f"merchant:{merchant_id}:available:EUR",
             f"merchant:{merchant_id}:in_transit:EUR")).fetchone()  # type: ignore[misc]
    assert available == 0 and paid_out == plan.payout_amount
    report = list(csv.reader((tmp_path / f"settlement_{merchant_id}_EUR_{day}.csv").open()))
    total = next(row for row in report if row[1] == "total")
    assert int(total[6]) == plan.net
    payout = next(row for row in report if row[1] == "payout")
    assert -int(payout[6]) == plan.payout_amount
    assert {row[1] for row in report[1:]} >= {"capture", "refund", "dispute"}
    again = asyncio.run(settle_day(url, day, tmp_path))
    assert [r for r in again if r.plan.merchant_id == merchant_id] == []


def test_reconciliation_passes_after_a_mixed_workload_and_names_a_tampered_posting(
    stack: RunningStack, merchant: tuple[str, httpx.Client]
) -> None:
    client = merchant[1]
    rng = random.Random(5)
    for _ in range(12):
        payment = pay(client, rng.randint(100, 20_000), capture=rng.random() < 0.5)
        action = rng.choice(["capture", "void", "refund", "partial", "none"])
        if action == "partial":
            client.post(f"/v1/payments/{payment['id']}/refund", json={"amount": 50})
        elif action != "none":
            client.post(f"/v1/payments/{payment['id']}/{action}")
    time.sleep(6)  # let the outbox sweep publish anything pending
    settings = stack.environment.settings
    report = asyncio.run(_reconcile(settings.database_url, settings))
    assert report.ok, report.problems
    with db(stack) as conn:
        posting_id, entry_id = conn.execute(
            "SELECT p.id, p.entry_id FROM postings p JOIN journal_entries e ON e.id = p.entry_id "
            "WHERE e.kind = 'capture' ORDER BY p.id LIMIT 1").fetchone()  # type: ignore[misc]
        conn.execute("ALTER TABLE postings DISABLE TRIGGER postings_append_only")
        conn.execute("UPDATE postings SET amount = amount + 1 WHERE id = %s", (posting_id,))
    try:
        tampered = asyncio.run(_reconcile(settings.database_url, settings))
        assert not tampered.ok
        assert any(f"journal entry {entry_id} sums to 1" in p for p in tampered.problems)
        assert any(p.startswith("trial balance") for p in tampered.problems)
    finally:
        with db(stack) as conn:
            conn.execute("UPDATE postings SET amount = amount - 1 WHERE id = %s", (posting_id,))
            conn.execute("ALTER TABLE postings ENABLE TRIGGER postings_append_only")


async def _reconcile(url: str, settings: Any) -> Any:
    async with await AsyncConnection.connect(url, autocommit=True) as conn:
        return await reconcile(conn, settings)


def test_the_last_reconciliation_shows_on_the_api_and_in_metrics(
    stack: RunningStack, merchant: tuple[str, httpx.Client]
) -> None:
    settings = stack.environment.settings
    report = asyncio.run(_reconcile(settings.database_url, settings))
    seen = merchant[1].get("/api/ledger/reconciliation").json()
    assert seen["ok"] is report.ok and seen["checks"] == report.checks
    assert seen["problems"] is None  # a merchant does not see other merchants' problems
    metrics = httpx.get(f"{stack.base_url}/metrics", timeout=10).text
    assert f"payflow_reconciliation_ok {int(report.ok)}" in metrics
    assert "payflow_api_shed_total" in metrics
