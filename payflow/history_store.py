"""The imported history in PostgreSQL (``history_imports``, ``history_payments``: migration 0010).

An import runs in one transaction: valid rows are COPYed into a temporary staging table as the
file is read, payment ids repeated within the file are found there, and the rows are then
upserted by payment id — a row already imported unchanged is left alone, a changed one (a
later export with more labels, say) is updated. Nothing is committed when the caller rolls back
(bad rows without ``--skip-invalid``). Replay reads the rows back in event-time order through
server-side cursors, so a long history never sits in memory.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

import psycopg

from ingest.history import HistoricalPayment, RowProblem

COLUMNS = ("payment_id", "line", "occurred_at", "merchant_id", "card", "terminal_id",
           "customer_id", "amount_minor", "currency", "ip_address", "device_id", "country",
           "is_fraud", "labelled_at")
DATA_COLUMNS = COLUMNS[2:]
"""What a payment is (its position in a file is not)."""
FETCH_ROWS = 5_000


@dataclass(frozen=True)
class ImportCounts:
    import_id: int
    inserted: int
    updated: int
    unchanged: int


def stage(conn: psycopg.Connection[Any], payments: Iterable[HistoricalPayment]) -> int:
    """COPY ``payments`` into this transaction's staging table; how many were staged."""
    conn.execute(f"CREATE TEMPORARY TABLE history_staging ON COMMIT DROP AS "
                 f"SELECT {', '.join(COLUMNS)} FROM history_payments WITH NO DATA")
    count = 0
    with conn.cursor() as cursor, cursor.copy(
            f"COPY history_staging ({', '.join(COLUMNS)}) FROM STDIN") as copy:
        for p in payments:
            copy.write_row((p.payment_id, p.line, p.occurred_at, p.merchant_id, p.card,
                            p.terminal_id, p.customer_id, p.amount_minor, p.currency,
                            p.ip_address, p.device_id, p.country, p.is_fraud, p.labelled_at))
            count += 1
    return count


def repeated_ids(conn: psycopg.Connection[Any], limit: int) -> tuple[int, list[RowProblem]]:
    """Rows whose payment id an earlier line of the file already used: their number, and the
    first ``limit`` of them as problems."""
    rows = conn.execute(
        """SELECT payment_id, line, first_line, count(*) OVER () FROM (
               SELECT payment_id, line, min(line) OVER (PARTITION BY payment_id) AS first_line
               FROM history_staging) s
           WHERE line > first_line ORDER BY line LIMIT %s""", (limit,)).fetchall()
    total = int(rows[0][3]) if rows else 0
    return total, [RowProblem(int(line), "payment_id", f"{pid!r} is already on line {first}")
                   for pid, line, first, _ in rows]


def drop_repeated(conn: psycopg.Connection[Any]) -> None:
    """Keep only each payment id's first line (for ``--skip-invalid``)."""
    conn.execute("""DELETE FROM history_staging s USING history_staging f
                    WHERE s.payment_id = f.payment_id AND s.line > f.line""")


def upsert(conn: psycopg.Connection[Any], file_name: str, sha256: str, rows_read: int,
           rejected: int) -> ImportCounts:
    """Move the staged rows into ``history_payments`` and record the run."""
    (import_id,) = conn.execute(
        """INSERT INTO history_imports (file_name, file_sha256, rows_read, rows_inserted,
                                        rows_updated, rows_rejected)
           VALUES (%s, %s, %s, 0, 0, %s) RETURNING id""",
        (file_name, sha256, rows_read, rejected)).fetchone() or (None,)
    assert import_id is not None
    changes = ", ".join(f"{c} = EXCLUDED.{c}" for c in ("import_id", *COLUMNS[1:]))
    differs = (f"({', '.join(f'history_payments.{c}' for c in DATA_COLUMNS)}) IS DISTINCT FROM "
               f"({', '.join(f'EXCLUDED.{c}' for c in DATA_COLUMNS)})")
    written = conn.execute(
        f"""INSERT INTO history_payments (import_id, {', '.join(COLUMNS)})
            SELECT %s, {', '.join(COLUMNS)} FROM history_staging ORDER BY line
            ON CONFLICT (payment_id) DO UPDATE SET {changes} WHERE {differs}
            RETURNING xmax = 0""", (import_id,)).fetchall()
    inserted = sum(1 for (new,) in written if new)
    updated = len(written) - inserted
    staged = conn.execute("SELECT count(*) FROM history_staging").fetchone()
    unchanged = int(staged[0] if staged else 0) - len(written)
    conn.execute("UPDATE history_imports SET rows_inserted = %s, rows_updated = %s WHERE id = %s",
                 (inserted, updated, import_id))
    return ImportCounts(int(import_id), inserted, updated, unchanged)


def counts(conn: psycopg.Connection[Any]) -> tuple[int, int]:
    """(payments, fraud labels) imported."""
    row = conn.execute("SELECT count(*), count(*) FILTER (WHERE is_fraud) "
                       "FROM history_payments").fetchone()
    assert row is not None
    return int(row[0]), int(row[1])


def payments_in_time_order(conn: psycopg.Connection[Any]) -> Iterator[HistoricalPayment]:
    """Every imported payment by event time (ties in file order)."""
    yield from _stream(conn, "history_payments_by_time", "TRUE",
                       "occurred_at, import_id, line")


def labels_in_time_order(conn: psycopg.Connection[Any]) -> Iterator[HistoricalPayment]:
    """Every fraud-labelled payment by the time its label arrived."""
    yield from _stream(conn, "history_labels_by_time", "is_fraud",
                       "labelled_at, import_id, line")


def _stream(conn: psycopg.Connection[Any], name: str, where: str,
            order: str) -> Iterator[HistoricalPayment]:
    with conn.cursor(name=name) as cursor:
        cursor.itersize = FETCH_ROWS
        cursor.execute(f"SELECT {', '.join(COLUMNS)} FROM history_payments "
                       f"WHERE {where} ORDER BY {order}")
        for row in cursor:
            yield HistoricalPayment(*row)


def feature_log_rows(conn: psycopg.Connection[Any]) -> int:
    """Imported payments that have a row in the feature log (were decided by a worker)."""
    row = conn.execute("SELECT count(*) FROM feature_log f "
                       "JOIN history_payments h ON h.payment_id = f.payment_id").fetchone()
    return int(row[0]) if row else 0
