"""The ledger's PostgreSQL adapter: the only ledger code that speaks SQL.

Every function takes an open connection inside the caller's transaction, so one consumed batch
commits its apply-log rows, state changes, journal entries, balances and outbox events together
or not at all.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from psycopg import AsyncConnection
from psycopg.rows import dict_row

from ingest.contracts import Refund
from ledger.accounts import Account
from ledger.balances import BalanceChanges
from ledger.batch import BatchWrites, LoadedPayment, OutboxEvent
from ledger.fees import Pricing, default_pricing
from ledger.payments import Payment
from ledger.postings import Hold, JournalEntry

Conn = AsyncConnection[Any]
_DETAIL_COLUMNS = ("payment_method", "description", "customer", "metadata", "created_at")
_PAYMENT_COLUMNS = (
    "id, merchant_id, amount, currency::text AS currency, status, capture, method_type, "
    "card_fingerprint, captured_amount, refunded_amount, disputed_amount, fee_amount, "
    "fee_returned, fraud_score, risk_level, fraud_flags, decline_code, processor_ref, version"
)


class ConcurrentUpdate(RuntimeError):
    """The conditional update found another version: a second writer broke serialization."""


async def claim_messages(conn: Conn, messages: Sequence[tuple[str, str]]) -> set[str]:
    """Record (message id, topic) pairs as applied; return the ids not applied before."""
    if not messages:
        return set()
    cursor = await conn.execute(
        """INSERT INTO processed_messages (message_id, topic)
           SELECT * FROM unnest(%s::text[], %s::text[]) ON CONFLICT DO NOTHING
           RETURNING message_id""",
        ([m for m, _ in messages], [t for _, t in messages]),
    )
    return {message_id for (message_id,) in await cursor.fetchall()}


async def lock_payments(conn: Conn, payment_ids: Sequence[str]) -> dict[str, LoadedPayment]:
    """Lock the payments (in id order, so concurrent batches cannot deadlock) and load their
    holds and refunds."""
    if not payment_ids:
        return {}
    async with conn.cursor(row_factory=dict_row) as cursor:
        await cursor.execute(
            f"SELECT {_PAYMENT_COLUMNS}, payment_method, description, customer, metadata, "
            "created_at, updated_at FROM payments WHERE id = ANY(%s) ORDER BY id FOR UPDATE",
            (list(payment_ids),),
        )
        rows = await cursor.fetchall()
    holds = await _load_holds(conn, payment_ids)
    refunds = await _load_refunds(conn, payment_ids)
    loaded = {}
    for row in rows:
        details = {key: row.pop(key) for key in _DETAIL_COLUMNS}
        updated_at = row.pop("updated_at")
        row["fraud_flags"] = tuple(row["fraud_flags"])
        payment = Payment(**row)
        hold = holds.get(payment.id)
        loaded[payment.id] = LoadedPayment(payment, payment.version, details,
                                           refunds.get(payment.id, []), hold, hold is not None,
                                           updated_at)
    return loaded


async def _load_holds(conn: Conn, payment_ids: Sequence[str]) -> dict[str, Hold]:
    cursor = await conn.execute(
        "SELECT payment_id, debit, credit, amount, status, posted_amount FROM holds "
        "WHERE payment_id = ANY(%s)", (list(payment_ids),))
    return {pid: Hold(pid, Account.parse(debit), Account.parse(credit), amount, status, posted)
            for pid, debit, credit, amount, status, posted in await cursor.fetchall()}


async def _load_refunds(conn: Conn, payment_ids: Sequence[str]) -> dict[str, list[Refund]]:
    cursor = await conn.execute(
        "SELECT payment_id, id, amount, reason, created_at FROM refunds "
        "WHERE payment_id = ANY(%s) ORDER BY created_at, id", (list(payment_ids),))
    found: dict[str, list[Refund]] = {}
    for pid, refund_id, amount, reason, created_at in await cursor.fetchall():
        found.setdefault(pid, []).append(
            Refund(id=refund_id, amount=amount, reason=reason, created_at=created_at))
    return found


async def load_pricings(conn: Conn, pairs: Sequence[tuple[str, str]]
                        ) -> dict[tuple[str, str], Pricing]:
    """Each (merchant, currency)'s price: its own row, else the default."""
    cursor = await conn.execute(
        "SELECT merchant_id, currency::text, percent_bps, fixed_minor FROM merchant_pricing "
        "WHERE merchant_id = ANY(%s)", (list({m for m, _ in pairs}),))
    own = {(m, c): Pricing(bps, fixed) for m, c, bps, fixed in await cursor.fetchall()}
    return {pair: own.get(pair, default_pricing(pair[1])) for pair in pairs}


