"""Promise: a consumer that is alive but no longer moves — the analytics consumer, its writes
blocked behind a table lock while PostgreSQL answers, with no error to wait out — says why,
exits with status 75, is restarted by the stack's supervisor, and counts what it missed once
the block is gone; the rest of the pipeline decides payments meanwhile.

A stack of its own (database and topic prefix) with the liveness limit at ``STALL_SECONDS``
and a supervisor that restarts what exits. Marked slow: ``make test-slow``.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator

import httpx
import psycopg
import pytest

from payflow.supervisor import Child, RestartPolicy
from payflow.watchdog import STUCK_EXIT_STATUS
from tests.faults.load import post_card_payment
from tests.harness import IsolatedEnvironment, RunningStack, derived_environment
from tests.waiting import wait_for

pytestmark = [pytest.mark.integration, pytest.mark.slow]
STALL_SECONDS = 6
"""The liveness limit here (60 s by default)."""
RESTART = RestartPolicy(first_delay_seconds=0.5, max_delay_seconds=2.0, max_quick_exits=3)


@pytest.fixture
def stack(environment: IsolatedEnvironment) -> Iterator[RunningStack]:
    isolated = derived_environment(environment, f"stuck{uuid.uuid4().hex[:4]}")
    isolated.env["PAYFLOW_LIVENESS_STALL_SECONDS"] = str(STALL_SECONDS)
    isolated.env["PAYFLOW_LIVENESS_CHECK_SECONDS"] = "1"
    try:
        running = RunningStack.start(isolated, restart=RESTART)
        try:
            yield running
        finally:
            running.stop()
    finally:
        isolated.teardown()


def test_a_stuck_analytics_consumer_exits_is_restarted_and_catches_up(
    stack: RunningStack,
) -> None:
    key = stack.environment.create_merchant("Stuck Merchant").api_key
    analytics = next(c for c in stack.supervisor.children if c.name == "analytics")
    url = stack.environment.settings.database_url
    wait_for(lambda: _claims(url) > 0, 60, "the warm-up payment counted")
    before = _claims(url)
    with psycopg.connect(url) as blocker:
        blocker.execute("LOCK TABLE analytics_processed_messages IN ACCESS EXCLUSIVE MODE")
        _pay(stack, key)  # decided and applied: only analytics waits
        wait_for(lambda: analytics.restarts >= 1, 60 + STALL_SECONDS, "a restart")
        log = stack.log("analytics")
        _pay(stack, key)
        blocker.rollback()
    assert f"analytics exited with status {STUCK_EXIT_STATUS}" in log, log[-3000:]
    assert "liveness: the analytics consumer is stuck (partition " in log, log[-3000:]
    assert f"no progress for {STALL_SECONDS}" in log, log[-3000:]
    wait_for(lambda: _claims(url) > before, 90, "the analytics consumer to catch up")
    assert _alive_once(stack, analytics)
    assert not stack.supervisor.dead()


def _pay(stack: RunningStack, key: str) -> None:
    """Create a payment and wait until it is decided."""
    created = post_card_payment(stack, key, 1200)
    assert created.status_code in (201, 202), created.text
    payment_id = created.json()["transaction"]["id"]
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        status = httpx.get(f"{stack.base_url}/v1/payments/{payment_id}", timeout=10,
                           headers={"Authorization": f"Bearer {key}"}).json()["status"]
        if status != "pending":
            return
        time.sleep(0.3)
    pytest.fail(f"payment {payment_id} not decided within 60 s", pytrace=False)


def _claims(database_url: str) -> int:
    with psycopg.connect(database_url) as conn:
        row = conn.execute("SELECT count(*) FROM analytics_processed_messages").fetchone()
    return int(row[0]) if row else 0


def _alive_once(stack: RunningStack, analytics: Child) -> bool:
    """The restarted analytics consumer runs, and is the stack's only one."""
    return analytics.alive and [c.name for c in stack.supervisor.children].count("analytics") == 1
