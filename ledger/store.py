"""The ledger's PostgreSQL adapter: the only ledger code that speaks SQL.

Every function takes an open connection inside the caller's transaction, so one consumed batch
commits its apply-log rows, state changes and outbox events together or not at all.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from psycopg import AsyncConnection
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb
from pydantic import TypeAdapter

from ingest.contracts import AnyPublicEvent, PublicEvent, Transaction
from ledger.payments import Payment

_event_adapter: TypeAdapter[AnyPublicEvent] = TypeAdapter(PublicEvent)
_PAYMENT_COLUMNS = (
    "id, merchant_id, amount, currency::text AS currency, status, capture, captured_amount, "
    "refunded_amount, fraud_score, risk_level, fraud_flags, decline_code, processor_ref, version"
)


async def claim_message(conn: AsyncConnection[Any], message_id: str, topic: str) -> bool:
    """Record that ``message_id`` is being applied; False if it was applied before."""
    cursor = await conn.execute(
        "INSERT INTO processed_messages (message_id, topic) VALUES (%s, %s) "
        "ON CONFLICT DO NOTHING",
        (message_id, topic),
    )
    return cursor.rowcount == 1


async def load_payment_for_update(conn: AsyncConnection[Any], payment_id: str) -> Payment | None:
    async with conn.cursor(row_factory=dict_row) as cursor:
        await cursor.execute(
            f"SELECT {_PAYMENT_COLUMNS} FROM payments WHERE id = %s FOR UPDATE", (payment_id,)
        )
        row = await cursor.fetchone()
    if row is None:
        return None
    row["fraud_flags"] = tuple(row["fraud_flags"])
    return Payment(**row)


async def save_payment(conn: AsyncConnection[Any], before: Payment, after: Payment) -> None:
    """Write ``after`` over ``before``; fails loudly if someone else changed the row meanwhile."""
    assert after.id == before.id and after.version == before.version + 1
    cursor = await conn.execute(
        """UPDATE payments SET status = %s, captured_amount = %s, refunded_amount = %s,
                  fraud_score = %s, risk_level = %s, fraud_flags = %s, decline_code = %s,
                  processor_ref = %s, version = %s, updated_at = now()
           WHERE id = %s AND version = %s""",
        (
            after.status, after.captured_amount, after.refunded_amount, after.fraud_score,
            after.risk_level, Jsonb(list(after.fraud_flags)), after.decline_code,
            after.processor_ref, after.version, before.id, before.version,
        ),
    )
    if cursor.rowcount != 1:
        raise ConcurrentUpdate(f"payment {before.id} changed under version {before.version}")


class ConcurrentUpdate(RuntimeError):
    """The conditional update found another version: a second writer broke serialization."""


async def load_transaction(conn: AsyncConnection[Any], payment_id: str) -> Transaction:
    async with conn.cursor(row_factory=dict_row) as cursor:
        await cursor.execute("SELECT * FROM transactions WHERE id = %s", (payment_id,))
        row = await cursor.fetchone()
    assert row is not None, payment_id
    return Transaction.model_validate(row)


async def insert_events(
    conn: AsyncConnection[Any], topic: str, events: Sequence[AnyPublicEvent]
) -> None:
    """Add events to the outbox, in order; they are published to ``topic`` after the commit."""
    if not events:
        return
    async with conn.cursor() as cursor:
        await cursor.executemany(
            "INSERT INTO events (id, merchant_id, topic, subject, type, body) "
            "VALUES (%s, %s, %s, %s, %s, %s)",
            [
                (e.id, e.merchant_id, topic, e.subject, e.type, Jsonb(e.model_dump(mode="json")))
                for e in events
            ],
        )


async def unpublished_events(
    conn: AsyncConnection[Any], *, older_than_seconds: float, limit: int
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


async def mark_published(conn: AsyncConnection[Any], event_ids: list[str]) -> None:
    if event_ids:
        await conn.execute(
            "UPDATE events SET published_at = now() WHERE id = ANY(%s) AND published_at IS NULL",
            (event_ids,),
        )


async def claim_stale_requests(
    conn: AsyncConnection[Any], *, older_than_seconds: float, limit: int
) -> list[tuple[str, dict[str, Any]]]:
    """Pending payments whose request was sent long ago (or never reached Kafka), as
    (merchant id, request) pairs, stamped as sent now so that one sweeper takes each."""
    cursor = await conn.execute(
        """UPDATE payments SET request_sent_at = now()
           WHERE id IN (SELECT id FROM payments
                        WHERE status = 'pending'
                          AND request_sent_at < now() - make_interval(secs => %s)
                        ORDER BY request_sent_at LIMIT %s
                        FOR UPDATE SKIP LOCKED)
           RETURNING merchant_id, request""",
        (older_than_seconds, limit),
    )
    return [(merchant_id, request) for merchant_id, request in await cursor.fetchall()]
