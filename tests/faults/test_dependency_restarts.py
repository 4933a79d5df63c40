"""Promise: while Kafka, PostgreSQL or Redis is down the API answers 503 with ``Retry-After`` (or
201/202 ``pending``), never 500 and never hangs (its waits past the budget are bounded); no charge
is lost or made twice — a 503'd request retried with its Idempotency-Key is charged exactly once —
and after each dependency is back the pipeline catches up: every accepted payment is decided
once, with its postings once, nothing is dead-lettered and reconciliation passes.

The stack runs on Kafka, PostgreSQL and Redis of its own (``private_services``: the shared ones
serve everyone else's tests), under a steady open-loop load from a thread pool. Each dependency
in turn is killed abruptly — Kafka and Redis with SIGKILL, PostgreSQL with an immediate shutdown
(a crash: no checkpoint, recovery at the next start) — and started again on the same data while
payments keep arriving. Every answer is recorded; the per-phase figures are printed (``-s``) and
every attempt is written to ``attempts.json`` beside the processes' logs. The processes run
under a supervisor that restarts one that exits, as in production, with the liveness check at
``LIVENESS_STALL_SECONDS``: a worker stuck after a Kafka restart exits and comes back; the
restarts are printed.

A client here retries what the API tells it to: a 503/429 with ``Retry-After`` (at least that
long, backing off), a 409 ``request_in_progress`` on a retry (the key of an attempt that could
not release it while PostgreSQL was down; never on a first attempt), and a broken connection
(counted). A timeout, a 500, or any other answer fails the test.

Marked slow: ``make test-slow``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path

import httpx
import psycopg
import pytest
from psycopg import AsyncConnection

from ledger.reconcile import reconcile
from payflow.settings import Settings
from payflow.supervisor import RestartPolicy
from tests.cards import fresh_card_number
from tests.faults.load import dead_letters
from tests.faults.private_services import PrivateServices, private_services
from tests.harness import RUN_ID, IsolatedEnvironment, RunningStack, prepare_environment

pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.timeout(720)]

RATE_PER_SECOND = 8.0
"""New payments offered per second, whatever the answers (open loop)."""
MAX_OPEN_CHARGES = 200
"""Charges being sent or retried at once; past it a new charge is skipped (and counted)."""
DOWN_SECONDS = 8.0
"""How long each dependency stays dead before it is started again."""
BUDGET_SECONDS = 3.0
"""The API's decision budget in this stack (PAYFLOW_DECISION_BUDGET_SECONDS)."""
ANSWER_LIMIT_SECONDS = 20.0
"""No answer may take longer. The API's own waits are bounded at the budget plus 2.5 s (2 s for
a PostgreSQL connection, 0.5 s to release an idempotency key); the unbounded ones this test
found took 30 s (a Kafka send with the broker down, the pool's default wait). Between the two:
on this 2-core machine shared with parallel test runs (load about 20), every answer — even an
immediate 503 — was delayed up to 12-15 s in two of five full runs; the slowest answer of each
phase is printed."""
RECOVERY_LIMIT_SECONDS = 120.0
"""After a dependency is back, a new payment must be decided within this."""
LIVENESS_STALL_SECONDS = 30.0
"""The processes' liveness limit here (60 s by default): a worker that hangs after the Kafka
restart (faust#596, one Kafka restart in six before the check) exits and its supervisor starts
it again, within ``RECOVERY_LIMIT_SECONDS``."""
RETRY_FOR_SECONDS = 240.0
"""A client gives up retrying a charge this long after its first attempt."""
CATCH_UP_LIMIT_SECONDS = 150.0
"""After the load stops: every accepted payment decided (the outbox sweep re-sends after 30 s)."""
DEPENDENCIES = ("kafka", "postgres", "redis")
DESCRIPTION = "dependency restart test"
RETRYABLE = {429, 503}
CONNECTION_ERRORS = {"ConnectError", "ReadError", "WriteError", "RemoteProtocolError"}


@dataclass(frozen=True)
class Attempt:
    phase: str
    sent_at: float
    """Seconds since the traffic started."""
    seconds: float
    status: int
    """The HTTP status, or 0 when no answer came (connection error, client timeout)."""
    retry_after: str | None
    code: str | None
    payment_id: str | None


