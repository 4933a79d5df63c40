"""Analytics rollups on the real services: redelivery changes nothing, the live pipeline keeps
them current, and ``/api/analytics/*`` shows each merchant its own figures only."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import httpx
import psycopg
import pytest
from aiokafka.structs import ConsumerRecord

from ingest.contracts import PaymentDecided, PaymentEvent
from ingest.contracts.payments import Decision
from ingest.topics import PAYMENT_DECISIONS, PAYMENT_EVENTS
from streams.rollups.consumer import AnalyticsConsumer
from tests.harness import IsolatedEnvironment, RunningStack
from tests.unit.test_rollups_model import transaction

pytestmark = pytest.mark.integration
CARD = {"type": "card", "card": {"number": "4242424242424242", "exp_month": 12,
                                 "exp_year": 2030, "cvc": "123"}}


def record(topic: str, value: bytes, offset: int = 0) -> ConsumerRecord[bytes, bytes]:
    return ConsumerRecord(topic=topic, partition=0, offset=offset, timestamp=0,
                          timestamp_type=0, key=b"k", value=value, checksum=None,
                          serialized_key_size=1, serialized_value_size=len(value), headers=())


def rollup_rows(database_url: str, merchant_id: str) -> list[tuple[Any, ...]]:
    with psycopg.connect(database_url) as conn:
        return conn.execute(
            "SELECT granularity, currency, payment_count, gross_volume, captured_amount, "
            "reviews, score_histogram FROM analytics_rollups WHERE merchant_id = %s "
            "ORDER BY granularity", (merchant_id,)).fetchall()


def test_a_redelivered_batch_changes_no_rollup(environment: IsolatedEnvironment) -> None:
    merchant = environment.create_merchant("Rollup Shop")
    settings = environment.settings
    prefix = settings.topic_prefix
    payment = transaction(merchant_id=merchant.merchant_id, id=f"pay_{uuid.uuid4().hex[:10]}")
    events = [PaymentEvent(type=kind, source="t", merchant_id=merchant.merchant_id,  # type: ignore[arg-type]
                           subject=payment.id, time=datetime.now(UTC), data=payment)
              for kind in ("payment.authorized.v1", "payment.captured.v1")]
    review = PaymentDecided(source="t", merchant_id=merchant.merchant_id, subject="pay_unknown",
                            data=Decision(payment_id="pay_unknown", outcome="review",
                                          fraud_score=50, risk_level="medium",
                                          model_version="t"))
    batch = [record(PAYMENT_EVENTS.name_for(prefix), e.encode(), i) for i, e in enumerate(events)]
    batch.append(record(PAYMENT_DECISIONS.name_for(prefix), review.encode()))

    async def deliver(times: int) -> None:
        consumer = AnalyticsConsumer(settings)
        await consumer.pool.open(wait=True)
        try:
            for _ in range(times):
                await consumer.process(batch + batch[:1])  # a duplicate inside the batch too
        finally:
            await consumer.pool.close()

    asyncio.run(deliver(1))
    first = rollup_rows(settings.database_url, merchant.merchant_id)
    asyncio.run(deliver(2))
    assert rollup_rows(settings.database_url, merchant.merchant_id) == first
    assert [row[:5] for row in first] == [("day", "EUR", 1, 2500, 0), ("hour", "EUR", 1, 2500, 0)]
    assert first[0][6][4] == 1  # score 42 in the 40-49 decile


def wait_for(check: Callable[[], bool], seconds: float = 30) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.3)
    raise AssertionError("the rollups did not catch up in time")


def test_live_payments_reach_the_summary_and_revenue_of_their_merchant_only(
    stack: RunningStack,
) -> None:
    shop = stack.environment.create_merchant("Live Analytics Shop")
    other = stack.environment.create_merchant("Quiet Shop")
    with httpx.Client(base_url=stack.base_url, timeout=10,
                      headers={"Authorization": f"Bearer {shop.api_key}"}) as client:
        for amount in (1000, 3000):
            created = client.post("/v1/payments", json={"amount": amount, "currency": "gbp",
                                                        "payment_method": CARD})
            assert created.status_code == 201, created.text
        declining = {**CARD, "card": {**CARD["card"], "number": "4100000000000019"}}
        declined = client.post("/v1/payments", json={"amount": 99_000_000, "currency": "gbp",
                                                     "payment_method": declining})
        assert declined.json()["transaction"]["status"] == "failed"

        def summary() -> dict[str, Any]:
            response = client.get("/api/analytics/summary", params={"period": "24h"})
            assert response.status_code == 200, response.text
            body: dict[str, Any] = response.json()
            return body

        wait_for(lambda: summary()["kpis"]["payments"]["value"] == 3)
        kpis = summary()["kpis"]
        assert summary()["currency"] == "GBP"
        assert kpis["gross_volume"]["value"] == 4000
        assert kpis["approval_rate"]["value"] == pytest.approx(2 / 3)
        assert kpis["fraud_rate"]["value"] == pytest.approx(1 / 3)
        assert kpis["average_ticket"]["value"] == 2000
        revenue = client.get("/api/analytics/revenue",
                             params={"granularity": "month", "currency": "gbp"}).json()
        assert sum(point["captured_amount"] for point in revenue["data"]) == 4000
        risk = client.get("/api/analytics/risk").json()
        assert sum(bucket["payments"] for bucket in risk["histogram"]) == 3
        assert sum(day["declines"] for day in risk["decisions"]) == 1
    quiet = httpx.get(f"{stack.base_url}/api/analytics/summary", timeout=10,
                      headers={"Authorization": f"Bearer {other.api_key}"}).json()
    assert quiet["currencies"] == [] and quiet["kpis"]["payments"]["value"] == 0


def test_analytics_parameters_are_checked(stack: RunningStack) -> None:
    shop = stack.environment.create_merchant("Param Shop")
    headers = {"Authorization": f"Bearer {shop.api_key}"}
    base = f"{stack.base_url}/api/analytics"
    assert httpx.get(f"{base}/revenue", params={"granularity": "year"},
                     headers=headers).status_code == 400
    assert httpx.get(f"{base}/revenue", params={"currency": "zzz"},
                     headers=headers).status_code == 400
    assert httpx.get(f"{base}/revenue", params={"start": "2025-02-01", "end": "2025-01-01"},
                     headers=headers).status_code == 400
    assert httpx.get(f"{base}/summary").status_code == 401
