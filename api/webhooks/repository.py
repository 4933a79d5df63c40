"""The webhook API's PostgreSQL adapter: endpoints, and the delivery log as merchants see it.

Every query is scoped by merchant id (another merchant's endpoint or delivery is simply not
found) and ignores deleted endpoints. Secrets go in and out only as vault ciphertext.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from psycopg import AsyncConnection
from psycopg.rows import dict_row

Conn = AsyncConnection[Any]
Row = dict[str, Any]

MAX_ENDPOINTS_PER_MERCHANT = 16

ENDPOINT_COLUMNS = """
    id, url, description, enabled_events, is_primary AS primary, disabled_reason, disabled_at,
    CASE WHEN disabled_at IS NULL THEN 'enabled' ELSE 'disabled' END AS status,
    failing_since, consecutive_failures, last_success_at,
    CASE WHEN previous_secret_expires_at > now() THEN previous_secret_expires_at END
        AS secret_rotation_ends_at,
    created_at, updated_at"""

DELIVERY_COLUMNS = """
    id, endpoint_id, event_id, event_type, status, attempts AS attempt_count, next_attempt_at,
    last_attempt_at, last_status_code, last_error, created_at"""


@dataclass(frozen=True, slots=True)
class NewEndpoint:
    id: str
    url: str
    enabled_events: list[str]
    description: str | None
    primary: bool
    disabled: bool
    secret_ciphertext: bytes


@dataclass(frozen=True, slots=True)
class DeliveryFilters:
    status: str | None = None
    event_type: str | None = None
    endpoint_id: str | None = None
    start: datetime | None = None
    """Inclusive."""
    end: datetime | None = None
    """Exclusive."""


async def _one(conn: Conn, query: str, params: dict[str, Any]) -> Row | None:
    async with conn.cursor(row_factory=dict_row) as cursor:
        await cursor.execute(query, params)
        return await cursor.fetchone()


async def _all(conn: Conn, query: str, params: dict[str, Any]) -> list[Row]:
    async with conn.cursor(row_factory=dict_row) as cursor:
        await cursor.execute(query, params)
        return await cursor.fetchall()


async def count_endpoints(conn: Conn, merchant_id: str) -> int:
    cursor = await conn.execute(
        "SELECT count(*) FROM webhook_endpoints WHERE merchant_id = %s AND deleted_at IS NULL",
        (merchant_id,),
    )
    row = await cursor.fetchone()
    assert row is not None
    return int(row[0])


async def insert_endpoint(conn: Conn, merchant_id: str, new: NewEndpoint) -> Row:
    row = await _one(conn, f"""
        INSERT INTO webhook_endpoints (id, merchant_id, url, enabled_events, description,
                                       is_primary, secret_ciphertext, disabled_reason, disabled_at)
        VALUES (%(id)s, %(merchant)s, %(url)s, %(events)s, %(description)s, %(primary)s,
                %(secret)s, CASE WHEN %(disabled)s::boolean THEN 'manual' END,
                CASE WHEN %(disabled)s::boolean THEN now() END)
        RETURNING {ENDPOINT_COLUMNS}""",
        {"id": new.id, "merchant": merchant_id, "url": new.url, "events": new.enabled_events,
         "description": new.description, "primary": new.primary,
         "secret": new.secret_ciphertext, "disabled": new.disabled})
    assert row is not None
    return row


async def get_endpoint(conn: Conn, merchant_id: str, endpoint_id: str) -> Row | None:
    return await _one(conn, f"""
        SELECT {ENDPOINT_COLUMNS} FROM webhook_endpoints
        WHERE id = %(id)s AND merchant_id = %(merchant)s AND deleted_at IS NULL""",
        {"id": endpoint_id, "merchant": merchant_id})


async def get_primary_endpoint(conn: Conn, merchant_id: str) -> Row | None:
    return await _one(conn, f"""
        SELECT {ENDPOINT_COLUMNS} FROM webhook_endpoints
        WHERE merchant_id = %(merchant)s AND is_primary AND deleted_at IS NULL""",
        {"merchant": merchant_id})


async def list_endpoints(
    conn: Conn, merchant_id: str, *, limit: int, offset: int
) -> tuple[list[Row], int]:
    rows = await _all(conn, f"""
        SELECT {ENDPOINT_COLUMNS} FROM webhook_endpoints
        WHERE merchant_id = %(merchant)s AND deleted_at IS NULL
        ORDER BY created_at DESC, id DESC LIMIT %(limit)s OFFSET %(offset)s""",
        {"merchant": merchant_id, "limit": limit, "offset": offset})
    return rows, await count_endpoints(conn, merchant_id)


async def update_endpoint(
    conn: Conn, merchant_id: str, endpoint_id: str, *, url: str | None,
    enabled_events: list[str] | None, description: str | None, set_description: bool,
    disabled: bool | None,
) -> Row | None:
    """Change what is given (None leaves a field); re-enabling also clears the failure streak."""
    return await _one(conn, f"""
        UPDATE webhook_endpoints SET
            url = coalesce(%(url)s, url),
            enabled_events = coalesce(%(events)s, enabled_events),
            description = CASE WHEN %(set_description)s THEN %(description)s ELSE description END,
            disabled_reason = CASE WHEN %(resume)s THEN NULL
                                   WHEN %(pause)s THEN coalesce(disabled_reason, 'manual')
                                   ELSE disabled_reason END,
            disabled_at = CASE WHEN %(resume)s THEN NULL
                               WHEN %(pause)s THEN coalesce(disabled_at, now())
                               ELSE disabled_at END,
            failing_since = CASE WHEN %(resume)s THEN NULL ELSE failing_since END,
            consecutive_failures = CASE WHEN %(resume)s THEN 0 ELSE consecutive_failures END,
            updated_at = now()
        WHERE id = %(id)s AND merchant_id = %(merchant)s AND deleted_at IS NULL
        RETURNING {ENDPOINT_COLUMNS}""",
        {"id": endpoint_id, "merchant": merchant_id, "url": url, "events": enabled_events,
         "description": description, "set_description": set_description,
         "pause": disabled is True, "resume": disabled is False})


async def delete_endpoint(conn: Conn, merchant_id: str, endpoint_id: str) -> bool:
    """Mark the endpoint deleted and cancel its pending deliveries; False if not found."""
    cursor = await conn.execute(
        """UPDATE webhook_endpoints SET deleted_at = now(), is_primary = false, updated_at = now()
           WHERE id = %s AND merchant_id = %s AND deleted_at IS NULL""",
        (endpoint_id, merchant_id),
    )
    if cursor.rowcount != 1:
        return False
    await conn.execute(
        """UPDATE webhook_deliveries SET status = 'canceled', next_attempt_at = NULL,
                  last_error = 'endpoint deleted', updated_at = now()
           WHERE endpoint_id = %s AND status = 'pending'""",
        (endpoint_id,),
    )
    return True


async def rotate_secret(
    conn: Conn, merchant_id: str, endpoint_id: str, new_ciphertext: bytes, overlap_seconds: int
) -> Row | None:
    """Make ``new_ciphertext`` the secret; the current one keeps signing for the overlap."""
    return await _one(conn, f"""
        UPDATE webhook_endpoints SET
            previous_secret_ciphertext = CASE WHEN %(overlap)s > 0 THEN secret_ciphertext END,
            previous_secret_expires_at = CASE WHEN %(overlap)s > 0
                THEN now() + make_interval(secs => %(overlap)s) END,
            secret_ciphertext = %(secret)s,
            updated_at = now()
        WHERE id = %(id)s AND merchant_id = %(merchant)s AND deleted_at IS NULL
        RETURNING {ENDPOINT_COLUMNS}""",
        {"id": endpoint_id, "merchant": merchant_id, "secret": new_ciphertext,
         "overlap": overlap_seconds})


async def signing_ciphertexts(conn: Conn, endpoint_id: str) -> list[bytes]:
    """The endpoint's sealed secrets that sign now, newest first."""
    cursor = await conn.execute(
        """SELECT secret_ciphertext,
                  CASE WHEN previous_secret_expires_at > now() THEN previous_secret_ciphertext END
           FROM webhook_endpoints WHERE id = %s""",
        (endpoint_id,),
    )
    row = await cursor.fetchone()
    assert row is not None, endpoint_id
    return [bytes(value) for value in row if value is not None]