@dataclass
class Charge:
    """One payment a client wants made, under one Idempotency-Key, with every attempt."""

    key: str
    attempts: list[Attempt] = field(default_factory=list)

    @property
    def accepted(self) -> bool:
        return bool(self.attempts) and 200 <= self.attempts[-1].status < 300

    @property
    def payment_ids(self) -> set[str]:
        return {a.payment_id for a in self.attempts if a.payment_id is not None}


class Traffic:
    """Offers RATE_PER_SECOND new charges from a scheduler thread; each charge is posted from a
    pool thread and retried after ``Retry-After`` until it is accepted (bounded in time)."""

    def __init__(self, base_url: str, api_key: str) -> None:
        self.base_url = base_url
        self.headers = {"Authorization": f"Bearer {api_key}"}
        # Idle connections are dropped before uvicorn's 5 s keep-alive ends: reusing one the
        # server is closing fails the request in the client (a race, not an API answer).
        self.client = httpx.Client(timeout=30, limits=httpx.Limits(
            max_connections=MAX_OPEN_CHARGES, max_keepalive_connections=64,
            keepalive_expiry=2.0))
        self.phase = "baseline"
        self.charges: list[Charge] = []
        self.skipped: Counter[str] = Counter()
        self.started = time.monotonic()
        self._open = threading.BoundedSemaphore(MAX_OPEN_CHARGES)
        self._stop = threading.Event()
        self._abandon = threading.Event()
        self._pool = ThreadPoolExecutor(MAX_OPEN_CHARGES, thread_name_prefix="charge")
        self._scheduler = threading.Thread(target=self._offer, name="traffic", daemon=True)

    def __enter__(self) -> Traffic:
        self._scheduler.start()
        return self

    def __exit__(self, kind: type[BaseException] | None, *exc: object) -> None:
        if kind is not None:  # the test failed: do not retry for minutes more
            self._abandon.set()
        self.stop()

    def now(self) -> float:
        return time.monotonic() - self.started

    def stop(self) -> None:
        """Stop offering; wait for open charges to be accepted or given up."""
        self._stop.set()
        self._scheduler.join(timeout=10)
        self._pool.shutdown(wait=True)
        self.client.close()

    def _offer(self) -> None:
        interval = 1.0 / RATE_PER_SECOND
        next_at = time.monotonic()
        while not self._stop.is_set():
            if self._open.acquire(blocking=False):
                charge = Charge(uuid.uuid4().hex)
                self.charges.append(charge)
                self._pool.submit(self._charge, charge)
            else:
                self.skipped[self.phase] += 1
            next_at += interval
            self._stop.wait(max(0.0, next_at - time.monotonic()))

    def _charge(self, charge: Charge) -> None:
        try:
            body = {"amount": 1_500, "currency": "usd", "description": DESCRIPTION,
                    "metadata": {"charge": charge.key},
                    "payment_method": {"type": "card", "card": {
                        "number": fresh_card_number(), "exp_month": 12, "exp_year": 2031,
                        "cvc": "123"}}}
            first = time.monotonic()
            while time.monotonic() - first < RETRY_FOR_SECONDS and not self._abandon.is_set():
                attempt = self._post(charge.key, body)
                charge.attempts.append(attempt)
                if not _retry_later(attempt):
                    return
                self._abandon.wait(_backoff(attempt, len(charge.attempts)))
        finally:
            self._open.release()

    def _post(self, key: str, body: dict[str, object]) -> Attempt:
        phase, sent_at = self.phase, self.now()
        started = time.monotonic()
        try:
            response = self.client.post(f"{self.base_url}/v1/payments", json=body,
                                        headers={**self.headers, "Idempotency-Key": key})
        except httpx.HTTPError as error:  # a timeout is judged a hang; see _retry_later
            return Attempt(phase, sent_at, time.monotonic() - started, 0, None,
                           type(error).__name__, None)
        seconds = time.monotonic() - started
        payload = _json(response)
        transaction = payload.get("transaction") if 200 <= response.status_code < 300 else None
        problem = payload.get("error") if response.status_code >= 400 else None
        return Attempt(phase, sent_at, seconds, response.status_code,
                       response.headers.get("retry-after"),
                       problem.get("code") if isinstance(problem, dict) else None,
                       transaction.get("id") if isinstance(transaction, dict) else None)


