"""The rollups' PostgreSQL adapter: claim message ids, upsert buckets, look up currencies.

Every function runs inside the caller's transaction, so a batch's claimed ids and its upserts
commit together: after a crash the batch is redelivered and counted exactly once.
"""

from __future__ import annotations

from typing import Any

from psycopg import AsyncConnection

from streams.rollups.model import MEASURE_COLUMNS, BatchRollup

Conn = AsyncConnection[Any]

_UPSERT_ROLLUP = (
    "INSERT INTO analytics_rollups (merchant_id, currency, granularity, bucket_start, "
    + ", ".join(MEASURE_COLUMNS) + ", score_histogram) VALUES ("
    + ", ".join(["%s"] * (4 + len(MEASURE_COLUMNS) + 1)) + ") "
    "ON CONFLICT (merchant_id, currency, granularity, bucket_start) DO UPDATE SET "
    + ", ".join(f"{c} = analytics_rollups.{c} + EXCLUDED.{c}" for c in MEASURE_COLUMNS)
    + ", score_histogram = analytics_add_histograms(analytics_rollups.score_histogram, "
      "EXCLUDED.score_histogram), updated_at = now()"
)
_UPSERT_FLAG = (
    "INSERT INTO analytics_daily_flags (merchant_id, day, flag, payments) VALUES (%s, %s, %s, %s) "
    "ON CONFLICT (merchant_id, day, flag) DO UPDATE "
    "SET payments = analytics_daily_flags.payments + EXCLUDED.payments"
)


async def claim(conn: Conn, claims: dict[str, str]) -> set[str]:
    """Record ``{claim id: topic}``; the ids not recorded before (the ones to count)."""
    if not claims:
        return set()
    cursor = await conn.execute(
        "INSERT INTO analytics_processed_messages (message_id, topic) "
        "SELECT * FROM unnest(%s::text[], %s::text[]) ON CONFLICT DO NOTHING "
        "RETURNING message_id",
        (list(claims), list(claims.values())),
    )
    return {row[0] for row in await cursor.fetchall()}


async def write(conn: Conn, batch: BatchRollup) -> None:
    rollups = [
        (key.merchant_id, key.currency, key.granularity, key.bucket_start, *measures.amounts(),
         measures.score_histogram)
        for key, measures in batch.sorted_rollups()
    ]
    flags = [(*key, count) for key, count in batch.sorted_flags()]
    async with conn.cursor() as cursor:
        if rollups:
            await cursor.executemany(_UPSERT_ROLLUP, rollups)
        if flags:
            await cursor.executemany(_UPSERT_FLAG, flags)


async def currencies_of(conn: Conn, payment_ids: list[str]) -> dict[str, str]:
    """The currency of each payment (for review decisions, which do not carry one)."""
    if not payment_ids:
        return {}
    cursor = await conn.execute(
        "SELECT id, currency FROM transactions WHERE id = ANY(%s)", (payment_ids,)
    )
    return {row[0]: row[1] for row in await cursor.fetchall()}


async def prune(conn: Conn, older_than_days: int) -> int:
    """Forget claimed ids older than the topics' retention: they can no longer come back."""
    cursor = await conn.execute(
        "DELETE FROM analytics_processed_messages "
        "WHERE processed_at < now() - make_interval(days => %s)",
        (older_than_days,),
    )
    return cursor.rowcount
