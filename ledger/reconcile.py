"""Reconciliation: every invariant of the ledger checked against the data, each check a plain
function returning the list of problems it found (empty when everything ties), as beancount's
validations do. ``payflow reconcile`` runs them all, prints every problem (not just the first),
records the run, and exits non-zero if any was found.
"""

from __future__ import annotations

import json
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition
from psycopg import AsyncConnection
from psycopg.types.json import Jsonb

from ingest.topics import PAYMENT_EVENTS
from payflow.settings import Settings

Conn = AsyncConnection[Any]
Check = Callable[[Conn], Awaitable[list[str]]]


async def _rows(conn: Conn, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    cursor = await conn.execute(sql, params)
    return list(await cursor.fetchall())


async def trial_balance(conn: Conn) -> list[str]:
    """All postings sum to zero per currency."""
    rows = await _rows(conn, "SELECT currency, sum(amount) FROM postings GROUP BY currency "
                             "HAVING sum(amount) <> 0")
    return [f"trial balance for {c} is {total}, not 0" for c, total in rows]


async def entries_balance(conn: Conn) -> list[str]:
    """Every journal entry sums to zero and has at least two postings."""
    rows = await _rows(conn, "SELECT entry_id, sum(amount), count(*) FROM postings "
                             "GROUP BY entry_id HAVING sum(amount) <> 0 OR count(*) < 2")
    return [f"journal entry {e} sums to {s} over {n} postings" for e, s, n in rows]


async def account_balances(conn: Conn) -> list[str]:
    """Each account's posted debits and credits equal the sums of its postings."""
    rows = await _rows(conn, """
        SELECT a.name, a.posted_debits, a.posted_credits,
               coalesce(sum(p.amount) FILTER (WHERE p.amount > 0), 0),
               coalesce(-sum(p.amount) FILTER (WHERE p.amount < 0), 0)
        FROM accounts a LEFT JOIN postings p ON p.account = a.name
        GROUP BY a.name
        HAVING a.posted_debits <> coalesce(sum(p.amount) FILTER (WHERE p.amount > 0), 0)
            OR a.posted_credits <> coalesce(-sum(p.amount) FILTER (WHERE p.amount < 0), 0)""")
    return [f"account {name}: balance says debits {d}/credits {c}, postings say {pd}/{pc}"
            for name, d, c, pd, pc in rows]


async def non_negative_accounts(conn: Conn) -> list[str]:
    """Accounts constrained to their normal side are not negative."""
    rows = await _rows(conn, """
        SELECT name, CASE normal WHEN 'debit' THEN posted_debits - posted_credits
                                 ELSE posted_credits - posted_debits END AS balance
        FROM accounts WHERE non_negative AND
             CASE normal WHEN 'debit' THEN posted_debits - posted_credits
                         ELSE posted_credits - posted_debits END < 0""")
    return [f"account {name} is negative: {balance}" for name, balance in rows]


async def payments_match_postings(conn: Conn) -> list[str]:
    """Each payment's captured, refunded, disputed and fee amounts equal its postings."""
    rows = await _rows(conn, """
        WITH legs AS (
            SELECT e.payment_id,
                   sum(p.amount) FILTER (WHERE e.kind = 'capture'
                                          AND p.account LIKE 'platform:card_clearing:%%')
                       AS captured,
                   -sum(p.amount) FILTER (WHERE e.kind = 'refund'
                                           AND p.account LIKE 'platform:refunds:%%') AS refunded,
                   -sum(p.amount) FILTER (WHERE e.kind = 'dispute'
                                           AND p.account LIKE 'platform:chargebacks:%%')
                       AS disputed,
                   -sum(p.amount) FILTER (WHERE p.account LIKE 'platform:fee_revenue:%%') AS fee
            FROM journal_entries e JOIN postings p ON p.entry_id = e.id
            WHERE e.payment_id IS NOT NULL GROUP BY e.payment_id)
        SELECT py.id, py.captured_amount, coalesce(l.captured, 0), py.refunded_amount,
               coalesce(l.refunded, 0), py.disputed_amount, coalesce(l.disputed, 0),
               py.fee_amount - py.fee_returned, coalesce(l.fee, 0)
        FROM payments py LEFT JOIN legs l ON l.payment_id = py.id
        WHERE py.captured_amount <> coalesce(l.captured, 0)
           OR py.refunded_amount <> coalesce(l.refunded, 0)
           OR py.disputed_amount <> coalesce(l.disputed, 0)
           OR py.fee_amount - py.fee_returned <> coalesce(l.fee, 0)""")
    return [f"payment {pid}: captured {c}/postings {pc}, refunded {r}/postings {pr}, "
            f"disputed {d}/postings {pd}, net fee {f}/postings {pf}"
            for pid, c, pc, r, pr, d, pd, f, pf in rows]


async def refunds_match_payments(conn: Conn) -> list[str]:
    """A payment's refund records add up to its refunded amount."""
    rows = await _rows(conn, """
        SELECT p.id, p.refunded_amount, coalesce(sum(r.amount), 0)
        FROM payments p LEFT JOIN refunds r ON r.payment_id = p.id
        GROUP BY p.id HAVING p.refunded_amount <> coalesce(sum(r.amount), 0)""")
    return [f"payment {pid}: refunded {a} but its refunds add up to {s}" for pid, a, s in rows]


async def holds_match_pending_balances(conn: Conn) -> list[str]:
    """Open authorization holds add up to the accounts' pending balances."""
    rows = await _rows(conn, """
        WITH open AS (
            SELECT debit AS name, sum(amount) AS debits, 0::numeric AS credits FROM holds
            WHERE status = 'pending' GROUP BY debit
            UNION ALL
            SELECT credit, 0, sum(amount) FROM holds WHERE status = 'pending' GROUP BY credit),
        per AS (SELECT name, sum(debits) AS debits, sum(credits) AS credits FROM open
                GROUP BY name)
        SELECT a.name, a.pending_debits, a.pending_credits, coalesce(per.debits, 0),
               coalesce(per.credits, 0)
        FROM accounts a LEFT JOIN per ON per.name = a.name
        WHERE a.pending_debits <> coalesce(per.debits, 0)
           OR a.pending_credits <> coalesce(per.credits, 0)""")
    return [f"account {n}: pending {d}/{c} but open holds {hd}/{hc}"
            for n, d, c, hd, hc in rows]


DATABASE_CHECKS: tuple[Check, ...] = (
    trial_balance, entries_balance, account_balances, non_negative_accounts,
    payments_match_postings, refunds_match_payments, holds_match_pending_balances,
)


async def events_match_kafka(conn: Conn, settings: Settings, timeout_seconds: float = 30.0
                             ) -> list[str]:
    """Every published payment event is on ``payments.events`` and every event there has its
    outbox row (for the part of the topic Kafka still retains).

    A running ledger publishes while this reads: it marks an event published (``now()`` of a
    transaction begun after Kafka acknowledged it) once Kafka has it. So only events marked
    before the topic's end offsets are taken are judged; one marked while the topic was read
    was reported missing from it (seen in the ledger-crash test, whose restarted ledger was
    still publishing)."""
    (read_from,) = (await _rows(conn, "SELECT clock_timestamp()", ()))[0]
    in_kafka, retained_since = await _kafka_event_ids(settings, timeout_seconds)
    rows = await _rows(conn, "SELECT id FROM events WHERE topic = %s AND published_at IS NOT "
                             "NULL AND published_at < %s AND created_at >= %s",
                       (PAYMENT_EVENTS.name, read_from, retained_since))
    in_db = {event_id for (event_id,) in rows}
    problems = [f"event {e} is published in the database but not on {PAYMENT_EVENTS.name}"
                for e in sorted(in_db - in_kafka)]
    known = {e for (e,) in await _rows(conn, "SELECT id FROM events WHERE id = ANY(%s)",
                                       (list(in_kafka - in_db),))}
    problems += [f"event {e} on {PAYMENT_EVENTS.name} has no row in the ledger's outbox"
                 for e in sorted(in_kafka - in_db - known)]
    return problems


async def _kafka_event_ids(settings: Settings, timeout_seconds: float
                           ) -> tuple[set[str], datetime]:
    topic = PAYMENT_EVENTS.name_for(settings.topic_prefix)
    consumer = AIOKafkaConsumer(bootstrap_servers=settings.kafka_bootstrap,
                                enable_auto_commit=False)
    await consumer.start()
    try:
        parts = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic) or ()]
        if not parts:
            await consumer._client.force_metadata_update()
            parts = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic) or ()]
        consumer.assign(parts)
        await consumer.seek_to_beginning(*parts)
        ends = await consumer.end_offsets(parts)
        beginnings = await consumer.beginning_offsets(parts)
        ids: set[str] = set()
        retained_since = datetime.fromtimestamp(0, UTC)
        deadline = time.monotonic() + timeout_seconds
        remaining = {tp for tp in parts if ends[tp] > beginnings[tp]}
        while remaining and time.monotonic() < deadline:
            for tp, records in (await consumer.getmany(timeout_ms=500)).items():
                for record in records:
                    ids.add(json.loads(record.value)["id"])
                    if beginnings[tp] > 0 and record.offset == beginnings[tp]:
                        first = datetime.fromtimestamp(record.timestamp / 1000, UTC)
                        retained_since = max(retained_since, first)
                    if record.offset + 1 >= ends[tp]:
                        remaining.discard(tp)
        return ids, retained_since
    finally:
        await consumer.stop()


@dataclass(frozen=True)
class Report:
    checks: int
    problems: list[str]

    @property
    def ok(self) -> bool:
        return not self.problems


async def reconcile(conn: Conn, settings: Settings, *, with_kafka: bool = True) -> Report:
    started = datetime.now(UTC)
    problems: list[str] = []
    checks: list[Check] = list(DATABASE_CHECKS)
    for check in checks:
        problems += await check(conn)
    if with_kafka:
        problems += await events_match_kafka(conn, settings)
    report = Report(len(checks) + int(with_kafka), problems)
    await conn.execute(
        "INSERT INTO reconciliation_runs (started_at, ok, checks, problems) "
        "VALUES (%s, %s, %s, %s)",
        (started, report.ok, report.checks, Jsonb(problems[:1000])),
    )
    return report