def _retry_later(attempt: Attempt) -> bool:
    """A client retries what the API says to retry: a 503/429 (or an in-progress 409) that
    carries ``Retry-After``; and, under its Idempotency-Key, a request whose connection broke
    (the test counts those, and fails on any timeout). Anything else is final."""
    if attempt.status == 0:
        return attempt.code in CONNECTION_ERRORS
    retryable = attempt.status in RETRYABLE or (
        attempt.status == 409 and attempt.code == "request_in_progress")
    return retryable and attempt.retry_after is not None


def _backoff(attempt: Attempt, attempts: int) -> float:
    """Seconds before the next attempt: at least ``Retry-After``, doubling from 1 s up to 8 s
    with jitter, as a well-behaved client does (so retries do not synchronize into a storm)."""
    floor = float(attempt.retry_after or 1)
    return max(floor, min(8.0, 2.0 ** (attempts - 1)) * random.uniform(0.5, 1.0))


def _json(response: httpx.Response) -> dict[str, object]:
    with contextlib.suppress(ValueError):
        payload = response.json()
        if isinstance(payload, dict):
            return payload
    return {}


@dataclass
class Outage:
    dependency: str
    down_at: float
    up_at: float = 0.0
    decided_again_at: float | None = None
    """When a payment sent after the restart was first seen decided (traffic seconds)."""


@pytest.fixture
def outage_stack() -> Iterator[tuple[PrivateServices, RunningStack]]:
    with private_services(Settings().home, f"restarts-{RUN_ID}") as services:
        # Its database and topics die with the private services: no environment teardown.
        environment = prepare_environment(services.settings)
        environment.env["PAYFLOW_DECISION_BUDGET_SECONDS"] = str(BUDGET_SECONDS)
        environment.env["PAYFLOW_LIVENESS_STALL_SECONDS"] = str(LIVENESS_STALL_SECONDS)
        # As in production, a process that exits is restarted (nothing here kills one).
        stack = RunningStack.start(environment, restart=RestartPolicy())
        try:
            yield services, stack
        finally:
            stack.stop()


def test_kafka_postgres_and_redis_restarts_under_load_lose_and_duplicate_no_charge(
    outage_stack: tuple[PrivateServices, RunningStack],
) -> None:
    services, stack = outage_stack
    environment = stack.environment
    api_key = environment.create_merchant("Restart Merchant").api_key
    outages: list[Outage] = []
    test_started = time.monotonic()
    traffic = Traffic(stack.base_url, api_key)
    try:
        with traffic:
            time.sleep(5)
            for dependency in DEPENDENCIES:
                outages.append(_outage(services, stack, traffic, dependency))
            traffic.phase = "after"
            time.sleep(3)
    finally:
        _report_traffic(traffic, outages)
        _save_attempts(traffic, stack.supervisor.log_dir / "attempts.json")
    load_ended = time.monotonic()

    problems = _answer_problems(traffic.charges)
    assert problems == [], "\n".join(problems[:30])
    decided = _wait_until_decided(environment, traffic.charges)
    print(f"\ncatch-up: every accepted payment decided {decided:.1f} s after the load stopped; "
          f"test body {time.monotonic() - test_started:.0f} s; restarts by the supervisor: "
          f"{ {c.name: c.restarts for c in stack.supervisor.children} }")
    _assert_none_given_up(stack)
    _assert_charged_once(environment, traffic.charges)
    report = asyncio.run(_reconcile(environment.settings))
    assert report.ok, report.problems  # type: ignore[attr-defined]
    letters = asyncio.run(dead_letters(environment.settings))
    assert letters == [], f"dead-lettered during the outages: {letters[:5]}"
    assert time.monotonic() - load_ended < CATCH_UP_LIMIT_SECONDS + 60
    # Last, so that a run shows the money's outcome even when answers were slow.
    slow = _slow_answers(traffic.charges)
    assert slow == [], "\n".join(slow[:30])


