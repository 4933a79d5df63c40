"""The sender's PostgreSQL adapter: subscribers, recording deliveries, claiming due ones, and
writing each attempt's outcome with the endpoint's health.

Claiming is a lease: a due delivery's ``next_attempt_at`` moves forward by ``lease_seconds`` and
its attempt count goes up in one conditional UPDATE, so two senders never claim the same attempt
and a sender that dies mid-attempt leaves the delivery due again once the lease ends.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from psycopg import AsyncConnection
from psycopg.rows import dict_row

from api.ids import new_id
from api.webhooks import audit
from api.webhooks.events import PlannedDelivery, Subscriber
from api.webhooks.sender.attempt import AttemptResult

Conn = AsyncConnection[Any]


@dataclass(frozen=True, slots=True)
class ClaimedDelivery:
    id: str
    """Also the ``webhook-id`` header."""
    merchant_id: str
    endpoint_id: str
    event_id: str
    attempt: int
    """This attempt's number, 1-based."""
    payload: bytes
    url: str
    secret_ciphertexts: tuple[bytes, ...]
    """Sealed secrets that sign now, newest first."""


@dataclass(frozen=True, slots=True)
class Outcome:
    next_attempt_at: datetime | None
    """When to try again; None when finished."""
    status: str
    """The delivery's status after this attempt: pending, succeeded or failed."""
    endpoint_disabled: bool
    """This attempt's failure made the endpoint be disabled automatically."""


async def subscribers(conn: Conn, merchant_ids: Sequence[str]) -> dict[str, list[Subscriber]]:
    """Enabled, undeleted endpoints of these merchants, by merchant."""
    cursor = await conn.execute(
        """SELECT id, merchant_id, enabled_events, created_at FROM webhook_endpoints
           WHERE merchant_id = ANY(%s) AND deleted_at IS NULL AND disabled_at IS NULL""",
        (list(merchant_ids),),
    )
    found: dict[str, list[Subscriber]] = {}
    for endpoint_id, merchant_id, events, created_at in await cursor.fetchall():
        found.setdefault(merchant_id, []).append(
            Subscriber(endpoint_id, merchant_id, tuple(events), created_at)
        )
    return found


async def record_deliveries(conn: Conn, planned: Sequence[PlannedDelivery]) -> None:
    """Insert one pending delivery per plan, due now; a delivery recorded before stays as is."""
    async with conn.cursor() as cursor:
        await cursor.executemany(
            """INSERT INTO webhook_deliveries (id, merchant_id, endpoint_id, event_id, event_type,
                                               event_created_at, payload, next_attempt_at)
               VALUES (%s, %s, %s, %s, %s, %s, %s, now())
               ON CONFLICT (event_id, endpoint_id) DO NOTHING""",
            [(new_id("msg"), p.merchant_id, p.endpoint_id, p.event_id, p.event_type,
              p.event_created_at, p.payload) for p in planned],
        )


async def claim_due(
    conn: Conn, *, busy: Mapping[str, int], busy_merchants: Mapping[str, int],
    per_endpoint: int, per_merchant: int, limit: int, lease_seconds: float,
) -> list[ClaimedDelivery]:
    """Lease up to ``limit`` due deliveries, oldest due first, leaving out what would exceed
    ``per_endpoint`` (minus ``busy[endpoint]``) or ``per_merchant`` (minus
    ``busy_merchants[merchant]``) — so one endpoint's or merchant's backlog hides no one."""
    async with conn.cursor(row_factory=dict_row) as cursor:
        await cursor.execute(_CLAIM_DUE, {
            "busy_ids": list(busy), "busy_counts": list(busy.values()),
            "merchant_ids": list(busy_merchants), "merchant_counts": list(busy_merchants.values()),
            "per_endpoint": per_endpoint, "per_merchant": per_merchant, "limit": limit,
            "lease": lease_seconds,
        })
        rows = await cursor.fetchall()
    return [_claimed(row) for row in rows]


_CLAIM_DUE = """
    WITH busy AS (
        SELECT * FROM unnest(%(busy_ids)s::text[], %(busy_counts)s::int[])
            AS b(endpoint_id, in_flight)
    ), busy_merchants AS (
        SELECT * FROM unnest(%(merchant_ids)s::text[], %(merchant_counts)s::int[])
            AS m(merchant_id, in_flight)
    ), due_endpoints AS (
        SELECT DISTINCT endpoint_id FROM webhook_deliveries
        WHERE status = 'pending' AND next_attempt_at <= now()
    ), candidates AS (
        SELECT d.id, d.next_attempt_at, e.merchant_id,
               row_number() OVER (PARTITION BY e.merchant_id ORDER BY d.next_attempt_at)
                   AS merchant_rank
        FROM due_endpoints de
        JOIN webhook_endpoints e ON e.id = de.endpoint_id
        LEFT JOIN busy b ON b.endpoint_id = de.endpoint_id
        CROSS JOIN LATERAL (
            SELECT d.id, d.next_attempt_at FROM webhook_deliveries d
            WHERE d.endpoint_id = de.endpoint_id AND d.status = 'pending'
              AND d.next_attempt_at <= now()
            ORDER BY d.next_attempt_at
            LIMIT greatest(0, %(per_endpoint)s - coalesce(b.in_flight, 0))
        ) d
        WHERE e.deleted_at IS NULL AND e.disabled_at IS NULL
    ), picked AS (
        SELECT c.id FROM candidates c
        LEFT JOIN busy_merchants m ON m.merchant_id = c.merchant_id
        WHERE c.merchant_rank <= %(per_merchant)s - coalesce(m.in_flight, 0)
        ORDER BY c.next_attempt_at LIMIT %(limit)s
    )
    UPDATE webhook_deliveries d
       SET attempts = d.attempts + 1, updated_at = now(),
           next_attempt_at = now() + make_interval(secs => %(lease)s)
      FROM picked, webhook_endpoints e
     WHERE d.id = picked.id AND e.id = d.endpoint_id
       AND d.status = 'pending' AND d.next_attempt_at <= now()
    RETURNING d.id, d.merchant_id, d.endpoint_id, d.event_id, d.attempts, d.payload,
              e.url, e.secret_ciphertext,
              CASE WHEN e.previous_secret_expires_at > now()
                   THEN e.previous_secret_ciphertext END AS previous_ciphertext
"""


