"""The risk engine on real Kafka and PostgreSQL: crafted payment sequences in, features, flags
and decisions out; dead letters; the feature log; hot promotion and degraded scoring.

One stream worker (a process) serves the module, scoring with a model bootstrapped into the
registry. Each test uses its own merchant, cards and IPs, so their features do not mix.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime

import psycopg
import pytest

from ingest.contracts import DisputeEvent, DisputeObject
from ingest.sandbox import SandboxCard
from ingest.topics import PAYMENT_EVENTS
from models import registry
from models.decision import AMOUNT_SPIKE, BLOCKED_CARD, CARD_TESTING
from models.facts import payment_facts
from models.features import vector
from models.history import replay
from models.synthetic import generate
from models.training import examples, train
from payflow.cli.model import bootstrap_model
from tests.integration.streams_driver import (
    T0,
    RiskEnvironment,
    dead_letters,
    decide_in_order,
    produce,
    request,
    risk,
)

pytestmark = pytest.mark.integration
__all__ = ["risk"]
HOUR, DAY = 3600.0, 86_400.0


@pytest.fixture(scope="module")
def worker(risk: RiskEnvironment) -> Iterator[RiskEnvironment]:
    assert bootstrap_model(risk.settings) == 1
    risk.start_worker("decisions")
    yield risk
    risk.stop_worker("decisions")


def unique(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4().hex[:8]}"


def test_a_normal_customer_is_approved_with_a_low_score(worker: RiskEnvironment) -> None:
    merchant, card, customer = unique("m"), unique("card"), unique("cus")
    history = [request(unique("pay"), T0 + day * 86_400 + 600, merchant=merchant, card=card,
                       amount=2500 + 100 * day, ip="203.0.113.7", customer=customer,
                       country="US") for day in range(3)]
    decided = asyncio.run(decide_in_order(worker.settings, history))
    for message in decided:
        decision = message.data
        assert (decision.outcome, decision.risk_level, decision.fraud_flags) == \
               ("approve", "low", ())
        assert decision.model_version == "fraud-v1" and not decision.degraded
    assert decided[-1].data.features["customer_count_7d"] == 3


def test_the_sandbox_fraud_card_is_blocked(worker: RiskEnvironment) -> None:
    fraud_card = worker.fingerprint(SandboxCard.ALWAYS_BLOCKED.value)
    (decided,) = asyncio.run(decide_in_order(worker.settings, [
        request(unique("pay"), T0, merchant=unique("m"), card=fraud_card, amount=1000)]))
    decision = decided.data
    assert (decision.outcome, decision.decline_code, decision.risk_level) == \
           ("decline", "fraudulent", "high")
    assert decision.fraud_score >= 90 and BLOCKED_CARD in decision.fraud_flags


def test_other_sandbox_cards_are_scored_normally(worker: RiskEnvironment) -> None:
    card = worker.fingerprint(SandboxCard.GENERIC_DECLINE.value)
    (decided,) = asyncio.run(decide_in_order(worker.settings, [
        request(unique("pay"), T0, merchant=unique("m"), card=card, amount=1000)]))
    assert decided.data.outcome == "approve" and decided.data.decline_code is None


def test_a_card_testing_burst_from_one_ip_is_flagged(worker: RiskEnvironment) -> None:
    merchant, ip = unique("m"), "198.51.100.23"
    burst = [request(unique("pay"), T0 + 3 * i, merchant=merchant, card=unique("card"),
                     amount=100 + i, ip=ip) for i in range(12)]
    decided = asyncio.run(decide_in_order(worker.settings, burst))
    assert [d.data.features["origin_distinct_cards_1h"] for d in decided] == \
           [float(n) for n in range(1, 13)]
    assert decided[0].data.outcome == "approve"
    for message in decided[4:]:
        assert CARD_TESTING in message.data.fraud_flags
    assert decided[-1].data.outcome == "decline"
    assert decided[-1].data.decline_code == "fraudulent"


def test_a_sudden_amount_spike_on_a_steady_card_is_flagged(worker: RiskEnvironment) -> None:
    merchant, card = unique("m"), unique("card")
    steady = [request(unique("pay"), T0 + i * 6 * HOUR, merchant=merchant, card=card,
                      amount=2500 + 50 * (i % 2), customer="steady") for i in range(6)]
    spike = request(unique("pay"), T0 + 37 * HOUR, merchant=merchant, card=card,
                    amount=250_000, customer="steady")
    decided = asyncio.run(decide_in_order(worker.settings, [*steady, spike]))
    assert all(d.data.fraud_flags == () for d in decided[:-1])
    last = decided[-1].data
    assert last.features["amount_zscore"] >= 8
    assert AMOUNT_SPIKE in last.fraud_flags and last.outcome in ("review", "decline")


def test_streamed_features_equal_the_offline_replay(worker: RiskEnvironment) -> None:
    merchant = unique("m")
    cards, ips = [unique("card") for _ in range(5)], ["192.0.2.1", "192.0.2.2"]
    history = [request(unique("pay"), T0 + 40 * i, merchant=merchant, card=cards[i % 5],
                       amount=1000 + 37 * i, ip=ips[i % 2], customer=f"cus_{i % 3}{merchant}",
                       country=("US", "FR")[i % 7 == 6]) for i in range(30)]
    decided = asyncio.run(decide_in_order(worker.settings, history))
    expected = [vector(f) for _, f in replay([payment_facts(m) for m in history])]
    assert [vector(d.data.features) for d in decided] == expected


def test_a_poison_request_is_dead_lettered_and_the_stream_goes_on(
    worker: RiskEnvironment,
) -> None:
    poison = [b"{not json", b'{"type": "payment.requested.v1"}']
    asyncio.run(produce(worker.settings, [(b"poison", value) for value in poison]))
    letters = asyncio.run(dead_letters(worker.settings, 2))
    assert sorted(record.value for record in letters) == sorted(poison)
    assert all(dict(record.headers)["reason"] for record in letters)
    (after,) = asyncio.run(decide_in_order(worker.settings, [
        request(unique("pay"), T0, merchant=unique("m"), card=unique("card"))]))
    assert after.data.outcome == "approve"


def test_a_dispute_becomes_a_label_in_the_merchants_fraud_share(worker: RiskEnvironment) -> None:
    merchant = unique("m")
    paid = [request(unique("pay"), T0 + i, merchant=merchant, card=unique("card"))
            for i in range(4)]
    asyncio.run(decide_in_order(worker.settings, paid))
    dispute = DisputeEvent(source="test", merchant_id=merchant, subject=paid[0].subject,
                           time=datetime.fromtimestamp(T0 + 8 * DAY, UTC), data=DisputeObject(
        id=unique("dp"), payment_id=paid[0].subject, merchant_id=merchant, amount=2500,
        currency="USD", reason="fraudulent", card_fingerprint=paid[0].data.payment_method.card
        .fingerprint if paid[0].data.payment_method.card else None,
        payment_created_at=paid[0].time, created_at=datetime.fromtimestamp(T0 + 8 * DAY, UTC)))
    asyncio.run(produce(worker.settings, [(dispute.key(), dispute.encode())],
                        topic=PAYMENT_EVENTS.name_for(worker.settings.topic_prefix)))
    deadline, share = time.monotonic() + 30, 0.0
    while share == 0.0 and time.monotonic() < deadline:
        (later,) = asyncio.run(decide_in_order(worker.settings, [
            request(unique("pay"), T0 + 10 * DAY, merchant=merchant, card=unique("card"))]))
        share = later.data.features["merchant_fraud_share_28d"]
    assert share == 0.25 and later.data.features["merchant_payments_28d"] == 4


def test_every_decision_is_in_the_feature_log_with_its_features(
    worker: RiskEnvironment,
) -> None:
    history = [request(unique("pay"), T0 + i, merchant=unique("m"), card=unique("card"))
               for i in range(3)]
    decided = asyncio.run(decide_in_order(worker.settings, history))
    ids = [d.subject for d in decided]
    rows = _feature_log(worker, ids)
    for message in decided:
        assert rows[message.subject] == (message.data.features, message.data.model_version,
                                         message.id)


def _feature_log(worker: RiskEnvironment, ids: list[str]) -> dict[str, tuple[object, ...]]:
    deadline = time.monotonic() + 20
    while True:
        with psycopg.connect(worker.settings.database_url) as conn:
            rows = conn.execute(
                "SELECT payment_id, features, model_version, message_id FROM feature_log "
                "WHERE payment_id = ANY(%s)", (ids,)).fetchall()
        if len(rows) == len(ids) or time.monotonic() > deadline:
            return {row[0]: tuple(row[1:]) for row in rows}
        time.sleep(0.3)


def test_a_promoted_model_is_used_without_a_restart_and_rollback_restores(
    worker: RiskEnvironment,
) -> None:
    history = generate(seed=11, customers=200, days=10)
    trained = train(examples(history.events, history.fraud))
    with psycopg.connect(worker.settings.database_url) as conn:
        version = registry.register(conn, trained, "test")
    from payflow.cli.model import _announce

    _announce(worker.settings, lambda conn: registry.promote(conn, version, "test"))
    assert _model_seen(worker, f"fraud-v{version}")
    _announce(worker.settings, lambda conn: registry.rollback(conn, "test"))
    assert _model_seen(worker, "fraud-v1")


def test_a_corrupt_champion_leaves_rules_only_and_marks_decisions_degraded(
    worker: RiskEnvironment,
) -> None:
    with psycopg.connect(worker.settings.database_url) as conn:
        conn.execute("""INSERT INTO fraud_models (version, artifact, feature_names,
                            training_window_start, training_window_end, data_fingerprint,
                            code_version)
                        SELECT max(version) + 1, '\\x00c0ffee', '[]', now(), now(), 'x', 'x'
                        FROM fraud_models""")
        conn.execute("""INSERT INTO fraud_model_promotions (version, previous_version, action,
                            actor) SELECT max(version), 1, 'promote', 'test' FROM fraud_models""")
    assert _model_seen(worker, "rules-only")
    fraud_card = worker.fingerprint(SandboxCard.ALWAYS_BLOCKED.value)
    (blocked,) = asyncio.run(decide_in_order(worker.settings, [
        request(unique("pay"), T0, merchant=unique("m"), card=fraud_card)]))
    assert blocked.data.degraded and blocked.data.outcome == "decline"
    with psycopg.connect(worker.settings.database_url) as conn:
        registry.promote(conn, 1, "test")
    assert _model_seen(worker, "fraud-v1")


def _model_seen(worker: RiskEnvironment, model_version: str, timeout_seconds: float = 20) -> bool:
    """Probe with payments until one is decided by ``model_version`` (the periodic check
    runs every 2 s here, promotion events act at once)."""
    deadline = time.monotonic() + timeout_seconds
    while time.monotonic() < deadline:
        (probe,) = asyncio.run(decide_in_order(worker.settings, [
            request(unique("pay"), T0, merchant=unique("m"), card=unique("card"))]))
        if probe.data.model_version == model_version:
            assert probe.data.degraded == (model_version == "rules-only")
            return True
        time.sleep(0.2)
    return False
