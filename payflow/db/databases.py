"""Creating and dropping whole databases: the test harness's and the benchmarks' own databases,
made and removed around each run by the role that owns them (not a superuser)."""

from __future__ import annotations

import time

import psycopg
from psycopg import sql

DROP_ATTEMPTS = 120
DROP_RETRY_SECONDS = 0.5


def create_database(admin_url: str, database: str) -> None:
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(database)))


def drop_database(admin_url: str, database: str) -> None:
    """Drop ``database`` if it exists, ending the sessions still open on it (``FORCE``).

    FORCE cannot end a backend its role has no privilege over: an autovacuum worker that
    happens to be in the database (as after a migration) makes it fail with
    InsufficientPrivilege. The worker leaves once done, so this tries again, for up to a
    minute: after the overload test (about 28,000 payments) one was still there after 5 s."""
    for attempt in range(1, DROP_ATTEMPTS + 1):
        try:
            with psycopg.connect(admin_url, autocommit=True) as conn:
                conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(
                    sql.Identifier(database)))
            return
        except psycopg.errors.InsufficientPrivilege:
            if attempt == DROP_ATTEMPTS:
                raise
            time.sleep(DROP_RETRY_SECONDS)