def _claimed(row: dict[str, Any]) -> ClaimedDelivery:
    sealed = [row["secret_ciphertext"], row["previous_ciphertext"]]
    return ClaimedDelivery(
        row["id"], row["merchant_id"], row["endpoint_id"], row["event_id"], row["attempts"],
        bytes(row["payload"]), row["url"], tuple(bytes(s) for s in sealed if s is not None),
    )


async def record_attempt(
    conn: Conn, claimed: ClaimedDelivery, result: AttemptResult, retry_in_seconds: float | None
) -> datetime | None:
    """Log the attempt and move the delivery on; the next attempt's time, None when finished.

    The delivery changes only if it is still this claim's (pending, same attempt number):
    a resend, a cancel or a later claim after an expired lease is left alone.
    """
    next_at = None if result.success else retry_in_seconds
    status = "succeeded" if result.success else ("pending" if next_at is not None else "failed")
    cursor = await conn.execute(
        """UPDATE webhook_deliveries SET status = %(status)s,
                  next_attempt_at = CASE WHEN %(status)s = 'pending'
                      THEN now() + make_interval(secs => %(next)s) END,
                  last_attempt_at = now(), last_status_code = %(code)s, last_error = %(error)s,
                  updated_at = now()
           WHERE id = %(id)s AND status = 'pending' AND attempts = %(attempt)s
           RETURNING next_attempt_at""",
        {"status": status, "next": next_at or 0.0, "code": result.status_code,
         "error": result.error, "id": claimed.id, "attempt": claimed.attempt},
    )
    row = await cursor.fetchone()
    next_attempt_at: datetime | None = row[0] if row else None
    await conn.execute(
        """INSERT INTO webhook_attempts (delivery_id, merchant_id, endpoint_id, event_id, attempt,
                                         url, status_code, latency_ms, response_body, error,
                                         next_attempt_at)
           VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)""",
        (claimed.id, claimed.merchant_id, claimed.endpoint_id, claimed.event_id, claimed.attempt,
         claimed.url, result.status_code, result.latency_ms, result.response_body, result.error,
         next_attempt_at),
    )
    return next_attempt_at


async def record_health(
    conn: Conn, endpoint_id: str, success: bool
) -> tuple[datetime | None, int, datetime]:
    """Update the endpoint's failure streak; (failing_since, consecutive_failures, now)."""
    cursor = await conn.execute(
        """UPDATE webhook_endpoints SET
                  failing_since = CASE WHEN %(ok)s THEN NULL
                                       ELSE coalesce(failing_since, now()) END,
                  consecutive_failures = CASE WHEN %(ok)s THEN 0
                                              ELSE consecutive_failures + 1 END,
                  last_success_at = CASE WHEN %(ok)s THEN now() ELSE last_success_at END
           WHERE id = %(id)s
           RETURNING failing_since, consecutive_failures, now()""",
        {"ok": success, "id": endpoint_id},
    )
    row = await cursor.fetchone()
    assert row is not None, endpoint_id
    return row[0], int(row[1]), row[2]


async def disable_failing(
    conn: Conn, endpoint_id: str, failing_since: datetime | None, failures: int
) -> bool:
    """Disable an endpoint for failing, with an audit entry; False if it was disabled already."""
    cursor = await conn.execute(
        """UPDATE webhook_endpoints SET disabled_reason = 'failing', disabled_at = now(),
                  updated_at = now()
           WHERE id = %s AND disabled_at IS NULL
           RETURNING merchant_id""",
        (endpoint_id,),
    )
    row = await cursor.fetchone()
    if row is None:
        return False
    change = {"reason": "failing", "consecutive_failures": failures,
              "failing_since": failing_since.isoformat() if failing_since else None}
    await audit.record(conn, audit.SENDER_ACTOR, row[0], endpoint_id,
                       "webhook_endpoint.disabled", change)
    return True


async def record_probe(
    conn: Conn, planned: PlannedDelivery, delivery_id: str, url: str, result: AttemptResult
) -> None:
    """Log a test send (``POST /api/webhooks/test``) as a finished one-attempt delivery."""
    await conn.execute(
        """INSERT INTO webhook_deliveries (id, merchant_id, endpoint_id, event_id, event_type,
                                           event_created_at, payload, status, attempts,
                                           last_attempt_at, last_status_code, last_error)
           VALUES (%s, %s, %s, %s, %s, %s, %s, %s, 1, now(), %s, %s)""",
        (delivery_id, planned.merchant_id, planned.endpoint_id, planned.event_id,
         planned.event_type, planned.event_created_at, planned.payload,
         "succeeded" if result.success else "failed", result.status_code, result.error),
    )
    await conn.execute(
        """INSERT INTO webhook_attempts (delivery_id, merchant_id, endpoint_id, event_id, attempt,
                                         url, status_code, latency_ms, response_body, error)
           VALUES (%s, %s, %s, %s, 1, %s, %s, %s, %s, %s)""",
        (delivery_id, planned.merchant_id, planned.endpoint_id, planned.event_id, url,
         result.status_code, result.latency_ms, result.response_body, result.error),
    )
