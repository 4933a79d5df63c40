"""Idempotency under concurrency and after a crash, and the sandbox's clocks: bank transfers
clear, the dispute test card is disputed, the fraud test card is blocked."""

from __future__ import annotations

import concurrent.futures
import time
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import psycopg
import pytest

from tests.harness import RunningStack

pytestmark = pytest.mark.integration

CARD = {"type": "card", "card": {"number": "4242424242424242", "exp_month": 12,
                                 "exp_year": 2030, "cvc": "123"}}


@pytest.fixture(scope="module")
def merchant(stack: RunningStack) -> Iterator[tuple[str, httpx.Client]]:
    created = stack.environment.create_merchant("Sandbox Merchant")
    with httpx.Client(base_url=stack.base_url, timeout=20,
                      headers={"Authorization": f"Bearer {created.api_key}"}) as client:
        yield created.merchant_id, client


def wait_for(client: httpx.Client, payment_id: str, check: Any, seconds: float = 30) -> Any:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        payment = client.get(f"/v1/payments/{payment_id}").json()
        if check(payment):
            return payment
        time.sleep(0.5)
    raise AssertionError(f"payment {payment_id} never reached the expected state: {payment}")


def test_fifty_concurrent_identical_requests_create_exactly_one_payment(
    merchant: tuple[str, httpx.Client], stack: RunningStack
) -> None:
    merchant_id, client = merchant
    key = str(uuid.uuid4())
    body = {"amount": 4_321, "currency": "usd", "payment_method": CARD,
            "description": f"once {key}"}
    with concurrent.futures.ThreadPoolExecutor(50) as pool:
        responses = list(pool.map(lambda _: client.post(
            "/v1/payments", json=body, headers={"Idempotency-Key": key}), range(50)))
    statuses = [r.status_code for r in responses]
    assert set(statuses) <= {201, 409}, statuses
    assert 201 in statuses
    conflicts = [r.json()["error"]["code"] for r in responses if r.status_code == 409]
    assert set(conflicts) <= {"request_in_progress"}
    ids = {r.json()["transaction"]["id"] for r in responses if r.status_code == 201}
    assert len(ids) == 1
    with psycopg.connect(stack.environment.settings.database_url) as conn:
        count = conn.execute("SELECT count(*) FROM payments WHERE merchant_id = %s AND "
                             "description = %s", (merchant_id, body["description"])).fetchone()
    assert count == (1,)


def test_a_retry_after_a_crash_in_the_middle_completes_the_same_payment(
    merchant: tuple[str, httpx.Client], stack: RunningStack
) -> None:
    merchant_id, client = merchant
    key, payment_id = str(uuid.uuid4()), f"pay_crashed{uuid.uuid4().hex[:13]}"
    body = {"amount": 777, "currency": "usd", "payment_method": CARD}
    first = client.post("/v1/payments", json=body, headers={"Idempotency-Key": "probe-" + key})
    request_hash = _hash_of(stack, merchant_id, "probe-" + key)
    assert first.status_code == 201
    # Simulate an API process killed after claiming the key, before creating anything.
    with psycopg.connect(stack.environment.settings.database_url, autocommit=True) as conn:
        conn.execute("INSERT INTO idempotency_keys (merchant_id, key, request_hash, method, "
                     "path, resource_id, created_at) VALUES (%s, %s, %s, 'POST', "
                     "'/v1/payments', %s, now() - interval '2 minutes')",
                     (merchant_id, key, request_hash, payment_id))
    retried = client.post("/v1/payments", json=body, headers={"Idempotency-Key": key})
    assert retried.status_code == 201, retried.text
    assert retried.json()["transaction"]["id"] == payment_id
    again = client.post("/v1/payments", json=body, headers={"Idempotency-Key": key})
    assert again.content == retried.content


def _hash_of(stack: RunningStack, merchant_id: str, key: str) -> bytes:
    with psycopg.connect(stack.environment.settings.database_url) as conn:
        row = conn.execute("SELECT request_hash FROM idempotency_keys WHERE merchant_id = %s "
                           "AND key = %s", (merchant_id, key)).fetchone()
    assert row is not None
    return bytes(row[0])


def test_a_bank_transfer_is_pending_then_captured_when_it_clears(
    merchant: tuple[str, httpx.Client],
) -> None:
    client = merchant[1]
    response = client.post("/v1/payments", json={
        "amount": 25_000, "currency": "eur", "payment_method": {
            "type": "bank_transfer", "bank_account": {
                "routing_number": "110000000", "account_number": "000123456789",
                "account_holder_name": "Ada Lovelace"}}})
    assert response.status_code in (201, 202), response.text
    transaction = response.json()["transaction"]
    assert transaction["status"] == "pending"
    assert transaction["payment_method"]["bank_account"] == {"last4": "6789",
                                                             "routing_number": "110000000"}
    assert "000123456789" not in response.text
    cleared = wait_for(client, transaction["id"], lambda p: p["status"] == "captured")
    assert cleared["captured_amount"] == 25_000


def test_the_dispute_test_card_approves_and_is_disputed_shortly_after(
    merchant: tuple[str, httpx.Client],
) -> None:
    client = merchant[1]
    response = client.post("/v1/payments", json={
        "amount": 3_000, "currency": "usd",
        "payment_method": {**CARD, "card": {**CARD["card"], "number": "4000000000000259"}}})
    assert response.status_code == 201
    payment = response.json()["transaction"]
    assert payment["status"] == "captured"
    disputed = wait_for(client, payment["id"], lambda p: p["disputed_amount"] > 0)
    assert disputed["disputed_amount"] == 3_000 and disputed["status"] == "captured"
    events = client.get("/v1/events", params={"type": "dispute.created"}).json()["data"]
    assert any(e["data"]["payment_id"] == payment["id"] for e in events)


def test_the_fraud_test_card_is_always_blocked_as_fraudulent(
    merchant: tuple[str, httpx.Client],
) -> None:
    response = merchant[1].post("/v1/payments", json={
        "amount": 500, "currency": "usd",
        "payment_method": {**CARD, "card": {**CARD["card"], "number": "4100000000000019"}}})
    assert response.status_code == 201
    transaction = response.json()["transaction"]
    assert transaction["status"] == "failed"
    assert transaction["decline_code"] == "fraudulent"
    assert transaction["fraud_score"] >= 90 and transaction["risk_level"] == "high"