def _outage(services: PrivateServices, stack: RunningStack, traffic: Traffic,
            dependency: str) -> Outage:
    service = services.by_name(dependency)
    traffic.phase = f"{dependency} down"
    outage = Outage(dependency, traffic.now())
    service.kill()
    time.sleep(DOWN_SECONDS)
    service.start()
    outage.up_at = traffic.now()
    traffic.phase = f"{dependency} back"
    deadline = time.monotonic() + RECOVERY_LIMIT_SECONDS
    while time.monotonic() < deadline:
        _assert_none_given_up(stack)
        decided_at = _first_decided_after(stack.environment, traffic, outage.up_at)
        if decided_at is not None:
            outage.decided_again_at = decided_at
            return outage
        time.sleep(0.5)
    pytest.fail(f"no payment sent after {dependency} restarted was decided within "
                f"{RECOVERY_LIMIT_SECONDS:.0f} s; logs in {stack.supervisor.log_dir}")


def _first_decided_after(environment: IsolatedEnvironment, traffic: Traffic,
                         since: float) -> float | None:
    """When the first payment sent after ``since`` answered decided (201), or was seen decided
    in PostgreSQL; None if none is yet."""
    fresh = [c for c in list(traffic.charges) if c.attempts and c.attempts[0].sent_at >= since]
    answered = [a.sent_at + a.seconds for c in fresh for a in c.attempts if a.status == 201]
    if answered:
        return min(answered)
    keys = [c.key for c in fresh if c.accepted]
    if not keys:
        return None
    with contextlib.suppress(psycopg.OperationalError), psycopg.connect(
            environment.settings.database_url, connect_timeout=3) as conn:
        row = conn.execute("SELECT count(*) FROM payments WHERE status <> 'pending' "
                           "AND metadata->>'charge' = ANY(%s)", (keys,)).fetchone()
        if row and row[0] > 0:
            return traffic.now()
    return None


def _answer_problems(charges: list[Charge]) -> list[str]:
    problems = []
    for charge in charges:
        for attempt in charge.attempts:
            if attempt.status == 0 and attempt.code not in CONNECTION_ERRORS:
                problems.append(f"{charge.key}: no answer ({attempt.code}) after "
                                f"{attempt.seconds:.1f} s in '{attempt.phase}'")
            elif attempt.status >= 500 and attempt.status != 503:
                problems.append(f"{charge.key}: {attempt.status} in '{attempt.phase}'")
            elif attempt.status == 409 and attempt is charge.attempts[0]:
                problems.append(f"{charge.key}: 409 on a first attempt in '{attempt.phase}'")
            elif attempt.status >= 300 and not _retry_later(attempt):
                problems.append(f"{charge.key}: {attempt.status} {attempt.code} without "
                                f"Retry-After (or not retryable) in '{attempt.phase}'")
        if not charge.accepted:
            problems.append(f"{charge.key}: never accepted in {len(charge.attempts)} attempts")
        if len(charge.payment_ids) > 1:
            problems.append(f"{charge.key}: answered with payments {sorted(charge.payment_ids)}")
    return problems


def _slow_answers(charges: list[Charge]) -> list[str]:
    return [f"{charge.key}: {attempt.status} {attempt.code or ''} after {attempt.seconds:.1f} s "
            f"(budget {BUDGET_SECONDS} s, limit {ANSWER_LIMIT_SECONDS} s) in '{attempt.phase}'"
            for charge in charges for attempt in charge.attempts
            if attempt.status and attempt.seconds > ANSWER_LIMIT_SECONDS]


def _wait_until_decided(environment: IsolatedEnvironment, charges: list[Charge]) -> float:
    started = time.monotonic()
    row: tuple[int, int] | None = (0, 0)
    with psycopg.connect(environment.settings.database_url, autocommit=True) as conn:
        while time.monotonic() - started < CATCH_UP_LIMIT_SECONDS:
            row = conn.execute(
                "SELECT count(*) FILTER (WHERE status <> 'pending'), count(*) FROM payments "
                "WHERE description = %s", (DESCRIPTION,)).fetchone()
            assert row is not None
            if row[0] == row[1] >= len(charges):
                return time.monotonic() - started
            time.sleep(1)
    pytest.fail(f"{row[0] if row else 0} of {len(charges)} payments decided "
                f"{CATCH_UP_LIMIT_SECONDS:.0f} s after the load stopped")


