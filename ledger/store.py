"""The ledger's PostgreSQL adapter: the only ledger code that speaks SQL.

Every function takes an open connection inside the caller's transaction, so one consumed batch
commits its apply-log rows, state changes, journal entries, balances and outbox events together
or not at all.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from psycopg import AsyncConnection
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb
from pydantic import TypeAdapter

from ingest.contracts import AnyPublicEvent, PublicEvent, Transaction
from ledger.accounts import Account
from ledger.balances import BalanceChanges
from ledger.fees import Pricing, default_pricing
from ledger.payments import NewDispute, NewRefund, Payment
from ledger.postings import Hold, JournalEntry

Conn = AsyncConnection[Any]
_event_adapter: TypeAdapter[AnyPublicEvent] = TypeAdapter(PublicEvent)
_PAYMENT_COLUMNS = (
    "id, merchant_id, amount, currency::text AS currency, status, capture, method_type, "
    "card_fingerprint, captured_amount, refunded_amount, disputed_amount, fee_amount, "
    "fee_returned, fraud_score, risk_level, fraud_flags, decline_code, processor_ref, version"
)


class ConcurrentUpdate(RuntimeError):
    """The conditional update found another version: a second writer broke serialization."""


async def claim_message(conn: Conn, message_id: str, topic: str) -> bool:
    """Record that ``message_id`` is being applied; False if it was applied before."""
    cursor = await conn.execute(
        "INSERT INTO processed_messages (message_id, topic) VALUES (%s, %s) "
        "ON CONFLICT DO NOTHING",
        (message_id, topic),
    )
    return cursor.rowcount == 1


# --- payments -------------------------------------------------------------------------------


async def load_payment_for_update(conn: Conn, payment_id: str) -> Payment | None:
    async with conn.cursor(row_factory=dict_row) as cursor:
        await cursor.execute(
            f"SELECT {_PAYMENT_COLUMNS} FROM payments WHERE id = %s FOR UPDATE", (payment_id,)
        )
        row = await cursor.fetchone()
    if row is None:
        return None
    row["fraud_flags"] = tuple(row["fraud_flags"])
    return Payment(**row)


async def save_payment(conn: Conn, before: Payment, after: Payment, *,
                       clears_at: datetime | None = None,
                       auto_dispute_at: datetime | None = None) -> None:
    """Write ``after`` over ``before``; fails loudly if someone else changed the row meanwhile."""
    assert after.id == before.id and after.version == before.version + 1
    cursor = await conn.execute(
        """UPDATE payments SET status = %s, captured_amount = %s, refunded_amount = %s,
                  disputed_amount = %s, fee_amount = %s, fee_returned = %s, fraud_score = %s,
                  risk_level = %s, fraud_flags = %s, decline_code = %s, processor_ref = %s,
                  version = %s, updated_at = now(),
                  clears_at = CASE WHEN %s::text = 'pending' THEN coalesce(%s, clears_at) END,
                  auto_dispute_at = CASE WHEN %s = 0 THEN coalesce(%s, auto_dispute_at) END
           WHERE id = %s AND version = %s""",
        (
            after.status, after.captured_amount, after.refunded_amount, after.disputed_amount,
            after.fee_amount, after.fee_returned, after.fraud_score, after.risk_level,
            Jsonb(list(after.fraud_flags)), after.decline_code, after.processor_ref,
            after.version, after.status, clears_at, after.disputed_amount, auto_dispute_at,
            before.id, before.version,
        ),
    )
    if cursor.rowcount != 1:
        raise ConcurrentUpdate(f"payment {before.id} changed under version {before.version}")


async def find_transaction(conn: Conn, payment_id: str) -> Transaction | None:
    async with conn.cursor(row_factory=dict_row) as cursor:
        await cursor.execute("SELECT * FROM transactions WHERE id = %s", (payment_id,))
        row = await cursor.fetchone()
    return Transaction.model_validate(row) if row else None


async def load_transaction(conn: Conn, payment_id: str) -> Transaction:
    transaction = await find_transaction(conn, payment_id)
    assert transaction is not None, payment_id
    return transaction


async def payment_created_at(conn: Conn, payment_id: str) -> datetime:
    cursor = await conn.execute("SELECT created_at FROM payments WHERE id = %s", (payment_id,))
    row = await cursor.fetchone()
    assert row is not None
    created: datetime = row[0]
    return created


async def load_pricing(conn: Conn, merchant_id: str, currency: str) -> Pricing:
    cursor = await conn.execute(
        "SELECT percent_bps, fixed_minor FROM merchant_pricing "
        "WHERE merchant_id = %s AND currency = %s",
        (merchant_id, currency),
    )
    row = await cursor.fetchone()
    return Pricing(row[0], row[1]) if row else default_pricing(currency)


# --- holds ----------------------------------------------------------------------------------


async def load_hold(conn: Conn, payment_id: str) -> Hold | None:
    cursor = await conn.execute(
        "SELECT debit, credit, amount, status, posted_amount FROM holds WHERE payment_id = %s",
        (payment_id,),
    )
    row = await cursor.fetchone()
    if row is None:
        return None
    return Hold(payment_id, Account.parse(row[0]), Account.parse(row[1]), row[2], row[3], row[4])


async def save_hold(conn: Conn, hold: Hold, *, is_new: bool) -> None:
    await ensure_accounts(conn, [hold.debit, hold.credit])
    if is_new:
        await conn.execute(
            """INSERT INTO holds (payment_id, debit, credit, amount, currency, status,
                                  posted_amount, resolved_at)
               VALUES (%s, %s, %s, %s, %s, %s, %s,
                       CASE WHEN %s = 'pending' THEN NULL ELSE now() END)""",
            (hold.payment_id, hold.debit.name, hold.credit.name, hold.amount,
             hold.debit.currency, hold.status, hold.posted_amount, hold.status),
        )
        return
    await conn.execute(
        "UPDATE holds SET status = %s, posted_amount = %s, resolved_at = now() "
        "WHERE payment_id = %s",
        (hold.status, hold.posted_amount, hold.payment_id),
    )


# --- journal and balances -------------------------------------------------------------------


async def ensure_accounts(conn: Conn, accounts: Sequence[Account]) -> None:
    if not accounts:
        return
    async with conn.cursor() as cursor:
        await cursor.executemany(
            "INSERT INTO accounts (name, owner, kind, currency, normal, non_negative) "
            "VALUES (%s, %s, %s, %s, %s, %s) ON CONFLICT DO NOTHING",
            [(a.name, a.owner, a.kind.value, a.currency, a.normal, a.non_negative)
             for a in sorted(set(accounts))],
        )


async def insert_entries(conn: Conn, message_id: str, entries: Sequence[JournalEntry]) -> None:
    """Write journal entries and their postings (balanced: the database checks at commit)."""
    if not entries:
        return
    await ensure_accounts(conn, [p.account for e in entries for p in e.postings])
    for entry in entries:
        cursor = await conn.execute(
            "INSERT INTO journal_entries (message_id, kind, currency, payment_id, settles_on) "
            "VALUES (%s, %s, %s, %s, %s) RETURNING id",
            (message_id, entry.kind, entry.currency, entry.payment_id, entry.settles_on),
        )
        row = await cursor.fetchone()
        assert row is not None
        async with conn.cursor() as postings:
            await postings.executemany(
                "INSERT INTO postings (entry_id, account, amount, currency) "
                "VALUES (%s, %s, %s, %s)",
                [(row[0], p.account.name, p.amount, entry.currency) for p in entry.postings],
            )


async def apply_balances(conn: Conn, changes: BalanceChanges) -> None:
    """Update each account once, in name order (no deadlocks between concurrent batches)."""
    items = changes.sorted_items()
    if not items:
        return
    await ensure_accounts(conn, [account for account, _ in items])
    async with conn.cursor() as cursor:
        await cursor.executemany(
            """UPDATE accounts SET posted_debits = posted_debits + %s,
                      posted_credits = posted_credits + %s,
                      pending_debits = pending_debits + %s,
                      pending_credits = pending_credits + %s
               WHERE name = %s""",
            [(d.posted_debits, d.posted_credits, d.pending_debits, d.pending_credits,
              account.name) for account, d in items],
        )


# --- refunds, disputes, labels, audit -------------------------------------------------------


async def insert_refund(conn: Conn, payment: Payment, refund: NewRefund) -> datetime:
    cursor = await conn.execute(
        "INSERT INTO refunds (id, payment_id, merchant_id, amount, currency, reason) "
        "VALUES (%s, %s, %s, %s, %s, %s) RETURNING created_at",
        (refund.id, payment.id, payment.merchant_id, refund.amount, payment.currency,
         refund.reason),
    )
    row = await cursor.fetchone()
    assert row is not None
    created: datetime = row[0]
    return created


async def insert_dispute(conn: Conn, payment: Payment, dispute: NewDispute) -> datetime:
    cursor = await conn.execute(
        "INSERT INTO disputes (id, payment_id, merchant_id, amount, currency, reason) "
        "VALUES (%s, %s, %s, %s, %s, %s) RETURNING created_at",
        (dispute.id, payment.id, payment.merchant_id, dispute.amount, payment.currency,
         dispute.reason),
    )
    await conn.execute(
        "INSERT INTO fraud_labels (payment_id, is_fraud, source) VALUES (%s, true, 'dispute') "
        "ON CONFLICT (payment_id) DO UPDATE SET is_fraud = true, labelled_at = now()",
        (payment.id,),
    )
    row = await cursor.fetchone()
    assert row is not None
    created: datetime = row[0]
    return created


async def insert_audit(conn: Conn, rows: Sequence[tuple[str, str, str, str, str, dict[str, Any]]]
                       ) -> None:
    """Audit rows: (actor, merchant id, entity type, entity id, action, change)."""
    if not rows:
        return
    async with conn.cursor() as cursor:
        await cursor.executemany(
            "INSERT INTO audit_log (actor, merchant_id, entity_type, entity_id, action, change) "
            "VALUES (%s, %s, %s, %s, %s, %s)",
            [(a, m, t, i, action, Jsonb(change)) for a, m, t, i, action, change in rows],
        )


# --- outbox ---------------------------------------------------------------------------------


async def insert_events(conn: Conn, topic: str, events: Sequence[AnyPublicEvent]) -> None:
    """Add events to the outbox, in order; they are published to ``topic`` after the commit."""
    if not events:
        return
    async with conn.cursor() as cursor:
        await cursor.executemany(
            "INSERT INTO events (id, merchant_id, topic, subject, type, body) "
            "VALUES (%s, %s, %s, %s, %s, %s)",
            [(e.id, e.merchant_id, topic, e.subject, e.type, Jsonb(e.model_dump(mode="json")))
             for e in events],
        )


async def unpublished_events(
    conn: Conn, *, older_than_seconds: float, limit: int
) -> list[tuple[str, AnyPublicEvent]]:
    """(topic, event) pairs a crash left unpublished, oldest first."""
    cursor = await conn.execute(
        """SELECT topic, body FROM events
           WHERE published_at IS NULL AND created_at < now() - make_interval(secs => %s)
           ORDER BY seq LIMIT %s""",
        (older_than_seconds, limit),
    )
    return [(topic, _event_adapter.validate_python(body))
            for topic, body in await cursor.fetchall()]


async def mark_published(conn: Conn, event_ids: list[str]) -> None:
    if event_ids:
        await conn.execute(
            "UPDATE events SET published_at = now() WHERE id = ANY(%s) AND published_at IS NULL",
            (event_ids,),
        )


# --- sweeps ---------------------------------------------------------------------------------


async def claim_stale_requests(
    conn: Conn, *, older_than_seconds: float, limit: int
) -> list[tuple[str, dict[str, Any]]]:
    """Pending payments whose request was sent long ago (or never reached Kafka), as
    (merchant id, request) pairs, stamped as sent now so that one sweeper takes each."""
    cursor = await conn.execute(
        """UPDATE payments SET request_sent_at = now()
           WHERE id IN (SELECT id FROM payments
                        WHERE status = 'pending' AND fraud_score IS NULL
                          AND request_sent_at < now() - make_interval(secs => %s)
                        ORDER BY request_sent_at LIMIT %s
                        FOR UPDATE SKIP LOCKED)
           RETURNING merchant_id, request""",
        (older_than_seconds, limit),
    )
    return [(merchant_id, request) for merchant_id, request in await cursor.fetchall()]


async def claim_due(conn: Conn, column: str, limit: int) -> list[tuple[str, str]]:
    """(merchant id, payment id) of payments whose ``clears_at`` or ``auto_dispute_at`` is due;
    the time is cleared so each is claimed once (its command goes through Kafka)."""
    assert column in {"clears_at", "auto_dispute_at"}
    cursor = await conn.execute(
        f"""UPDATE payments SET {column} = NULL
            WHERE id IN (SELECT id FROM payments WHERE {column} <= now()
                         ORDER BY {column} LIMIT %s FOR UPDATE SKIP LOCKED)
            RETURNING merchant_id, id""",
        (limit,),
    )
    return [(merchant_id, payment_id) for merchant_id, payment_id in await cursor.fetchall()]