# --- the batch's writes ---------------------------------------------------------------------


async def write_batch(conn: Conn, writes: BatchWrites) -> None:
    """Everything a batch produced, in a few set-based statements."""
    await _update_payments(conn, list(writes.payments.values()))
    await _write_holds(conn, writes)
    await insert_entries(conn, writes.entries)
    await _insert_refunds_and_disputes(conn, writes)
    await insert_events(conn, writes.events)
    await insert_audit(conn, writes.audit)
    await apply_balances(conn, writes.balances)


async def _update_payments(conn: Conn, changed: list[LoadedPayment]) -> None:
    if not changed:
        return
    columns: dict[str, list[Any]] = {name: [] for name in (
        "id", "loaded", "status", "captured", "refunded", "disputed", "fee", "fee_returned",
        "score", "risk", "flags", "decline", "ref", "version", "updated", "clears", "dispute_at")}
    for item in changed:
        p = item.payment
        for name, value in (
            ("id", p.id), ("loaded", item.loaded_version), ("status", p.status),
            ("captured", p.captured_amount), ("refunded", p.refunded_amount),
            ("disputed", p.disputed_amount), ("fee", p.fee_amount),
            ("fee_returned", p.fee_returned), ("score", p.fraud_score), ("risk", p.risk_level),
            ("flags", json.dumps(list(p.fraud_flags))), ("decline", p.decline_code),
            ("ref", p.processor_ref), ("version", p.version), ("updated", item.updated_at),
            ("clears", item.clears_at), ("dispute_at", item.auto_dispute_at),
        ):
            columns[name].append(value)
    cursor = await conn.execute(
        """UPDATE payments p SET status = v.status, captured_amount = v.captured,
                  refunded_amount = v.refunded, disputed_amount = v.disputed,
                  fee_amount = v.fee, fee_returned = v.fee_returned, fraud_score = v.score,
                  risk_level = v.risk, fraud_flags = v.flags::jsonb, decline_code = v.decline,
                  processor_ref = v.ref, version = v.version, updated_at = v.updated,
                  clears_at = CASE WHEN v.status = 'pending' THEN coalesce(v.clears, p.clears_at)
                              END,
                  auto_dispute_at = CASE WHEN v.disputed = 0
                                         THEN coalesce(v.dispute_at, p.auto_dispute_at) END
           FROM unnest(%s::text[], %s::int[], %s::text[], %s::bigint[], %s::bigint[],
                       %s::bigint[], %s::bigint[], %s::bigint[], %s::smallint[], %s::text[],
                       %s::text[], %s::text[], %s::text[], %s::int[], %s::timestamptz[],
                       %s::timestamptz[], %s::timestamptz[])
                AS v(id, loaded, status, captured, refunded, disputed, fee, fee_returned, score,
                     risk, flags, decline, ref, version, updated, clears, dispute_at)
           WHERE p.id = v.id AND p.version = v.loaded""",
        list(columns.values()),
    )
    if cursor.rowcount != len(changed):
        raise ConcurrentUpdate(f"{len(changed) - cursor.rowcount} payments changed under the "
                               "versions this batch read")


