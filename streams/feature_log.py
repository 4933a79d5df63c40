"""Materializes the feature log in PostgreSQL: one row per decided payment, written in batches.

Idempotent: the payment id is the key, so a redelivered entry changes nothing. An entry that
is not one (``rows``) goes to the dead letters, and the batch goes on. After a worker
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


def rows(values: Sequence[bytes | None]) -> tuple[list[tuple[Any, ...]], dict[int, str]]:
    """Table rows from feature-log messages, and the poison among them: index -> reason (not
    JSON, or missing a field). Of several entries for one payment in a batch, the first is
    kept, as the table keeps the first. The features go back to JSON with orjson: psycopg's
    default (the standard library's ``json``) took 40 of the 86 µs a row cost to write."""
    seen: dict[str, tuple[Any, ...]] = {}
    poison: dict[int, str] = {}
    for index, value in enumerate(values):
        try:
            entry = orjson.loads(value or b"")
            row = (entry["payment_id"], entry["merchant_id"], entry["message_id"],
                   entry["requested_at"], entry["model_version"],
                   Jsonb(entry["features"], dumps=orjson.dumps),
                   entry["fraud_score"], entry["outcome"], entry["degraded"])
        except (orjson.JSONDecodeError, TypeError, KeyError) as error:
            poison[index] = f"not a feature-log entry: {type(error).__name__}: {error}"
            continue
        if not isinstance(row[0], str) or not isinstance(row[5].obj, dict):
            poison[index] = "not a feature-log entry: payment_id or features of the wrong type"
            continue
        seen.setdefault(row[0], row)
    return list(seen.values()), poison


async def write(pool: AsyncConnectionPool[AsyncConnection[Any]],
                batch: Sequence[tuple[Any, ...]]) -> None:
    if not batch:
        return
    async with pool.connection() as conn, conn.transaction(), conn.cursor() as cursor:
        await cursor.executemany(INSERT, batch)
