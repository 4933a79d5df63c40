"""Webhooks end to end on the real stack: a payment through the API, Kafka and the ledger becomes
a signed delivery to a local HTTP receiver, retried, logged, and never lost by a restart.

The stack's sender retries on a schedule of seconds (``tests.webhooks_support``); each test uses
merchants and receiver paths of its own.
"""

from __future__ import annotations

import json
import os
import signal
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import httpx
import psycopg
import pytest
from standardwebhooks.webhooks import Webhook

from ingest.webhook_signature import verify, verify_seed_signature
from tests.harness import RunningStack
from tests.webhooks_support import STACK_WEBHOOKS_ENV
from tests.webhooks_support.receiver import HANG, Receiver

pytestmark = pytest.mark.integration

CARD = {"type": "card", "card": {"number": "4242424242424242", "exp_month": 12,
                                 "exp_year": 2030, "cvc": "123"}}


@pytest.fixture(scope="module")
def receiver() -> Iterator[Receiver]:
    running = Receiver()
    try:
        yield running
    finally:
        running.close()


class Merchant:
    """A fresh merchant's API client, with helpers for endpoints and payments."""

    def __init__(self, stack: RunningStack, name: str) -> None:
        created = stack.environment.create_merchant(name)
        self.id = created.merchant_id
        self.client = httpx.Client(base_url=stack.base_url, timeout=20,
                                   headers={"Authorization": f"Bearer {created.api_key}"})

    def endpoint(self, url: str, events: list[str]) -> dict[str, Any]:
        response = self.client.post("/v1/webhook_endpoints",
                                    json={"url": url, "enabled_events": events})
        assert response.status_code == 201, response.text
        endpoint: dict[str, Any] = response.json()
        return endpoint

    def pay(self, amount: int = 2500) -> dict[str, Any]:
        response = self.client.post("/v1/payments", json={
            "amount": amount, "currency": "usd", "payment_method": CARD})
        assert response.status_code in (201, 202), response.text
        transaction: dict[str, Any] = response.json()["transaction"]
        return transaction

    def deliveries(self, **filters: str) -> list[dict[str, Any]]:
        response = self.client.get("/api/webhooks/deliveries", params=filters)
        assert response.status_code == 200, response.text
        data: list[dict[str, Any]] = response.json()["data"]
        return data


def test_a_payment_reaches_the_endpoint_signed_as_both_schemes_say(
    stack: RunningStack, receiver: Receiver
) -> None:
    merchant = Merchant(stack, "Signed Webhooks Merchant")
    endpoint = merchant.endpoint(receiver.url("/signed"), ["*"])
    payment = merchant.pay()
    requests = receiver.wait_for("/signed", 2, timeout=20)
    types = sorted(json.loads(r.body)["type"] for r in requests)
    assert types == ["payment.authorized", "payment.captured"]
    for request in requests:
        Webhook(endpoint["secret"]).verify(request.body, request.headers)  # reference verifier
        verify(endpoint["secret"], request.headers, request.body)
        verify_seed_signature(endpoint["secret"], request.headers["x-webhook-signature"],
                              request.body)
        assert request.headers["content-type"] == "application/json"
        body = json.loads(request.body)
        assert set(body) == {"id", "type", "created_at", "data"}
        assert body["data"]["id"] == payment["id"] and body["created_at"].endswith("Z")
    captured = next(json.loads(r.body) for r in requests
                    if json.loads(r.body)["type"] == "payment.captured")
    assert captured["data"] == merchant.client.get(f"/v1/payments/{payment['id']}").json()
    logged = {d["id"]: d for d in merchant.deliveries(endpoint_id=endpoint["id"])}
    assert {r.headers["webhook-id"] for r in requests} == set(logged)


def test_a_receiver_failing_twice_gets_the_event_on_the_third_attempt_with_the_same_id(
    stack: RunningStack, receiver: Receiver
) -> None:
    receiver.script("/flaky", [500, 500])
    merchant = Merchant(stack, "Flaky Receiver Merchant")
    endpoint = merchant.endpoint(receiver.url("/flaky"), ["payment.captured"])
    merchant.pay()
    first, second, third = receiver.wait_for("/flaky", 3, timeout=30)
    assert first.headers["webhook-id"] == second.headers["webhook-id"] == \
        third.headers["webhook-id"]
    assert first.body == second.body == third.body
    assert int(third.headers["webhook-timestamp"]) >= int(first.headers["webhook-timestamp"])
    for request in (first, second, third):  # each attempt signed afresh
        Webhook(endpoint["secret"]).verify(request.body, request.headers)
    delivery = _wait_delivery(merchant, third.headers["webhook-id"], "succeeded")
    assert [(a["attempt"], a["status_code"]) for a in delivery["attempts"]] == [
        (1, 500), (2, 500), (3, 200)]
    failed, _, succeeded = delivery["attempts"]
    assert failed["next_attempt_at"] is not None and succeeded["next_attempt_at"] is None
    assert failed["error"] == "HTTP 500" and "scripted" in failed["response_body"]
    assert all(a["latency_ms"] >= 0 for a in delivery["attempts"])
    time.sleep(1.5)
    assert len(receiver.received("/flaky")) == 3


def test_a_hanging_endpoint_does_not_delay_another_merchants_delivery(
    stack: RunningStack, receiver: Receiver
) -> None:
    receiver.script("/hangs", [HANG] * 50)
    slow = Merchant(stack, "Hanging Endpoint Merchant")
    slow.endpoint(receiver.url("/hangs"), ["*"])
    fast = Merchant(stack, "Prompt Endpoint Merchant")
    fast.endpoint(receiver.url("/prompt"), ["payment.captured"])
    try:
        for _ in range(4):
            slow.pay()  # 8 events: more than the endpoint's 4 concurrent attempts
        hung = receiver.wait_for("/hangs", 4, timeout=20)
        fast.pay()
        (arrived,) = receiver.wait_for("/prompt", 1, timeout=8)
        timeout_seconds = stack.environment.settings.webhooks_timeout_seconds
        assert arrived.at < min(h.at for h in hung) + timeout_seconds  # none timed out yet
        assert len(receiver.received("/hangs")) == 4  # its own slots, still held
    finally:
        receiver.release_hung()