async def _write_holds(conn: Conn, writes: BatchWrites) -> None:
    holds = [*writes.new_holds.values(), *writes.resolved_holds.values()]
    await ensure_accounts(conn, [a for h in holds for a in (h.debit, h.credit)])
    if new := list(writes.new_holds.values()):
        await conn.execute(
            """INSERT INTO holds (payment_id, debit, credit, amount, currency, status,
                                  posted_amount, resolved_at)
               SELECT h.*, CASE WHEN h.status = 'pending' THEN NULL ELSE now() END
               FROM unnest(%s::text[], %s::text[], %s::text[], %s::bigint[], %s::text[],
                           %s::text[], %s::bigint[])
                    AS h(payment_id, debit, credit, amount, currency, status, posted_amount)""",
            ([h.payment_id for h in new], [h.debit.name for h in new],
             [h.credit.name for h in new], [h.amount for h in new],
             [h.debit.currency for h in new], [h.status for h in new],
             [h.posted_amount for h in new]),
        )
    if resolved := list(writes.resolved_holds.values()):
        await conn.execute(
            """UPDATE holds SET status = r.status, posted_amount = r.posted, resolved_at = now()
               FROM unnest(%s::text[], %s::text[], %s::bigint[]) AS r(payment_id, status, posted)
               WHERE holds.payment_id = r.payment_id""",
            ([h.payment_id for h in resolved], [h.status for h in resolved],
             [h.posted_amount for h in resolved]),
        )


async def _insert_refunds_and_disputes(conn: Conn, writes: BatchWrites) -> None:
    async with conn.cursor() as cursor:
        if writes.refunds:
            await cursor.executemany(
                "INSERT INTO refunds (id, payment_id, merchant_id, amount, currency, reason, "
                "created_at) VALUES (%s, %s, %s, %s, %s, %s, %s)",
                [(r.id, p.payment.id, p.payment.merchant_id, r.amount, p.payment.currency,
                  r.reason, at) for p, r, at in writes.refunds])
        if writes.disputes:
            await cursor.executemany(
                "INSERT INTO disputes (id, payment_id, merchant_id, amount, currency, reason, "
                "created_at) VALUES (%s, %s, %s, %s, %s, %s, %s)",
                [(d.id, p.payment.id, p.payment.merchant_id, d.amount, p.payment.currency,
                  d.reason, at) for p, d, at in writes.disputes])
            await cursor.executemany(
                "INSERT INTO fraud_labels (payment_id, is_fraud, source) "
                "VALUES (%s, true, 'dispute') ON CONFLICT (payment_id) DO UPDATE "
                "SET is_fraud = true, labelled_at = now()",
                [(p.payment.id,) for p, _, _ in writes.disputes])


# --- journal and balances -------------------------------------------------------------------


async def ensure_accounts(conn: Conn, accounts: Sequence[Account]) -> None:
    unique = sorted(set(accounts))
    if not unique:
        return
    await conn.execute(
        """INSERT INTO accounts (name, owner, kind, currency, normal, non_negative)
           SELECT * FROM unnest(%s::text[], %s::text[], %s::text[], %s::text[], %s::text[],
                                %s::boolean[])
           ON CONFLICT DO NOTHING""",
        ([a.name for a in unique], [a.owner for a in unique], [a.kind.value for a in unique],
         [a.currency for a in unique], [a.normal for a in unique],
         [a.non_negative for a in unique]),
    )


async def insert_entries(conn: Conn, entries: Sequence[tuple[str, JournalEntry]]) -> None:
    """Write (message id, entry) pairs: entries, then all their postings in one statement (the
    database checks, per statement, that every entry's postings balance)."""
    if not entries:
        return
    await ensure_accounts(conn, [p.account for _, e in entries for p in e.postings])
    cursor = await conn.execute(
        "SELECT nextval('journal_entries_id_seq') FROM generate_series(1, %s)", (len(entries),))
    ids = [entry_id for (entry_id,) in await cursor.fetchall()]
    async with conn.cursor() as copy_cursor:
        async with copy_cursor.copy(
            "COPY journal_entries (id, message_id, kind, currency, payment_id, settles_on) "
            "FROM STDIN"
        ) as copy:
            for entry_id, (message_id, entry) in zip(ids, entries, strict=True):
                await copy.write_row((entry_id, message_id, entry.kind, entry.currency,
                                      entry.payment_id, entry.settles_on))
        async with copy_cursor.copy(
            "COPY postings (entry_id, account, amount, currency) FROM STDIN"
        ) as copy:
            for entry_id, (_, entry) in zip(ids, entries, strict=True):
                for posting in entry.postings:
                    await copy.write_row((entry_id, posting.account.name, posting.amount,
                                          entry.currency))


