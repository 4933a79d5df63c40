"""SQL over the analytics rollups (``0005_dashboard.sql``): every query scoped by merchant.

Each query reads at most a few thousand pre-aggregated rows through the rollups' primary key
(merchant, currency, granularity, bucket), so its cost does not grow with the payments table.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from psycopg import AsyncConnection, sql
from psycopg.rows import dict_row

from api.analytics import SERIES_FIELDS, Granularity

Conn = AsyncConnection[Any]
_SUMS = sql.SQL(", ").join(
    sql.SQL("sum({field})::bigint AS {field}").format(field=sql.Identifier(_column))
    for _column in SERIES_FIELDS
)


def _currency_filter(currency: str | None) -> sql.Composable:
    return sql.SQL("AND currency = {}").format(currency) if currency else sql.SQL("")


async def currencies(conn: Conn, merchant_id: str) -> list[str]:
    """Currencies with data, most volume in the last 90 days first."""
    cursor = await conn.execute(
        """SELECT currency::text FROM analytics_rollups
           WHERE merchant_id = %s AND granularity = 'day'
           GROUP BY currency
           ORDER BY sum(gross_volume) FILTER (WHERE bucket_start >= now() - interval '90 days')
                    DESC NULLS LAST, currency""",
        (merchant_id,),
    )
    return [row[0] for row in await cursor.fetchall()]


async def revenue_rows(conn: Conn, merchant_id: str, granularity: Granularity, start: date,
                       end: date, currency: str | None) -> list[dict[str, Any]]:
    query = sql.SQL(
        """SELECT (date_trunc({granularity}, bucket_start AT TIME ZONE 'UTC'))::date
                      AS period_start, currency::text AS currency, {sums}
           FROM analytics_rollups
           WHERE merchant_id = {merchant} AND granularity = 'day'
             AND bucket_start >= {start}::date AT TIME ZONE 'UTC'
             AND bucket_start < {end}::date AT TIME ZONE 'UTC' {currency}
           GROUP BY 1, 2 ORDER BY 1, 2"""
    ).format(granularity=granularity, sums=_SUMS, merchant=merchant_id, start=start, end=end,
             currency=_currency_filter(currency))
    async with conn.cursor(row_factory=dict_row) as cursor:
        await cursor.execute(query)
        return list(await cursor.fetchall())


async def period_totals(
    conn: Conn, merchant_id: str, currency: str, start: datetime, middle: datetime, end: datetime
) -> tuple[dict[str, int], dict[str, int]]:
    """Summed measures of [middle, end) and of [start, middle), from the hourly rollups."""
    columns = sql.SQL(", ").join(
        sql.SQL(
            "coalesce(sum({f}) FILTER (WHERE bucket_start >= {m}), 0)::bigint AS {cur}, "
            "coalesce(sum({f}) FILTER (WHERE bucket_start < {m}), 0)::bigint AS {prev}"
        ).format(f=sql.Identifier(name), m=middle, cur=sql.Identifier(f"cur_{name}"),
                 prev=sql.Identifier(f"prev_{name}"))
        for name in SERIES_FIELDS
    )
    query = sql.SQL(
        """SELECT {columns} FROM analytics_rollups
           WHERE merchant_id = {merchant} AND currency = {currency} AND granularity = 'hour'
             AND bucket_start >= {start} AND bucket_start < {end}"""
    ).format(columns=columns, merchant=merchant_id, currency=currency, start=start, end=end)
    async with conn.cursor(row_factory=dict_row) as cursor:
        await cursor.execute(query)
        row = await cursor.fetchone()
    assert row is not None
    current = {name: int(row[f"cur_{name}"]) for name in SERIES_FIELDS}
    previous = {name: int(row[f"prev_{name}"]) for name in SERIES_FIELDS}
    return current, previous


async def histogram(conn: Conn, merchant_id: str, start: date, end: date,
                    currency: str | None) -> list[int]:
    query = sql.SQL(
        """SELECT u.i, sum(u.x)::bigint FROM analytics_rollups r,
                  unnest(r.score_histogram) WITH ORDINALITY AS u(x, i)
           WHERE r.merchant_id = {merchant} AND r.granularity = 'day'
             AND r.bucket_start >= {start}::date AT TIME ZONE 'UTC'
             AND r.bucket_start < {end}::date AT TIME ZONE 'UTC' {currency}
           GROUP BY u.i ORDER BY u.i"""
    ).format(merchant=merchant_id, start=start, end=end, currency=_currency_filter(currency))
    cursor = await conn.execute(query)
    counts = [0] * 10
    for index, total in await cursor.fetchall():
        counts[int(index) - 1] = int(total)
    return counts


async def top_flags(conn: Conn, merchant_id: str, start: date, end: date,
                    limit: int) -> list[dict[str, Any]]:
    async with conn.cursor(row_factory=dict_row) as cursor:
        await cursor.execute(
            """SELECT flag, sum(payments)::bigint AS payments FROM analytics_daily_flags
               WHERE merchant_id = %s AND day >= %s AND day < %s
               GROUP BY flag ORDER BY 2 DESC, 1 LIMIT %s""",
            (merchant_id, start, end, limit),
        )
        return list(await cursor.fetchall())