def test_a_sender_killed_between_attempts_delivers_after_restart(
    stack: RunningStack, receiver: Receiver
) -> None:
    receiver.script("/restart", [], default=503)
    merchant = Merchant(stack, "Restarted Sender Merchant")
    merchant.endpoint(receiver.url("/restart"), ["payment.captured"])
    merchant.pay()
    (first,) = receiver.wait_for("/restart", 1, timeout=20)[:1]
    webhook_id = first.headers["webhook-id"]
    _wait_between_attempts(stack, webhook_id)
    _kill_sender(stack)
    try:
        receiver.script("/restart", [], default=200)
        seen = len(receiver.received("/restart"))
        time.sleep(2.0)  # past the next retry time: nobody else sends it
        assert len(receiver.received("/restart")) == seen
    finally:
        stack.supervisor.start("webhooks", "webhooks", extra_env=STACK_WEBHOOKS_ENV)
    delivered = receiver.wait_for("/restart", seen + 1, timeout=90)[seen]  # start-up
    assert delivered.headers["webhook-id"] == webhook_id and delivered.body == first.body
    assert _wait_delivery(merchant, webhook_id, "succeeded")["status"] == "succeeded"


def test_the_dashboard_resends_a_delivery_and_sends_a_test_event(
    stack: RunningStack, receiver: Receiver
) -> None:
    merchant = Merchant(stack, "Resend Merchant")
    response = merchant.client.put("/api/webhooks/endpoint", json={
        "url": receiver.url("/dashboard"), "enabled_events": ["payment.captured"]})
    assert response.status_code == 201, response.text
    secret = response.json()["secret"]
    merchant.pay()
    (original,) = receiver.wait_for("/dashboard", 1, timeout=20)
    delivery_id = original.headers["webhook-id"]
    _wait_delivery(merchant, delivery_id, "succeeded")
    resent = merchant.client.post(f"/api/webhooks/deliveries/{delivery_id}/resend")
    assert resent.status_code == 202, resent.text
    again = receiver.wait_for("/dashboard", 2, timeout=20)[1]
    assert again.headers["webhook-id"] == delivery_id and again.body == original.body
    tested = merchant.client.post("/api/webhooks/test")
    assert tested.status_code == 200, tested.text
    result = tested.json()
    assert result["success"] is True and result["status_code"] == 200
    assert result["latency_ms"] >= 0
    probe = receiver.wait_for("/dashboard", 3, timeout=5)[2]
    assert json.loads(probe.body)["type"] == "webhook.test"
    Webhook(secret).verify(probe.body, probe.headers)
    assert merchant.deliveries(event_type="webhook.test")[0]["id"] == result["delivery_id"]
    assert {d["status"] for d in merchant.deliveries(status="succeeded")} == {"succeeded"}


def test_after_a_rotation_both_secrets_verify_until_the_overlap_ends(
    stack: RunningStack, receiver: Receiver
) -> None:
    merchant = Merchant(stack, "Rotating Merchant")
    endpoint = merchant.endpoint(receiver.url("/rotated"), ["payment.captured"])
    rotated = merchant.client.post(f"/v1/webhook_endpoints/{endpoint['id']}/rotate_secret")
    assert rotated.status_code == 200, rotated.text
    ends_at = datetime.fromisoformat(rotated.json()["secret_rotation_ends_at"])
    assert ends_at > datetime.now(UTC)
    merchant.pay()
    (request,) = receiver.wait_for("/rotated", 1, timeout=20)
    assert len(request.headers["webhook-signature"].split()) == 2
    for secret in (endpoint["secret"], rotated.json()["secret"]):
        Webhook(secret).verify(request.body, request.headers)
        verify_seed_signature(secret, request.headers["x-webhook-signature"], request.body)


def _wait_delivery(merchant: Merchant, delivery_id: str, status: str,
                   timeout: float = 20) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        delivery: dict[str, Any] = merchant.client.get(
            f"/api/webhooks/deliveries/{delivery_id}").json()
        if delivery.get("status") == status or time.monotonic() > deadline:
            assert delivery.get("status") == status, delivery
            return delivery
        time.sleep(0.1)


def _wait_between_attempts(stack: RunningStack, delivery_id: str, timeout: float = 20) -> None:
    """Until the delivery is scheduled (not leased) at least 0.4 s ahead: safe to kill now."""
    deadline = time.monotonic() + timeout
    with psycopg.connect(stack.environment.settings.database_url, autocommit=True) as conn:
        while time.monotonic() < deadline:
            row = conn.execute(
                """SELECT extract(epoch FROM next_attempt_at - now()) FROM webhook_deliveries d
                   WHERE id = %s AND status = 'pending' AND EXISTS (
                       SELECT 1 FROM webhook_attempts a
                       WHERE a.delivery_id = d.id AND a.attempt = d.attempts)""",
                (delivery_id,)).fetchone()
            if row is not None and 0.4 < float(row[0]) < 10:
                return
            time.sleep(0.02)
    pytest.fail(f"delivery {delivery_id} never waited between attempts")


def _kill_sender(stack: RunningStack) -> None:
    child = next(c for c in stack.supervisor.children if c.name == "webhooks")
    os.killpg(child.process.pid, signal.SIGKILL)
    child.process.wait(timeout=10)
    stack.supervisor.children.remove(child)