def _assert_charged_once(environment: IsolatedEnvironment, charges: list[Charge]) -> None:
    """One payment per charge — the one the API answered with — and its effects once."""
    with psycopg.connect(environment.settings.database_url) as conn:
        rows = conn.execute("SELECT metadata->>'charge', id FROM payments "
                            "WHERE description = %s", (DESCRIPTION,)).fetchall()
        twice = conn.execute(
            """SELECT e.payment_id, count(*) FROM journal_entries e
               JOIN payments p ON p.id = e.payment_id
               WHERE p.description = %s AND e.kind = 'capture'
               GROUP BY e.payment_id HAVING count(*) <> 1""", (DESCRIPTION,)).fetchall()
        events = conn.execute(
            """SELECT subject, type, count(*) FROM events
               WHERE subject IN (SELECT id FROM payments WHERE description = %s)
               GROUP BY subject, type HAVING count(*) <> 1""", (DESCRIPTION,)).fetchall()
    stored: dict[str, list[str]] = {}
    for key, payment_id in rows:
        stored.setdefault(key, []).append(payment_id)
    made_twice = {key: ids for key, ids in stored.items() if len(ids) > 1}
    lost = [c.key for c in charges if c.key not in stored]
    strays = [key for key in stored if key not in {c.key for c in charges}]
    mismatched = [c.key for c in charges
                  if c.key in stored and not c.payment_ids <= set(stored[c.key])]
    assert made_twice == {}, f"charges made twice: {list(made_twice.items())[:5]}"
    assert lost == [], f"accepted charges with no payment: {lost[:5]}"
    assert strays == [], f"payments no client asked for: {strays[:5]}"
    assert mismatched == [], f"answers naming another payment: {mismatched[:5]}"
    assert twice == [], f"payments captured more than once: {twice[:5]}"
    assert events == [], f"state changes with more than one event: {events[:5]}"


def _assert_none_given_up(stack: RunningStack) -> None:
    dead = stack.supervisor.dead()
    if dead:
        pytest.fail("payflow processes kept exiting (the supervisor gave up): " + "; ".join(
            f"{c.name} (exit {c.process.returncode}): {c.log_path}" for c in dead)
            + "\n" + stack.log(dead[0].name)[-3000:])


def _report_traffic(traffic: Traffic, outages: list[Outage]) -> None:
    phases: dict[str, Counter[str]] = {}
    slowest: dict[str, float] = {}
    for charge in traffic.charges:
        for number, attempt in enumerate(charge.attempts):
            kind = "retry" if number else "first"
            code = f" {attempt.code}" if attempt.code else ""
            phases.setdefault(attempt.phase, Counter())[f"{kind} {attempt.status}{code}"] += 1
            slowest[attempt.phase] = max(slowest.get(attempt.phase, 0.0), attempt.seconds)
    print(f"\n{len(traffic.charges)} charges offered at {RATE_PER_SECOND:g}/s; "
          f"skipped (too many open): {dict(traffic.skipped)}")
    for phase, counts in phases.items():
        print(f"  {phase:<16} {dict(sorted(counts.items()))}  slowest answer "
              f"{slowest[phase]:.1f} s")
    for outage in outages:
        recovered = (f"{outage.decided_again_at - outage.up_at:.1f} s"
                     if outage.decided_again_at is not None else "never")
        print(f"  {outage.dependency}: down {outage.up_at - outage.down_at:.1f} s "
              f"(incl. its start-up); first new payment decided {recovered} after it was back")


def _save_attempts(traffic: Traffic, path: Path) -> None:
    """Every attempt of every charge, beside the processes' logs, for the post-mortem."""
    path.write_text(json.dumps({c.key: [asdict(a) for a in c.attempts]
                                for c in traffic.charges}, indent=1))
    print(f"  attempts: {path}")


async def _reconcile(settings: Settings) -> object:
    async with await AsyncConnection.connect(settings.database_url, autocommit=True) as conn:
        return await reconcile(conn, settings)