# --- deliveries ----------------------------------------------------------------------------


async def list_deliveries(
    conn: Conn, merchant_id: str, filters: DeliveryFilters, *, limit: int, offset: int
) -> tuple[list[Row], int]:
    where = """merchant_id = %(merchant)s
        AND (%(status)s::text IS NULL OR status = %(status)s)
        AND (%(event_type)s::text IS NULL OR event_type = %(event_type)s)
        AND (%(endpoint)s::text IS NULL OR endpoint_id = %(endpoint)s)
        AND (%(start)s::timestamptz IS NULL OR created_at >= %(start)s)
        AND (%(end)s::timestamptz IS NULL OR created_at < %(end)s)"""
    params = {"merchant": merchant_id, "status": filters.status,
              "event_type": filters.event_type, "endpoint": filters.endpoint_id,
              "start": filters.start, "end": filters.end, "limit": limit, "offset": offset}
    rows = await _all(conn, f"""
        SELECT {DELIVERY_COLUMNS} FROM webhook_deliveries WHERE {where}
        ORDER BY created_at DESC, id DESC LIMIT %(limit)s OFFSET %(offset)s""", params)
    total = await _one(conn, f"SELECT count(*) AS total FROM webhook_deliveries WHERE {where}",
                       params)
    assert total is not None
    return rows, int(total["total"])


async def get_delivery(conn: Conn, merchant_id: str, delivery_id: str) -> Row | None:
    return await _one(conn, f"""
        SELECT {DELIVERY_COLUMNS} FROM webhook_deliveries
        WHERE id = %(id)s AND merchant_id = %(merchant)s""",
        {"id": delivery_id, "merchant": merchant_id})


async def list_attempts(conn: Conn, delivery_id: str) -> list[Row]:
    return await _all(conn, """
        SELECT attempt, url, status_code, latency_ms, response_body, error, next_attempt_at,
               attempted_at
        FROM webhook_attempts WHERE delivery_id = %(id)s ORDER BY id""", {"id": delivery_id})


async def schedule_resend(conn: Conn, merchant_id: str, delivery_id: str) -> Row | None:
    """Make a delivery due now, whatever its status, if its endpoint is live and enabled.

    A resend is one more attempt: if it fails and the schedule is spent, the delivery is
    dead-lettered again at once.
    """
    return await _one(conn, """
        UPDATE webhook_deliveries d SET status = 'pending', next_attempt_at = now(),
               updated_at = now()
        FROM webhook_endpoints e
        WHERE d.id = %(id)s AND d.merchant_id = %(merchant)s AND e.id = d.endpoint_id
          AND e.deleted_at IS NULL AND e.disabled_at IS NULL
        RETURNING d.id, d.endpoint_id, d.event_id, d.event_type, d.status,
                  d.attempts AS attempt_count, d.next_attempt_at, d.last_attempt_at,
                  d.last_status_code, d.last_error, d.created_at""",
        {"id": delivery_id, "merchant": merchant_id})
