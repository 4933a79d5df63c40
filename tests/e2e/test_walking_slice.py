"""The walking slice, end to end on the real stack: HTTP → Kafka → Faust → ledger → HTTP.

Each test names the promise it checks; all run against one API, stream worker and ledger
consumer started as processes for the session (``stack`` fixture).
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from aiokafka import AIOKafkaConsumer

from ingest.contracts import decode_event
from ingest.topics import PAYMENT_EVENTS
from tests.cards import fresh_card_number
from tests.harness import RunningStack

pytestmark = pytest.mark.integration

CARD = {"type": "card", "card": {"number": "4242424242424242", "exp_month": 12,
                                 "exp_year": 2030, "cvc": "123"}}


@pytest.fixture(scope="module")
def client(stack: RunningStack) -> Iterator[httpx.Client]:
    merchant = stack.environment.create_merchant("Slice Merchant")
    with httpx.Client(base_url=stack.base_url, timeout=10,
                      headers={"Authorization": f"Bearer {merchant.api_key}"}) as client:
        yield client


def pay(client: httpx.Client, **changes: Any) -> httpx.Response:
    body: dict[str, Any] = {"amount": 2500, "currency": "usd", "payment_method": CARD}
    body.update(changes)
    return client.post("/v1/payments", json=body)


def test_a_payment_is_decided_and_answered_synchronously(client: httpx.Client) -> None:
    card = {"type": "card", "card": {**CARD["card"], "number": fresh_card_number()}}
    response = pay(client, description="order 1", payment_method=card)
    assert response.status_code == 201, response.text
    body = response.json()
    transaction = body["transaction"]
    assert transaction["status"] == "captured"
    assert transaction["captured_amount"] == 2500
    assert transaction["currency"] == "USD"
    assert body["fraud_score"] == transaction["fraud_score"] is not None
    assert transaction["risk_level"] == "low"
    assert transaction["payment_method"]["card"]["last4"] == card["card"]["number"][-4:]
    assert transaction["created_at"].endswith("Z")
    fetched = client.get(f"/v1/payments/{transaction['id']}")
    assert fetched.status_code == 200
    assert fetched.json() == transaction


def test_without_capture_the_payment_stays_authorized(client: httpx.Client) -> None:
    response = pay(client, capture=False)
    assert response.status_code == 201
    assert response.json()["transaction"]["status"] == "authorized"
    assert response.json()["transaction"]["captured_amount"] == 0


def test_a_risky_payment_is_declined_with_a_code_and_still_201(client: httpx.Client) -> None:
    # Not a sandbox test card: those always get the outcome they name, whatever the risk.
    card = {"type": "card", "card": {**CARD["card"], "number": fresh_card_number()}}
    response = pay(client, amount=99_000_000, payment_method=card)
    assert response.status_code == 201
    transaction = response.json()["transaction"]
    assert transaction["status"] == "failed"
    assert transaction["decline_code"] == "fraudulent"
    assert transaction["risk_level"] == "high"


def test_the_list_shows_newest_first(client: httpx.Client) -> None:
    first = pay(client).json()["transaction"]["id"]
    second = pay(client).json()["transaction"]["id"]
    listed = client.get("/v1/payments", params={"limit": 2}).json()
    assert [t["id"] for t in listed["data"]] == [second, first]
    assert listed["total"] >= 2 and listed["has_more"] is True


@pytest.mark.parametrize(
    ("body", "status", "param"),
    [
        ({"amount": -5, "currency": "usd", "payment_method": CARD}, 422, "amount"),
        ({"amount": 10.5, "currency": "usd", "payment_method": CARD}, 422, "amount"),
        ({"amount": "100", "currency": "usd", "payment_method": CARD}, 422, "amount"),
        ({"amount": 100, "currency": "xyz", "payment_method": CARD}, 422, "currency"),
        ({"amount": 100, "payment_method": CARD}, 422, "currency"),
        ({"amount": 100, "currency": "usd", "payment_method": CARD, "surprise": 1}, 422,
         "surprise"),
        ({"amount": 100, "currency": "usd", "payment_method": {
            "type": "card", "card": {**CARD["card"], "number": "4242424242424241"}}},  # type: ignore[dict-item]
         422, "payment_method.card.number"),
    ],
)
def test_bad_input_gets_an_error_object_naming_the_field(
    client: httpx.Client, body: dict[str, Any], status: int, param: str
) -> None:
    response = client.post("/v1/payments", json=body)
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert error["param"] == param
    assert {"type", "code", "message", "param"} <= set(error)


def test_malformed_json_is_a_400_not_a_500(client: httpx.Client) -> None:
    response = client.post("/v1/payments", content=b'{"amount": ',
                           headers={"Content-Type": "application/json"})
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid_json"


def test_without_a_valid_key_the_answer_is_401_before_any_validation(
    stack: RunningStack,
) -> None:
    for headers in ({}, {"Authorization": "Bearer sk_test_" + "x" * 44}):
        response = httpx.post(f"{stack.base_url}/v1/payments", content=b"{bad",
                              headers=headers, timeout=10)
        assert response.status_code == 401
        assert response.json()["error"]["type"] == "authentication_error"


def test_another_merchants_payment_is_not_found(stack: RunningStack,
                                                client: httpx.Client) -> None:
    payment_id = pay(client).json()["transaction"]["id"]
    other = stack.environment.create_merchant("Other Merchant")
    response = httpx.get(f"{stack.base_url}/v1/payments/{payment_id}", timeout=10,
                         headers={"Authorization": f"Bearer {other.api_key}"})
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "resource_missing"


def test_an_idempotent_retry_replays_the_first_answer_byte_for_byte(
    client: httpx.Client,
) -> None:
    key = str(uuid.uuid4())
    body = {"amount": 1234, "currency": "eur", "payment_method": CARD}
    first = client.post("/v1/payments", json=body, headers={"Idempotency-Key": key})
    again = client.post("/v1/payments", json=body, headers={"Idempotency-Key": key})
    assert first.status_code == again.status_code == 201
    assert first.content == again.content
    changed = client.post("/v1/payments", json={**body, "amount": 999},
                          headers={"Idempotency-Key": key})
    assert changed.status_code == 422
    assert changed.json()["error"]["code"] == "idempotency_key_reused"


def test_a_validation_failure_does_not_consume_the_idempotency_key(
    client: httpx.Client,
) -> None:
    key = str(uuid.uuid4())
    bad = client.post("/v1/payments", json={"amount": 0, "currency": "usd",
                                            "payment_method": CARD},
                      headers={"Idempotency-Key": key})
    assert bad.status_code == 422
    good = client.post("/v1/payments", json={"amount": 100, "currency": "usd",
                                             "payment_method": CARD},
                       headers={"Idempotency-Key": key})
    assert good.status_code == 201


def test_a_tokenized_card_can_be_paid_with_by_its_token(client: httpx.Client) -> None:
    token = client.post("/v1/payment_methods", json=CARD)
    assert token.status_code == 201, token.text
    summary = token.json()
    assert summary["id"].startswith("pm_") and summary["card"]["brand"] == "visa"
    assert "number" not in json.dumps(summary)
    response = pay(client, payment_method=None, payment_method_id=summary["id"])
    assert response.status_code == 201
    assert response.json()["transaction"]["payment_method"] == summary
    missing = pay(client, payment_method=None, payment_method_id="pm_nope")
    assert missing.status_code == 404


def test_every_committed_change_is_published_on_payments_events(
    stack: RunningStack, client: httpx.Client
) -> None:
    payment_id = pay(client).json()["transaction"]["id"]
    types = asyncio.run(_event_types_for(stack, payment_id, expected=2))
    assert types == ["payment.authorized.v1", "payment.captured.v1"]


async def _event_types_for(stack: RunningStack, payment_id: str, expected: int) -> list[str]:
    settings = stack.environment.settings
    consumer = AIOKafkaConsumer(
        PAYMENT_EVENTS.name_for(settings.topic_prefix),
        bootstrap_servers=settings.kafka_bootstrap, auto_offset_reset="earliest",
        group_id=None,
    )
    await consumer.start()
    found: list[str] = []
    deadline = time.monotonic() + 20
    try:
        while time.monotonic() < deadline and len(found) < expected:
            batches = await consumer.getmany(timeout_ms=500)
            for records in batches.values():
                for record in records:
                    event = decode_event(record.value)
                    if event.subject == payment_id:
                        found.append(event.type)
    finally:
        await consumer.stop()
    return found


def test_the_customers_ip_and_device_reach_risk_but_not_the_transaction(
    client: httpx.Client, stack: RunningStack
) -> None:
    import psycopg

    response = pay(client, customer={"id": "cus_9", "email": "a@example.test",
                                     "ip_address": "203.0.113.7", "device_id": "dev-42"})
    assert response.status_code == 201, response.text
    transaction = response.json()["transaction"]
    assert transaction["customer"] == {"id": "cus_9", "email": "a@example.test"}
    with psycopg.connect(stack.environment.settings.database_url) as conn:
        row = conn.execute("SELECT request->>'ip_address', request->>'device_id' FROM payments "
                           "WHERE id = %s", (transaction["id"],)).fetchone()
    assert row == ("203.0.113.7", "dev-42")
    bad = pay(client, customer={"ip_address": "not an ip"})
    assert bad.status_code == 422 and bad.json()["error"]["param"] == "customer.ip_address"
