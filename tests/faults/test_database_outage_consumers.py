"""Promise: while PostgreSQL is unreachable, the ledger, the webhook sender and the analytics
consumer wait and retry — they dead-letter nothing good and do not crash — and once it returns
every accepted payment is applied exactly once, every webhook is delivered, the rollups count
each payment once, and reconciliation passes.

Each of the three reaches the shared PostgreSQL through a relay of its own (``TcpProxy``) that
the test cuts while payments keep arriving through the API (which keeps its direct
connection): their open connections drop, new ones are refused. The ledger's database returns
once the ledger has failed on a batch of decisions; the others' once the events the ledger then
publishes have reached a webhook sender and an analytics consumer whose database is still away
(analytics counts events; the decisions it reads touch its database only for reviews).
(The steps wait for what the processes log rather than for fixed times: on a loaded machine
the pipeline's pace varies a lot.) Before this, the ledger dead-lettered every decision of a
batch that failed on a lost connection (losing those payments), and the other two crashed.
Runs its own stack on its own database and topics, and is marked slow: ``make test-slow``.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import json
import signal
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import psycopg
import pytest

from payflow.settings import Settings
from payflow.supervisor import Child
from tests.cards import fresh_card_number
from tests.faults.load import dead_letters
from tests.faults.tcp_proxy import TcpProxy
from tests.faults.test_ledger_crash import _reconcile
from tests.harness import IsolatedEnvironment, RunningStack, derived_environment
from tests.webhooks_support import STACK_WEBHOOKS_ENV
from tests.webhooks_support.receiver import Receiver

pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.timeout(900)]
PAYMENTS = 240
RATE_PER_SECOND = 8.0
"""Payments keep arriving before, during and after the outage (30 s of traffic at most)."""
CUT_AFTER_SECONDS = 5.0
MIN_OUTAGE_SECONDS = 35.0
"""Longer than psycopg_pool's default 30 s wait for a connection: the ledger used to wait that
long on each message of a failed batch, then dead-letter it."""
LIVENESS_STALL_SECONDS = 15.0
"""The consumers' liveness limit here (60 s by default), well inside the outage."""
STEP_SECONDS = 120.0
"""The longest wait for one step of the outage (a consumer to meet it, or to recover)."""
RECOVERY_SECONDS = 150.0
DESCRIPTION = "database outage test"
OUTAGE_LOGGED = {
    "ledger": "ledger consumer: a dependency is unavailable",
    "webhooks": "webhook event consumer: a dependency is unavailable",
    "analytics": "analytics consumer: a dependency is unavailable",
}
RECOVERY_LOGGED = {name: line.split(":")[0] + ": recovered after"
                   for name, line in OUTAGE_LOGGED.items()}
COMMANDS = {"ledger": ("ledger",), "webhooks": ("webhooks",), "analytics": ("analytics",)}
STARTED_LOGGED = {"ledger": "ledger consumer started", "webhooks": "webhook sender consuming",
                  "analytics": "analytics consumer started"}


@dataclass
class OutageStack:
    stack: RunningStack
    proxies: dict[str, TcpProxy]
    """The relay each of ledger, webhooks and analytics reaches PostgreSQL through."""
    children: dict[str, Child]


@pytest.fixture
def outage_stack(environment: IsolatedEnvironment) -> Iterator[OutageStack]:
    isolated = derived_environment(environment, f"pgout{uuid.uuid4().hex[:4]}")
    # The API answers 202 pending after 1 s (instead of the tests' 10 s) while the ledger
    # waits, so that the load keeps its pace through the outage.
    isolated.env["PAYFLOW_DECISION_BUDGET_SECONDS"] = "1"
    # A consumer waiting out the outage is not stuck: with the liveness limit at less than
    # half the outage, one that the check took for stuck would exit and fail the test.
    isolated.env["PAYFLOW_LIVENESS_STALL_SECONDS"] = str(LIVENESS_STALL_SECONDS)
    isolated.env["PAYFLOW_LIVENESS_CHECK_SECONDS"] = "1"
    proxies: dict[str, TcpProxy] = {}
    try:
        stack = RunningStack.start(isolated)
        try:
            children = {}
            for name in COMMANDS:
                proxy, url = TcpProxy.to_database(isolated.settings.database_url)
                proxies[name] = proxy
                children[name] = _restart_through(stack, name, url)
            for name in COMMANDS:  # the replacements have started (each log has two starts)
                _wait_for_log(stack, name, STARTED_LOGGED[name], count=2)
            stack.warm_up(timeout_seconds=90)  # and the ledger owns its partitions
            yield OutageStack(stack, proxies, children)
        finally:
            stack.stop()
    finally:
        for proxy in proxies.values():
            proxy.close()
        isolated.teardown()


