"""Promise: killing the ledger consumer with SIGKILL in the middle of its batches, under load,
loses nothing and applies nothing twice — after a restart every accepted payment is decided
exactly once, with its postings once, and reconciliation passes.

Runs its own stack (it kills a process) and is marked slow: ``make test-slow``.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import os
import signal
import time

import psycopg
import pytest
from psycopg import AsyncConnection

from ledger.reconcile import reconcile
from tests.faults.load import post_card_payment
from tests.harness import IsolatedEnvironment, RunningStack

pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.timeout(600)]
"""The ledger is down while 300 payments each wait out the API's 10 s decision budget (16 at a
time, over 3 minutes): with the stack's start-up that passed pytest's default 300 s on a loaded
machine, in the tear-down after every assertion had passed."""
PAYMENTS = 300


def test_a_ledger_killed_mid_batch_resumes_with_every_payment_applied_once(
    environment: IsolatedEnvironment,
) -> None:
    stack = RunningStack.start(environment)
    try:
        key = environment.create_merchant("Crash Merchant").api_key
        with concurrent.futures.ThreadPoolExecutor(16) as pool:
            sent = pool.map(
                lambda _: post_card_payment(stack, key, 1_500, "crash test").status_code,
                range(PAYMENTS))
            time.sleep(1.0)  # the ledger is busy with batches now
            ledger = next(c for c in stack.supervisor.children if c.name == "ledger")
            os.kill(ledger.process.pid, signal.SIGKILL)
            ledger.process.wait(timeout=10)
            statuses = list(sent)
        assert set(statuses) <= {201, 202}, statuses
        stack.supervisor.children.remove(ledger)
        stack.supervisor.start("ledger", "ledger")
        _wait_until_decided(environment, PAYMENTS, timeout_seconds=120)
        _assert_applied_once(environment)
        settings = environment.settings
        report = asyncio.run(_reconcile(settings.database_url, settings))
        assert report.ok, report.problems
    finally:
        stack.stop()


def _wait_until_decided(environment: IsolatedEnvironment, expected: int,
                        timeout_seconds: float) -> None:
    deadline = time.monotonic() + timeout_seconds
    row: tuple[int, int] | None = (0, 0)
    with psycopg.connect(environment.settings.database_url, autocommit=True) as conn:
        while time.monotonic() < deadline:
            row = conn.execute("SELECT count(*) FILTER (WHERE status <> 'pending'), count(*) "
                               "FROM payments WHERE description = 'crash test'").fetchone()
            assert row is not None
            if row[1] == expected and row[0] == expected:
                return
            time.sleep(1)
    decided = row[0] if row else 0
    pytest.fail(f"only {decided} of {expected} crash-test payments were decided in time")


def _assert_applied_once(environment: IsolatedEnvironment) -> None:
    with psycopg.connect(environment.settings.database_url) as conn:
        twice = conn.execute(
            """SELECT e.payment_id, count(*) FROM journal_entries e
               JOIN payments p ON p.id = e.payment_id
               WHERE p.description = 'crash test' AND e.kind = 'capture'
               GROUP BY e.payment_id HAVING count(*) <> 1""").fetchall()
        events = conn.execute(
            """SELECT subject, type, count(*) FROM events
               WHERE subject IN (SELECT id FROM payments WHERE description = 'crash test')
               GROUP BY subject, type HAVING count(*) <> 1""").fetchall()
    assert twice == [], f"payments captured more than once: {twice[:5]}"
    assert events == [], f"state changes with more than one event: {events[:5]}"


async def _reconcile(url: str, settings: object) -> object:
    async with await AsyncConnection.connect(url, autocommit=True) as conn:
        return await reconcile(conn, settings)  # type: ignore[arg-type]
