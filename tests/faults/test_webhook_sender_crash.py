"""Promise: killing the webhook sender with SIGKILL in the middle of its batches, under load,
loses no webhook — after a restart every event of every accepted payment reaches every
subscribed endpoint at least once (a retry keeps its ``webhook-id``), and every delivery ends
``succeeded``.

The sender is killed while payments are still arriving and deliveries are both recorded and
not yet sent; events published while it is down wait in Kafka (offsets are committed only after
the deliveries are recorded) and attempts it held when it died are due again when their lease
ends. Runs its own stack on its own database and topics, and is marked slow: ``make test-slow``.
"""

from __future__ import annotations

import concurrent.futures
import json
import os
import signal
import time
import uuid
from collections.abc import Iterator

import httpx
import psycopg
import pytest

from tests.faults.load import post_card_payment
from tests.harness import IsolatedEnvironment, RunningStack, derived_environment
from tests.webhooks_support import STACK_WEBHOOKS_ENV
from tests.webhooks_support.receiver import Receiver

pytestmark = [pytest.mark.integration, pytest.mark.slow]
PAYMENTS = 150
PATHS = ("/crash-a", "/crash-b")
KILL_AFTER_RECEIVED = 40
"""Deliveries the receiver has seen when the sender is killed: batches are in flight by then."""
RECOVERY_SECONDS = 150.0
"""After the restart: the 40 s lease of the attempts the dead sender held, and the backlog."""


@pytest.fixture
def stack(environment: IsolatedEnvironment) -> Iterator[RunningStack]:
    isolated = derived_environment(environment, f"whcrash{uuid.uuid4().hex[:4]}")
    try:
        running = RunningStack.start(isolated)
        try:
            yield running
        finally:
            running.stop()
    finally:
        isolated.teardown()


def test_a_webhook_sender_killed_mid_batch_delivers_every_webhook_after_restart(
    stack: RunningStack,
) -> None:
    receiver = Receiver()
    try:
        created = stack.environment.create_merchant("Webhook Crash Merchant")
        headers = {"Authorization": f"Bearer {created.api_key}"}
        for path in PATHS:
            endpoint = httpx.post(f"{stack.base_url}/v1/webhook_endpoints", headers=headers,
                                  json={"url": receiver.url(path)}, timeout=20)
            assert endpoint.status_code == 201, endpoint.text
        with concurrent.futures.ThreadPoolExecutor(16) as pool:
            sent = pool.map(lambda _: post_card_payment(stack, created.api_key, 1_200).status_code,
                            range(PAYMENTS))
            at_kill = _kill_sender_mid_batch(stack, receiver, created.merchant_id)
            statuses = list(sent)
        assert set(statuses) <= {201, 202}, statuses
        stack.supervisor.start("webhooks", "webhooks", extra_env=STACK_WEBHOOKS_ENV)
        expected = _event_ids(stack, created.merchant_id)
        assert len(expected) == 2 * PAYMENTS, len(expected)  # authorized, captured
        missing = _wait_for_every_event(receiver, expected)
        assert missing == {}, (f"never delivered after the restart ({at_kill}): "
                               f"{ {p: sorted(m)[:5] for p, m in missing.items()} }")
        assert _unfinished_deliveries(stack, created.merchant_id) == []
        for path in PATHS:  # at least once: a retry reuses the delivery's webhook-id
            ids = [r.headers["webhook-id"] for r in receiver.received(path)]
            bodies = {json.loads(r.body)["id"] for r in receiver.received(path)}
            assert len(set(ids)) == len(bodies) == len(expected), (path, len(ids))
    finally:
        receiver.close()


def _kill_sender_mid_batch(stack: RunningStack, receiver: Receiver, merchant_id: str) -> str:
    """SIGKILL the sender once deliveries flow, and check that work was left: deliveries not
    yet sent; what was received and pending at that moment."""
    receiver.wait_for(PATHS[0], KILL_AFTER_RECEIVED, timeout=60)
    sender = next(c for c in stack.supervisor.children if c.name == "webhooks")
    os.kill(sender.process.pid, signal.SIGKILL)
    sender.process.wait(timeout=10)
    stack.supervisor.children.remove(sender)
    received = sum(len(receiver.received(path)) for path in PATHS)
    with psycopg.connect(stack.environment.settings.database_url) as conn:
        row = conn.execute("SELECT count(*) FILTER (WHERE status <> 'succeeded'), count(*) "
                           "FROM webhook_deliveries WHERE merchant_id = %s",
                           (merchant_id,)).fetchone()
    assert row is not None
    unfinished, recorded = row
    total = 2 * PAYMENTS * len(PATHS)
    assert received < total and (unfinished > 0 or recorded < total), (received, recorded)
    print(f"webhook sender killed: {received} of {total} received, {recorded} recorded, "
          f"{unfinished} not yet succeeded")
    return (f"at the kill: {received} received, {recorded} deliveries recorded, "
            f"{unfinished} not yet succeeded")


def _event_ids(stack: RunningStack, merchant_id: str) -> set[str]:
    """Every public event of the merchant's payments, once the ledger has applied them all."""
    deadline = time.monotonic() + 120
    with psycopg.connect(stack.environment.settings.database_url, autocommit=True) as conn:
        while True:
            pending = conn.execute("SELECT count(*) FROM payments WHERE merchant_id = %s AND "
                                   "status = 'pending'", (merchant_id,)).fetchone()
            if (pending and pending[0] == 0) or time.monotonic() > deadline:
                break
            time.sleep(1)
        rows = conn.execute("SELECT id FROM events WHERE merchant_id = %s AND type LIKE "
                            "'payment.%%'", (merchant_id,)).fetchall()
    return {event_id for (event_id,) in rows}


def _wait_for_every_event(receiver: Receiver, expected: set[str]) -> dict[str, set[str]]:
    deadline = time.monotonic() + RECOVERY_SECONDS
    while True:
        missing = {path: expected - {json.loads(r.body)["id"] for r in receiver.received(path)}
                   for path in PATHS}
        missing = {path: ids for path, ids in missing.items() if ids}
        if not missing or time.monotonic() > deadline:
            return missing
        time.sleep(1)


def _unfinished_deliveries(stack: RunningStack, merchant_id: str) -> list[tuple[str, str]]:
    deadline = time.monotonic() + 30
    with psycopg.connect(stack.environment.settings.database_url, autocommit=True) as conn:
        while True:
            rows = conn.execute("SELECT id, status FROM webhook_deliveries WHERE merchant_id "
                                "= %s AND status <> 'succeeded'", (merchant_id,)).fetchall()
            if not rows or time.monotonic() > deadline:
                return [(row[0], row[1]) for row in rows]
            time.sleep(1)