def test_consumers_wait_out_a_database_outage_and_lose_nothing(
    outage_stack: OutageStack,
) -> None:
    stack = outage_stack.stack
    receiver = Receiver()
    try:
        created = stack.environment.create_merchant("Outage Merchant")
        endpoint = httpx.post(f"{stack.base_url}/v1/webhook_endpoints", timeout=20,
                              headers={"Authorization": f"Bearer {created.api_key}"},
                              json={"url": receiver.url("/outage")})
        assert endpoint.status_code == 201, endpoint.text
        started = time.monotonic()
        with concurrent.futures.ThreadPoolExecutor(16) as pool:
            sent = [pool.submit(_pay_at, stack, created.api_key, started + i / RATE_PER_SECOND)
                    for i in range(PAYMENTS)]
            outage = _cut_and_restore(outage_stack, started)
            statuses = [future.result() for future in sent]
        assert set(statuses) <= {201, 202}, sorted(set(statuses))
        print(f"outage: {outage}; API answers {_count(statuses)}")

        decided_after = _wait_until_decided(stack.environment, PAYMENTS)
        _assert_applied_once(settings_of(stack))
        settings = settings_of(stack)
        report = asyncio.run(_reconcile(settings.database_url, settings))
        assert report.ok, report.problems  # type: ignore[attr-defined]

        events = _event_ids(settings, created.merchant_id)
        assert len(events) == 2 * PAYMENTS, len(events)  # authorized, captured
        missing = _wait_for_webhooks(receiver, events)
        assert missing == set(), f"{len(missing)} events never delivered: {sorted(missing)[:5]}"
        counted = _wait_for_rollups(settings, created.merchant_id, PAYMENTS)
        assert counted == (PAYMENTS, PAYMENTS * 1_500), counted

        letters = asyncio.run(dead_letters(settings))
        assert letters == [], f"dead-lettered during the outage: {letters[:3]}"
        for name, child in outage_stack.children.items():
            assert child.alive, f"{name} died: {stack.log(name)[-3000:]}"
            log = child.log_path.read_text(errors="replace")  # all of it: deliveries are logged
            assert OUTAGE_LOGGED[name] in log, f"{name} never met the outage: {log[-3000:]}"
            assert RECOVERY_LOGGED[name] in log, f"{name} never recovered: {log[-3000:]}"
            assert log.count(OUTAGE_LOGGED[name]) <= 2, f"{name} logs every retry"
        print(f"all {PAYMENTS} payments decided {decided_after:.1f} s after the load ended; "
              f"{len(events)} webhooks delivered; relayed connections "
              f"{ {n: p.connections for n, p in outage_stack.proxies.items()} }")
    finally:
        receiver.close()


def settings_of(stack: RunningStack) -> Settings:
    return stack.environment.settings


def _assert_applied_once(settings: Settings) -> None:
    """Each test payment captured by one journal entry; each of its state changes one event."""
    with psycopg.connect(settings.database_url) as conn:
        twice = conn.execute(
            """SELECT e.payment_id, count(*) FROM journal_entries e
               JOIN payments p ON p.id = e.payment_id
               WHERE p.description = %s AND e.kind = 'capture'
               GROUP BY e.payment_id HAVING count(*) <> 1""", (DESCRIPTION,)).fetchall()
        captured = conn.execute(
            """SELECT count(DISTINCT e.payment_id) FROM journal_entries e
               JOIN payments p ON p.id = e.payment_id
               WHERE p.description = %s AND e.kind = 'capture'""", (DESCRIPTION,)).fetchone()
        events = conn.execute(
            """SELECT subject, type, count(*) FROM events
               WHERE subject IN (SELECT id FROM payments WHERE description = %s)
               GROUP BY subject, type HAVING count(*) <> 1""", (DESCRIPTION,)).fetchall()
    assert twice == [], f"payments captured more than once: {twice[:5]}"
    assert captured == (PAYMENTS,), f"payments captured: {captured} of {PAYMENTS}"
    assert events == [], f"state changes with more than one event: {events[:5]}"


def _restart_through(stack: RunningStack, name: str, database_url: str) -> Child:
    """Replace the stack's ``name`` process by one whose PostgreSQL is ``database_url``."""
    old = next(c for c in stack.supervisor.children if c.name == name)
    old.process.send_signal(signal.SIGTERM)
    old.process.wait(timeout=30)
    stack.supervisor.children.remove(old)
    extra = {"PAYFLOW_DATABASE_URL": database_url}
    if name == "webhooks":
        extra.update(STACK_WEBHOOKS_ENV)
    return stack.supervisor.start(name, *COMMANDS[name], extra_env=extra)


