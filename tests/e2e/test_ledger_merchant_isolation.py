"""Object-level authorization behind the API: the ledger applies a command only for the
merchant that owns the payment.

The API answers 404 before a command for another merchant's payment is ever sent
(``test_object_level_authorization.py``); this checks the second line, should that first check
ever be missing: a command on ``payments.commands`` that names one merchant's payment but
carries another merchant's id is refused like an unknown payment and changes nothing.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from typing import Any

import httpx
import psycopg
import pytest
from aiokafka import AIOKafkaProducer

from ingest.contracts import Capture, CapturePayment
from ingest.topics import PAYMENT_COMMANDS
from tests.harness import RunningStack

pytestmark = pytest.mark.integration
CARD = {"type": "card", "card": {"number": "4242424242424242", "exp_month": 12,
                                 "exp_year": 2030, "cvc": "123"}}


@pytest.fixture(scope="module")
def owner(stack: RunningStack) -> Iterator[tuple[str, httpx.Client]]:
    created = stack.environment.create_merchant("Ledger Owner Merchant")
    with httpx.Client(base_url=stack.base_url, timeout=20,
                      headers={"Authorization": f"Bearer {created.api_key}"}) as client:
        yield created.merchant_id, client


def authorized(client: httpx.Client) -> dict[str, Any]:
    response = client.post("/v1/payments", json={"amount": 3_000, "currency": "usd",
                                                 "capture": False, "payment_method": CARD})
    assert response.status_code == 201, response.text
    payment: dict[str, Any] = response.json()["transaction"]
    assert payment["status"] == "authorized", payment
    return payment


def send_capture(stack: RunningStack, payment_id: str, merchant_id: str) -> str:
    command = CapturePayment(source="test/forged", merchant_id=merchant_id, subject=payment_id,
                             data=Capture(payment_id=payment_id))
    settings = stack.environment.settings

    async def produce() -> None:
        producer = AIOKafkaProducer(bootstrap_servers=settings.kafka_bootstrap)
        await producer.start()
        try:
            await producer.send_and_wait(PAYMENT_COMMANDS.name_for(settings.topic_prefix),
                                         command.encode(), key=command.key())
        finally:
            await producer.stop()

    asyncio.run(produce())
    return command.id


def wait_until_applied(stack: RunningStack, message_id: str) -> None:
    deadline = time.monotonic() + 30
    with psycopg.connect(stack.environment.settings.database_url, autocommit=True) as conn:
        while time.monotonic() < deadline:
            if conn.execute("SELECT 1 FROM processed_messages WHERE message_id = %s",
                            (message_id,)).fetchone():
                return
            time.sleep(0.2)
    pytest.fail(f"the ledger did not consume command {message_id} within 30 s")


def test_a_command_from_another_merchant_changes_nothing_even_inside_kafka(
    stack: RunningStack, owner: tuple[str, httpx.Client],
) -> None:
    """A capture naming the owner's authorized payment but carrying another merchant's id is
    consumed and refused: the payment stays authorized, with no capture, entry or event. The
    same command from the owner then captures it (the forged one was not refused by chance)."""
    owner_id, client = owner
    payment = client.get(f"/v1/payments/{authorized(client)['id']}").json()
    other = stack.environment.create_merchant("Ledger Intruder Merchant").merchant_id
    wait_until_applied(stack, send_capture(stack, payment["id"], other))
    after = client.get(f"/v1/payments/{payment['id']}").json()
    assert after == payment, "another merchant's command changed the payment"
    with psycopg.connect(stack.environment.settings.database_url) as conn:
        captures = conn.execute("SELECT count(*) FROM journal_entries WHERE payment_id = %s "
                                "AND kind = 'capture'", (payment["id"],)).fetchone()
    assert captures == (0,)
    wait_until_applied(stack, send_capture(stack, payment["id"], owner_id))
    assert client.get(f"/v1/payments/{payment['id']}").json()["status"] == "captured"
