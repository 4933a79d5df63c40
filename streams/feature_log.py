"""Materializes the feature log in PostgreSQL: one row per decided payment, written in batches.

Idempotent: the payment id is the key, so a redelivered entry changes nothing. After a worker
crash a request may be decided twice; the table keeps the first decision's features to arrive,
as the ledger applies the first decision to arrive (both were computed for that payment).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import orjson
from psycopg import AsyncConnection
from psycopg.types.json import Jsonb
from psycopg_pool import AsyncConnectionPool

INSERT = """
INSERT INTO feature_log (payment_id, merchant_id, message_id, requested_at, model_version,
                         features, fraud_score, outcome, degraded)
VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s)
ON CONFLICT (payment_id) DO NOTHING
"""


def rows(values: Sequence[bytes]) -> list[tuple[Any, ...]]:
    """Table rows from feature-log messages (the last entry for a payment in a batch is dropped
    in favour of the first, as the table keeps the first)."""
    seen: dict[str, tuple[Any, ...]] = {}
    for value in values:
        entry = orjson.loads(value)
        seen.setdefault(entry["payment_id"], (
            entry["payment_id"], entry["merchant_id"], entry["message_id"],
            entry["requested_at"], entry["model_version"], Jsonb(entry["features"]),
            entry["fraud_score"], entry["outcome"], entry["degraded"],
        ))
    return list(seen.values())


async def write(pool: AsyncConnectionPool[AsyncConnection[Any]],
                values: Sequence[bytes]) -> None:
    batch = rows(values)
    if not batch:
        return
    async with pool.connection() as conn, conn.transaction(), conn.cursor() as cursor:
        await cursor.executemany(INSERT, batch)
