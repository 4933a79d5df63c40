"""Recovery and scale of the risk engine on the real stack.

A restarted worker resumes from its committed offsets with its tables restored from their
changelogs (a new worker name means an empty local RocksDB, so the restore is the changelog's);
nothing is lost, and each payment is logged once however often it is redelivered. Two workers
in one group split the partitions and decide exactly as the offline replay and the pure decision
say one worker would.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Iterator

import psycopg
import pytest
from aiokafka.admin import AIOKafkaAdminClient

from ingest.contracts import PaymentRequested
from models import registry
from models.facts import payment_facts
from models.features import vector
from models.history import replay
from payflow.cli.model import bootstrap_model
from payflow.supervisor import RestartPolicy, Supervisor, free_port
from streams.cases import RiskCase
from streams.engine import DecisionEngine
from tests.integration.streams_driver import (
    T0,
    RiskEnvironment,
    decide_in_order,
    decisions,
    produce,
    request,
    risk,
)

pytestmark = pytest.mark.integration
__all__ = ["risk"]


@pytest.fixture(scope="module")
def engine(risk: RiskEnvironment) -> Iterator[RiskEnvironment]:
    bootstrap_model(risk.settings)
    yield risk


def unique(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4().hex[:8]}"


def test_a_restarted_worker_resumes_with_its_tables_and_loses_nothing(
    engine: RiskEnvironment,
) -> None:
    merchant, card = unique("m"), unique("card")
    before = [request(unique("pay"), T0 + 600 * i, merchant=merchant, card=card,
                      customer="cus_r") for i in range(5)]
    engine.start_worker("first")
    asyncio.run(decide_in_order(engine.settings, before))
    engine.stop_worker("first")
    while_down = [request(unique("pay"), T0 + 4000 + i, merchant=merchant, card=unique("card"))
                  for i in range(5)]
    asyncio.run(produce(engine.settings, while_down))
    engine.start_worker("second")  # a new name: an empty local store, restored from changelogs
    after = request(unique("pay"), T0 + 3600, merchant=merchant, card=card, customer="cus_r")
    (resumed,) = asyncio.run(decide_in_order(engine.settings, [after]))
    assert resumed.data.features["card_history_count"] == 5
    assert resumed.data.features["card_count_24h"] == 6
    assert resumed.data.features["customer_count_1d"] == 6
    ids = [m.subject for m in [*before, *while_down, after]]
    assert set(asyncio.run(decisions(engine.settings, ids))) == set(ids)
    _wait_logged(engine, ids)
    engine.stop_worker("second")


# Fault tests (SIGKILL, rebalances with a second worker): in the slow job, `make test-slow`,
# with the other fault tests. Both failed once in a fresh-clone CI run on a loaded machine
# (decisions still missing 90 s after the restart; three group members seen instead of two).
RECOVERY_SECONDS = 180
"""How long the killed worker's successor has to decide the burst. Once in four runs at load 7
it made no progress after taking over (nothing committed on one partition with records waiting
for 60 s; its log does not say whether Faust hung, as in faust#596, or recovered slowly): the
liveness check ended it, and with nothing to restart it the 90 s wait failed. Now its
supervisor, as in production, starts it again; 180 s leaves time for the 60 s limit, the
restart and the new worker's start (15-30 s on a loaded machine)."""
@pytest.mark.slow
@pytest.mark.timeout(600)
def test_a_killed_worker_loses_no_decision_and_logs_each_payment_once(
    engine: RiskEnvironment,
) -> None:
    burst = [request(unique("pay"), T0 + i, merchant=unique("m"), card=unique("card"))
             for i in range(300)]
    engine.start_worker("crashing")
    asyncio.run(produce(engine.settings, burst))
    time.sleep(0.5)  # killed mid-stream: some decided, some not, offsets partly committed
    engine.stop_worker("crashing", hard=True)
    supervisor = Supervisor(engine.supervisor.log_dir, env=engine.env, restart=RestartPolicy())
    try:
        successor = supervisor.start("recovered", "worker", extra_env={
            "PAYFLOW_WORKER_NAME": "recovered", "PAYFLOW_WORKER_WEB_PORT": str(free_port())})
        ids = [m.subject for m in burst]
        found = asyncio.run(decisions(engine.settings, ids, timeout_seconds=RECOVERY_SECONDS))
        assert set(found) == set(ids)
        _wait_logged(engine, ids)
        print(f"the successor was restarted {successor.restarts} times")
    finally:
        supervisor.stop_all()


@pytest.mark.slow
def test_a_worker_killed_before_writing_its_local_store_recovers_it_from_the_changelogs(
    engine: RiskEnvironment,
) -> None:
    """The worker writes its tables' RocksDB about once a second (``WriteBehind``), each
    changelog offset with or after the values it covers. Killed with some records written and
    others only held, on a store whose last offset is older than its newest values, and
    restarted on the same store, it replays the changelogs from that offset: every card's
    history is whole, and the requests read again after the kill are not counted twice, not
    even the last card's six (its record keeps the features of four)."""
    merchant = unique("m")
    cards = [unique("card") for _ in range(3)]

    def paying(card: str, times: range) -> list[PaymentRequested]:
        return [request(unique("pay"), T0 + 600 * i, merchant=merchant, card=card)
                for i in times]

    engine.start_worker("same-store")
    asyncio.run(decide_in_order(engine.settings, paying(cards[0], range(2))))
    time.sleep(1.5)  # the next batch writes what is held, and the offsets acknowledged
    asyncio.run(decide_in_order(engine.settings, paying(cards[1], range(2))))
    asyncio.run(decide_in_order(engine.settings, paying(cards[2], range(6))))  # held
    engine.stop_worker("same-store", hard=True)
    engine.start_worker("same-store")
    resumed = asyncio.run(decide_in_order(engine.settings, [
        request(unique("pay"), T0 + 3600, merchant=merchant, card=card) for card in cards]))
    assert [r.data.features["card_history_count"] for r in resumed] == [2.0, 2.0, 6.0]
    assert [r.data.features["card_count_24h"] for r in resumed] == [3.0, 3.0, 7.0]
    engine.stop_worker("same-store")


def _wait_logged(engine: RiskEnvironment, ids: list[str]) -> None:
    """Every payment has exactly one feature-log row, however often it was decided (Faust is
    at-least-once: a request redelivered after a stop or crash is decided again; the ledger
    applies the first decision and the feature log keeps one row)."""
    deadline, logged = time.monotonic() + 30, 0
    while time.monotonic() < deadline and logged < len(ids):
        with psycopg.connect(engine.settings.database_url) as conn:
            row = conn.execute("SELECT count(*) FROM feature_log WHERE payment_id = ANY(%s)",
                               (ids,)).fetchone()
        logged = int(row[0]) if row else 0
        time.sleep(0.3)
    assert logged == len(ids)


@pytest.mark.slow
def test_two_workers_split_the_partitions_and_decide_as_one_would(
    engine: RiskEnvironment,
) -> None:
    engine.start_worker("left")
    engine.start_worker("right", ready=False)
    assert asyncio.run(_group_members(engine, expected=2)) == 2
    merchants = [unique("m") for _ in range(3)]
    cards = [unique("card") for _ in range(8)]
    history = [request(unique("pay"), T0 + 30 * i, merchant=merchants[i % 3],
                       card=cards[i % 8], amount=900 + 53 * i, ip=f"192.0.2.{i % 4}",
                       customer=f"cus_{i % 5}{merchants[0]}", country="US")
               for i in range(40)]
    decided = asyncio.run(decide_in_order(engine.settings, history))
    offline = [features for _, features in replay([payment_facts(m) for m in history])]
    assert [vector(d.data.features) for d in decided] == [vector(f) for f in offline]
    expected = _single_engine(engine).decide(
        [RiskCase(payment_facts(m), None, f) for m, f in zip(history, offline, strict=True)])
    assert [(d.data.outcome, d.data.fraud_score, d.data.fraud_flags) for d in decided] == \
           [(e.verdict.outcome, e.verdict.fraud_score, e.verdict.fraud_flags) for e in expected]
    engine.stop_worker("left")
    engine.stop_worker("right")


def _single_engine(engine: RiskEnvironment) -> DecisionEngine:
    key = engine.settings.card_fingerprint_key.get_secret_value().encode()
    with psycopg.connect(engine.settings.database_url) as conn:
        version = registry.champion(conn)
        assert version is not None
        return DecisionEngine(key, model=registry.load(conn, version))


async def _group_members(engine: RiskEnvironment, expected: int,
                         timeout_seconds: float = 60) -> int:
    """Members of the workers' consumer group once it is stable with ``expected`` members."""
    admin = AIOKafkaAdminClient(bootstrap_servers=engine.settings.kafka_bootstrap)
    await admin.start()
    group = f"{engine.settings.topic_prefix}payflow-streams"
    deadline, members = time.monotonic() + timeout_seconds, 0
    try:
        while time.monotonic() < deadline:
            (response,) = await admin.describe_consumer_groups([group])
            _, _, state, _, _, found = response.groups[0][:6]
            members = len(found)
            if state == "Stable" and members == expected:
                return members
            await asyncio.sleep(0.5)
    finally:
        await admin.close()
    return members
