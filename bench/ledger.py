"""Ledger benchmark: postings/s and payments/s of the ledger consumer from a pre-filled topic,
against the physical references measured in the same run on the same database: a ``pgbench``
single-row insert rate (durable commits) and a raw psycopg COPY of the same number of rows.

    .venv/bin/python -m bench.ledger --payments 20000

Conditions: N pending payments spread over M merchants (two currencies) are written to a
throwaway database, N approve-and-capture decisions to a throwaway topic prefix; then one
in-process ledger consumer applies them (one transaction per consumed batch) and the clock runs
until every message is recorded as processed. Durable commits (PostgreSQL defaults). Prints the
figures and the conditions; asserts nothing. ``measure`` returns them to ``python -m bench``.
The database and topics are the benchmark's own (``bench.sandbox``), removed afterwards.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import shutil
import subprocess
import tempfile
import time
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

import psycopg
from aiokafka import AIOKafkaProducer

from bench.sandbox import sandbox, stop_on_terminate
from ingest.contracts import (
    CardSummary,
    Decision,
    PaymentDecided,
    PaymentMethodSummary,
    PaymentRequest,
)
from ingest.topics import PAYMENT_DECISIONS
from ledger.consumer import LedgerConsumer
from payflow.settings import Settings

MAX_PAYMENTS = 1_000_000


def _prefill_database(url: str, payments: int, merchants: int) -> list[tuple[str, str]]:
    """Pending payments (and their merchants and tokens); returns (payment id, merchant id)."""
    summary = PaymentMethodSummary(id="pm_bench", type="card", card=CardSummary(
        brand="visa", funding="credit", last4="4242", exp_month=12, exp_year=2030,
        fingerprint="0" * 32))
    rows = []
    with psycopg.connect(url) as conn, conn.cursor() as cursor:
        for m in range(merchants):
            cursor.execute("INSERT INTO merchants (id, name, email) VALUES (%s, %s, %s)",
                           (f"mer_bench{m}", f"Bench {m}", f"bench{m}@example.test"))
            cursor.execute("INSERT INTO payment_methods (id, merchant_id, type, summary, "
                           "ciphertext) VALUES (%s, %s, 'card', %s, '\\x00')",
                           (f"pm_bench{m}", f"mer_bench{m}", json.dumps(
                               summary.model_dump(mode="json"))))
        with cursor.copy("COPY payments (id, merchant_id, amount, currency, status, capture, "
                         "payment_method_id, payment_method, request) FROM STDIN") as copy:
            for i in range(payments):
                merchant = f"mer_bench{i % merchants}"
                payment_id = f"pay_bench{i:09d}"
                request = PaymentRequest(payment_id=payment_id, amount=1_000 + i % 5_000,
                                         currency="USD" if i % 3 else "EUR",
                                         payment_method=summary)
                copy.write_row((payment_id, merchant, request.amount, request.currency,
                                "pending", True, f"pm_bench{i % merchants}",
                                json.dumps(summary.model_dump(mode="json")),
                                request.model_dump_json()))
                rows.append((payment_id, merchant))
    return rows


async def _prefill_topic(settings: Settings, rows: list[tuple[str, str]]) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=settings.kafka_bootstrap, linger_ms=20,
                                max_batch_size=256 * 1024)
    await producer.start()
    topic = PAYMENT_DECISIONS.name_for(settings.topic_prefix)
    try:
        for payment_id, merchant_id in rows:
            message = PaymentDecided(source="bench", merchant_id=merchant_id, subject=payment_id,
                                     data=Decision(payment_id=payment_id, outcome="approve",
                                                   fraud_score=5, risk_level="low",
                                                   model_version="bench"))
            await producer.send(topic, message.encode(), key=message.key())
        await producer.flush()
    finally:
        await producer.stop()


async def _run_ledger(settings: Settings, expected: int, timeout_seconds: float
                      ) -> dict[str, float]:
    consumer = LedgerConsumer(settings)
    task = asyncio.create_task(consumer.run())
    started, cpu_started = time.monotonic(), time.process_time()
    done = 0
    async with await psycopg.AsyncConnection.connect(settings.database_url) as conn:
        while done < expected and time.monotonic() - started < timeout_seconds:
            await asyncio.sleep(0.25)
            cursor = await conn.execute("SELECT count(*) FROM processed_messages")
            done = (await cursor.fetchone() or (0,))[0]
        elapsed = time.monotonic() - started
        cursor = await conn.execute("SELECT count(*) FROM postings")
        postings = (await cursor.fetchone() or (0,))[0]
    cpu = time.process_time() - cpu_started
    consumer.stop()
    await task
    return {"applied": done, "seconds": elapsed, "postings": postings, "cpu_seconds": cpu}


def _pgbench(url: str, seconds: int, clients: int) -> float | None:
    """Single-row inserts per second, one transaction each (durable), from pgbench."""
    if shutil.which("pgbench") is None:
        return None
    parts = urlsplit(url)
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("CREATE TABLE IF NOT EXISTS bench_inserts (id bigserial PRIMARY KEY, "
                     "account text NOT NULL, amount bigint NOT NULL)")
    with tempfile.NamedTemporaryFile("w", suffix=".sql", delete=False) as script:
        script.write("INSERT INTO bench_inserts (account, amount) "
                     "VALUES ('merchant:mer_x:pending:USD', 1000);\n")
    env = {**os.environ, "PGPASSWORD": parts.password or ""}
    result = subprocess.run(
        ["pgbench", "-n", "-f", script.name, "-c", str(clients), "-j", str(min(clients, 2)),
         "-T", str(seconds), "-h", parts.hostname or "127.0.0.1", "-p", str(parts.port or 5432),
         "-U", parts.username or "payflow", parts.path.lstrip("/")],
        capture_output=True, text=True, env=env, check=False)
    os.unlink(script.name)
    for line in result.stdout.splitlines():
        if line.startswith("tps ="):
            return float(line.split()[2])
    return None


def _copy_rate(url: str, rows: int) -> float:
    """Rows per second of one COPY of posting-shaped rows, committed."""
    with psycopg.connect(url) as conn, conn.cursor() as cursor:
        cursor.execute("CREATE TABLE bench_copy (entry_id bigint, account text, amount bigint, "
                       "currency char(3))")
        started = time.monotonic()
        with cursor.copy("COPY bench_copy FROM STDIN") as copy:
            for i in range(rows):
                copy.write_row((i // 3, f"merchant:mer_bench{i % 100}:pending:USD", 1000, "USD"))
        conn.commit()
        return rows / (time.monotonic() - started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--payments", type=int, default=20_000)
    parser.add_argument("--merchants", type=int, default=100)
    parser.add_argument("--pgbench-seconds", type=int, default=10)
    parser.add_argument("--timeout", type=float, default=600)
    args = parser.parse_args()
    stop_on_terminate()
    with sandbox("ledger") as box:
        result = measure(box.settings, args.payments, args.merchants, args.pgbench_seconds,
                         args.timeout)
    print(json.dumps(result, indent=2))


def measure(settings: Settings, payments: int = 20_000, merchants: int = 100,
            pgbench_seconds: int = 10, timeout_seconds: float = 600) -> dict[str, Any]:
    """Every figure of the ledger benchmark, on a sandbox's database and topic prefix
    (``bench.sandbox``: migrated, topics created, removed afterwards)."""
    assert 0 < payments <= MAX_PAYMENTS and 0 < merchants <= payments
    print(f"prefilling {payments} payments over {merchants} merchants ...")
    rows = _prefill_database(settings.database_url, payments, merchants)
    asyncio.run(_prefill_topic(settings, rows))
    print("applying with one ledger consumer ...")
    ledger = asyncio.run(_run_ledger(settings, len(rows), timeout_seconds))
    print(f"reference: pgbench {pgbench_seconds}s, then COPY ...")
    tps = _pgbench(settings.database_url, pgbench_seconds, clients=4)
    copy_rate = _copy_rate(settings.database_url, int(ledger["postings"]) or 3 * len(rows))
    payments_per_second = ledger["applied"] / ledger["seconds"]
    result = {
        "when": datetime.now(UTC).isoformat(), "machine": {
            "cores": os.cpu_count(), "python": platform.python_version()},
        "conditions": {"payments": len(rows), "merchants": merchants,
                       "currencies": 2, "decision": "approve + capture (3 postings each)",
                       "commits": "durable (synchronous_commit on)"},
        "ledger": {"payments_per_second": round(payments_per_second),
                   "postings_per_second": round(ledger["postings"] / ledger["seconds"]),
                   "cpu_ms_per_payment_in_consumer": round(
                       1000 * ledger["cpu_seconds"] / max(1, ledger["applied"]), 3),
                   **{k: round(v, 2) for k, v in ledger.items()}},
        "reference": {"pgbench_single_insert_tps_4_clients": tps,
                      "psycopg_copy_rows_per_second": round(copy_rate)},
    }
    return result


if __name__ == "__main__":
    main()
