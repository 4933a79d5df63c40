"""Supervised risk processes come back: a killed worker is restarted and decides the next
payment; a feature-log writer stuck on a consumer that no longer moves (its writes blocked
behind a table lock while PostgreSQL answers) says why and exits with status 75, is restarted,
and catches up once the block is gone. The stuck-consumer watchdog is the worker's too
(``payflow.watchdog``).

The processes run alone on a topic prefix of their own (``tests.integration.streams_driver``),
under a ``Supervisor`` with a fast ``RestartPolicy``. Marked slow: ``make test-slow``.
"""

from __future__ import annotations

import asyncio
import os
import signal
import uuid
from collections.abc import Iterator

import psycopg
import pytest

from ingest.contracts import PaymentRequested
from payflow.supervisor import Child, RestartPolicy, Supervisor, free_port
from payflow.watchdog import STUCK_EXIT_STATUS
from tests.integration.streams_driver import T0, RiskEnvironment, decide_in_order, request, risk
from tests.waiting import wait_for

pytestmark = [pytest.mark.integration, pytest.mark.slow]
"""Slow: each test starts a worker (15-30 s on a loaded machine); the stuck one took 55 s."""
__all__ = ["risk"]
FAST = RestartPolicy(first_delay_seconds=0.5, max_delay_seconds=2.0, max_quick_exits=3)
STALL_SECONDS = 6
"""The liveness limit the stuck worker runs with (the default is 60 s)."""


@pytest.fixture
def supervisor(risk: RiskEnvironment) -> Iterator[Supervisor]:
    run = uuid.uuid4().hex[:6]
    restarting = Supervisor(risk.supervisor.log_dir / f"restarting-{run}", env=risk.env,
                            restart=FAST)
    try:
        yield restarting
    finally:
        restarting.stop_all()


def test_a_stuck_feature_log_writer_exits_is_restarted_and_catches_up_once_unblocked(
    risk: RiskEnvironment, supervisor: Supervisor,
) -> None:
    risk.stop_feature_log()  # the stuck writer below is then alone in its consumer group
    _start_worker(risk, supervisor, "deciding", {})
    writer = supervisor.start(f"feature-log-{uuid.uuid4().hex[:6]}", "feature-log", extra_env={
        "PAYFLOW_LIVENESS_STALL_SECONDS": str(STALL_SECONDS),
        "PAYFLOW_LIVENESS_CHECK_SECONDS": "1"})
    first_pid = writer.process.pid
    payment = _payment()
    with psycopg.connect(risk.settings.database_url) as blocker:
        blocker.execute("LOCK TABLE feature_log IN ACCESS EXCLUSIVE MODE")
        # Decisions flow; only the feature log's consumer waits, on the lock, with no error.
        asyncio.run(decide_in_order(risk.settings, [payment], timeout_seconds=60))
        wait_for(lambda: writer.restarts >= 1, 60 + STALL_SECONDS, "a restart")
        log = writer.log_path.read_text(errors="replace")
        blocker.rollback()  # the lock goes; the restarted writer writes the log row
    assert writer.process.pid != first_pid
    assert f"exited with status {STUCK_EXIT_STATUS}" in log, log[-3000:]
    assert "liveness: the payflow-feature-log consumer is stuck (partition " in log, log[-3000:]
    assert f"no progress for {STALL_SECONDS}" in log, log[-3000:]
    wait_for(lambda: _logged(risk, payment.subject), 90, "the feature-log row")
    assert writer.alive and not supervisor.dead()


def test_a_killed_worker_is_restarted_and_decides_the_next_payment(
    risk: RiskEnvironment, supervisor: Supervisor,
) -> None:
    worker = _start_worker(risk, supervisor, "killed", {})
    os.killpg(worker.process.pid, signal.SIGKILL)
    wait_for(lambda: worker.restarts == 1 and worker.alive, 30, "a restart")
    (decided,) = asyncio.run(decide_in_order(risk.settings, [_payment()], timeout_seconds=120))
    assert decided.data.outcome
    assert f"{worker.name} exited with status -9" in worker.log_path.read_text(errors="replace")
    assert worker.restarts == 1 and not supervisor.dead()


def _start_worker(risk: RiskEnvironment, supervisor: Supervisor, role: str,
                  env: dict[str, str]) -> Child:
    name = f"{role}-{uuid.uuid4().hex[:6]}"
    worker = supervisor.start(name, "worker", extra_env={
        "PAYFLOW_WORKER_NAME": name, "PAYFLOW_WORKER_WEB_PORT": str(free_port()), **env})
    asyncio.run(decide_in_order(risk.settings, [_payment()], timeout_seconds=120))  # running
    return worker


def _payment() -> PaymentRequested:
    return request(f"pay_{uuid.uuid4().hex[:12]}", T0, merchant=f"m_{uuid.uuid4().hex[:6]}",
                   card=f"card_{uuid.uuid4().hex[:8]}")


def _logged(risk: RiskEnvironment, payment_id: str) -> bool:
    with psycopg.connect(risk.settings.database_url) as conn:
        row = conn.execute("SELECT count(*) FROM feature_log WHERE payment_id = %s",
                           (payment_id,)).fetchone()
    return bool(row and row[0] == 1)