def _cut_and_restore(outage_stack: OutageStack, started: float) -> str:
    """Cut all three relays ``CUT_AFTER_SECONDS`` into the load. Restore the ledger's once
    it has met the outage (and ``MIN_OUTAGE_SECONDS`` have passed); the others' once the
    ledger has recovered and the webhook and analytics consumers have met the outage too."""
    stack = outage_stack.stack
    time.sleep(max(0.0, started + CUT_AFTER_SECONDS - time.monotonic()))
    with psycopg.connect(stack.environment.settings.database_url) as conn:
        row = conn.execute("SELECT count(*) FILTER (WHERE status <> 'pending'), count(*) "
                           "FROM payments WHERE description = %s", (DESCRIPTION,)).fetchone()
    for proxy in outage_stack.proxies.values():
        proxy.cut()
    cut_at = time.monotonic()
    _wait_for_log(stack, "ledger", OUTAGE_LOGGED["ledger"])
    time.sleep(max(0.0, cut_at + MIN_OUTAGE_SECONDS - time.monotonic()))
    outage_stack.proxies["ledger"].restore()
    ledger_back = time.monotonic() - cut_at
    _wait_for_log(stack, "ledger", RECOVERY_LOGGED["ledger"])
    _wait_for_log(stack, "webhooks", OUTAGE_LOGGED["webhooks"])
    _wait_for_log(stack, "analytics", OUTAGE_LOGGED["analytics"])
    outage_stack.proxies["webhooks"].restore()
    outage_stack.proxies["analytics"].restore()
    return (f"cut {cut_at - started:.1f} s into the load with {row} (decided, accepted); "
            f"the ledger's database back after {ledger_back:.1f} s, the others' after "
            f"{time.monotonic() - cut_at:.1f} s")


def _wait_for_log(stack: RunningStack, name: str, line: str, count: int = 1) -> None:
    deadline = time.monotonic() + STEP_SECONDS
    path = stack.supervisor.log_dir / f"{name}.log"
    while path.read_text(errors="replace").count(line) < count:
        assert time.monotonic() < deadline, f"{name} never logged {line!r}: {stack.log(name)}"
        time.sleep(0.5)


def _pay_at(stack: RunningStack, key: str, at: float) -> int:
    time.sleep(max(0.0, at - time.monotonic()))
    card = {"number": fresh_card_number(), "exp_month": 12, "exp_year": 2031, "cvc": "123"}
    response = httpx.post(f"{stack.base_url}/v1/payments", timeout=30,
                          headers={"Authorization": f"Bearer {key}"},
                          json={"amount": 1_500, "currency": "usd", "description": DESCRIPTION,
                                "payment_method": {"type": "card", "card": card}})
    return response.status_code


def _count(statuses: list[int]) -> dict[int, int]:
    return {status: statuses.count(status) for status in sorted(set(statuses))}


def _wait_until_decided(environment: IsolatedEnvironment, expected: int) -> float:
    """Seconds until every test payment has left ``pending``."""
    started = time.monotonic()
    row: tuple[int, int] | None = None
    with psycopg.connect(environment.settings.database_url, autocommit=True) as conn:
        while time.monotonic() - started < RECOVERY_SECONDS:
            row = conn.execute("SELECT count(*) FILTER (WHERE status <> 'pending'), count(*) "
                               "FROM payments WHERE description = %s",
                               (DESCRIPTION,)).fetchone()
            if row == (expected, expected):
                return time.monotonic() - started
            time.sleep(1)
    pytest.fail(f"(decided, accepted) = {row} of {expected} payments after the outage")


def _event_ids(settings: Settings, merchant_id: str) -> set[str]:
    with psycopg.connect(settings.database_url) as conn:
        rows = conn.execute("SELECT id FROM events WHERE merchant_id = %s AND type LIKE "
                            "'payment.%%'", (merchant_id,)).fetchall()
    return {event_id for (event_id,) in rows}


def _wait_for_webhooks(receiver: Receiver, expected: set[str]) -> set[str]:
    deadline = time.monotonic() + RECOVERY_SECONDS
    while True:
        missing = expected - {json.loads(r.body)["id"] for r in receiver.received("/outage")}
        if not missing or time.monotonic() > deadline:
            return missing
        time.sleep(1)


def _wait_for_rollups(settings: Settings, merchant_id: str, expected: int) -> tuple[int, int]:
    """(approvals, captured amount) in the merchant's daily rollups, once they reach
    ``expected`` approvals or the recovery time is over."""
    deadline = time.monotonic() + RECOVERY_SECONDS
    with psycopg.connect(settings.database_url, autocommit=True) as conn:
        while True:
            row = conn.execute("SELECT coalesce(sum(approvals), 0), "
                               "coalesce(sum(captured_amount), 0) FROM analytics_rollups "
                               "WHERE merchant_id = %s AND granularity = 'day'",
                               (merchant_id,)).fetchone()
            assert row is not None
            if row[0] >= expected or time.monotonic() > deadline:
                time.sleep(2)  # anything counted twice would show now
                again = conn.execute("SELECT coalesce(sum(approvals), 0), "
                                     "coalesce(sum(captured_amount), 0) FROM analytics_rollups "
                                     "WHERE merchant_id = %s AND granularity = 'day'",
                                     (merchant_id,)).fetchone()
                assert again is not None
                return int(again[0]), int(again[1])
            time.sleep(1)
