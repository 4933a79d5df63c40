"""Read-only views of the ledger for merchants: a payment's timeline and ledger entries, balances
by type, payouts with their settlement reports, and the event history. Every query is scoped by
merchant id."""

from __future__ import annotations

from typing import Any

from psycopg.rows import dict_row

from api.repository import Conn


async def _dicts(conn: Conn, sql: str, params: tuple[Any, ...]) -> list[dict[str, Any]]:
    async with conn.cursor(row_factory=dict_row) as cursor:
        await cursor.execute(sql, params)
        return list(await cursor.fetchall())


async def payment_exists(conn: Conn, merchant_id: str, payment_id: str) -> bool:
    rows = await _dicts(conn, "SELECT 1 AS one FROM payments WHERE id = %s AND merchant_id = %s",
                        (payment_id, merchant_id))
    return bool(rows)


async def timeline(conn: Conn, merchant_id: str, payment_id: str) -> list[dict[str, Any]]:
    """Audit rows of the payment (who did what), oldest first."""
    return await _dicts(conn, """
        SELECT 'aud_' || id AS id, action AS type, at AS created_at, actor, change AS data
        FROM audit_log WHERE entity_type = 'payment' AND entity_id = %s AND merchant_id = %s
        ORDER BY id""", (payment_id, merchant_id))


async def ledger_entries(conn: Conn, merchant_id: str, payment_id: str) -> list[dict[str, Any]]:
    return await _dicts(conn, """
        SELECT p.id, e.id AS entry_id, e.kind, p.account,
               CASE WHEN p.amount > 0 THEN 'debit' ELSE 'credit' END AS direction,
               abs(p.amount) AS amount, p.currency::text AS currency, e.created_at
        FROM journal_entries e JOIN postings p ON p.entry_id = e.id
        JOIN payments py ON py.id = e.payment_id
        WHERE e.payment_id = %s AND py.merchant_id = %s ORDER BY e.id, p.id""",
        (payment_id, merchant_id))


async def balances(conn: Conn, merchant_id: str) -> list[dict[str, Any]]:
    """Per currency: pending (captured, not settled), available, in transit, paid out, and the
    authorizations still held (pending credits of the pending account)."""
    return await _dicts(conn, """
        SELECT currency::text AS currency,
               coalesce(sum(posted_credits - posted_debits) FILTER (WHERE kind = 'pending'), 0)
                   AS pending,
               coalesce(sum(posted_credits - posted_debits) FILTER (WHERE kind = 'available'),
                        0) AS available,
               coalesce(sum(posted_credits - posted_debits) FILTER (WHERE kind = 'in_transit'),
                        0) AS in_transit,
               coalesce(sum(posted_debits) FILTER (WHERE kind = 'in_transit'), 0) AS paid_out,
               coalesce(sum(pending_credits) FILTER (WHERE kind = 'pending'), 0) AS held
        FROM accounts WHERE owner = %s GROUP BY currency ORDER BY currency""", (merchant_id,))


async def payouts(conn: Conn, merchant_id: str, limit: int) -> list[dict[str, Any]]:
    return await _dicts(conn, """
        SELECT id, amount, currency::text AS currency, status, settlement_date, created_at,
               paid_at FROM payouts WHERE merchant_id = %s
        ORDER BY settlement_date DESC, created_at DESC LIMIT %s""", (merchant_id, limit))


async def payout_report(conn: Conn, merchant_id: str, payout_id: str) -> str | None:
    rows = await _dicts(conn, """
        SELECT s.report FROM payouts p JOIN settlements s ON s.id = p.settlement_id
        WHERE p.id = %s AND p.merchant_id = %s""", (payout_id, merchant_id))
    return rows[0]["report"] if rows else None


async def events(conn: Conn, merchant_id: str, limit: int, starting_after: str | None,
                 event_type: str | None) -> list[dict[str, Any]]:
    """The merchant's public events, newest first (the objects webhooks carry).

    ``starting_after`` is the id of the last event of the previous page. Another merchant's
    event, like an unknown id, matches nothing, so the page is empty either way.
    """
    clauses = ["merchant_id = %s"]
    params: list[Any] = [merchant_id]
    if starting_after is not None:
        clauses.append("seq < (SELECT seq FROM events WHERE id = %s AND merchant_id = %s)")
        params += [starting_after, merchant_id]
    if event_type is not None:
        clauses.append("type LIKE %s")
        params.append(f"{event_type}.v%")
    return await _dicts(conn, f"""
        SELECT seq, id, type, created_at, body->'data' AS data FROM events
        WHERE {' AND '.join(clauses)} ORDER BY seq DESC LIMIT %s""", (*params, limit))