async def apply_balances(conn: Conn, changes: BalanceChanges) -> None:
    """Lock the touched accounts in name order (no deadlocks between concurrent batches), then
    update each once with the batch's netted changes.

    The lock is ``FOR NO KEY UPDATE``, the one the balance update takes anyway: it excludes
    other balance updates but not the foreign-key share locks that another batch's postings
    and holds hold on the same accounts until it commits. ``FOR UPDATE`` waited for those, and
    two ledger consumers, each holding its postings' locks, waited for each other until
    PostgreSQL aborted one (a deadlock a second later, every few batches)."""
    items = changes.sorted_items()
    if not items:
        return
    await ensure_accounts(conn, [account for account, _ in items])
    names = [account.name for account, _ in items]
    await conn.execute(
        "SELECT name FROM accounts WHERE name = ANY(%s) ORDER BY name FOR NO KEY UPDATE",
        (names,))
    await conn.execute(
        """UPDATE accounts a SET posted_debits = a.posted_debits + d.pd,
                  posted_credits = a.posted_credits + d.pc,
                  pending_debits = a.pending_debits + d.nd,
                  pending_credits = a.pending_credits + d.nc
           FROM unnest(%s::text[], %s::bigint[], %s::bigint[], %s::bigint[], %s::bigint[])
                AS d(name, pd, pc, nd, nc)
           WHERE a.name = d.name""",
        (names, [d.posted_debits for _, d in items], [d.posted_credits for _, d in items],
         [d.pending_debits for _, d in items], [d.pending_credits for _, d in items]),
    )


# --- audit and outbox -----------------------------------------------------------------------


async def insert_audit(conn: Conn, rows: Sequence[tuple[str, str, str, str, str, dict[str, Any]]]
                       ) -> None:
    """Audit rows: (actor, merchant id, entity type, entity id, action, change)."""
    if not rows:
        return
    async with conn.cursor() as cursor, cursor.copy(
        "COPY audit_log (actor, merchant_id, entity_type, entity_id, action, change) FROM STDIN"
    ) as copy:
        for actor, merchant_id, entity_type, entity_id, action, change in rows:
            await copy.write_row((actor, merchant_id, entity_type, entity_id, action,
                                  json.dumps(change)))


async def insert_events(conn: Conn, events: Sequence[OutboxEvent]) -> None:
    """Add events to the outbox, in order; they are published after the commit."""
    if not events:
        return
    async with conn.cursor() as cursor, cursor.copy(
        "COPY events (id, merchant_id, topic, subject, type, body) FROM STDIN"
    ) as copy:
        for e in events:
            await copy.write_row((e.id, e.merchant_id, e.topic, e.subject, e.type,
                                  e.body.decode()))


async def unpublished_events(
    conn: Conn, *, older_than_seconds: float, limit: int
) -> list[OutboxEvent]:
    """Events a crash left unpublished, oldest first."""
    cursor = await conn.execute(
        """SELECT topic, id, merchant_id, subject, type, body::text FROM events
           WHERE published_at IS NULL AND created_at < now() - make_interval(secs => %s)
           ORDER BY seq LIMIT %s""",
        (older_than_seconds, limit),
    )
    return [OutboxEvent(topic, event_id, merchant_id, subject, type_, body.encode())
            for topic, event_id, merchant_id, subject, type_, body in await cursor.fetchall()]


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
