"""Capture, void, refund and dispute on the real stack: every transition, its postings, and
every refusal (409 with the ledger's code, nothing changed)."""

from __future__ import annotations

import concurrent.futures
import time
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
def client(stack: RunningStack) -> Iterator[httpx.Client]:
    merchant = stack.environment.create_merchant("Command Merchant")
    with httpx.Client(base_url=stack.base_url, timeout=15,
                      headers={"Authorization": f"Bearer {merchant.api_key}"}) as client:
        yield client


def create(client: httpx.Client, amount: int = 10_000, capture: bool = False,
           number: str = "4242424242424242") -> dict[str, Any]:
    card = {**CARD, "card": {**CARD["card"], "number": number}}  # type: ignore[dict-item]
    response = client.post("/v1/payments", json={"amount": amount, "currency": "usd",
                                                 "capture": capture, "payment_method": card})
    assert response.status_code == 201, response.text
    transaction: dict[str, Any] = response.json()["transaction"]
    return transaction


def postings(stack: RunningStack, payment_id: str) -> list[tuple[str, str, int]]:
    with psycopg.connect(stack.environment.settings.database_url) as conn:
        rows = conn.execute(
            """SELECT e.kind, p.account, p.amount FROM journal_entries e
               JOIN postings p ON p.entry_id = e.id WHERE e.payment_id = %s
               ORDER BY e.id, p.id""", (payment_id,)).fetchall()
    return [(kind, account.split(":")[-2], amount) for kind, account, amount in rows]


def _settled(client: httpx.Client, payment_id: str) -> dict[str, Any]:
    """The payment once every accepted command has been applied (its version stops moving)."""
    last: dict[str, Any] = {}
    for _ in range(40):
        current: dict[str, Any] = client.get(f"/v1/payments/{payment_id}").json()
        if current == last:
            return current
        last = current
        time.sleep(0.5)
    return last


def error_code(response: httpx.Response) -> str:
    code: str = response.json()["error"]["code"]
    return code


def test_a_full_capture_posts_the_amount_less_the_fee_to_the_merchant(
    client: httpx.Client, stack: RunningStack
) -> None:
    payment = create(client)
    assert payment["status"] == "authorized"
    response = client.post(f"/v1/payments/{payment['id']}/capture")
    assert response.status_code == 200, response.text
    assert response.json()["status"] == "captured"
    assert response.json()["captured_amount"] == 10_000
    fee = 290 + 30
    assert sorted(postings(stack, payment["id"])) == sorted([
        ("capture", "card_clearing", 10_000), ("capture", "pending", -(10_000 - fee)),
        ("capture", "fee_revenue", -fee)])


def test_a_partial_capture_captures_that_much_and_only_once(client: httpx.Client) -> None:
    payment = create(client)
    response = client.post(f"/v1/payments/{payment['id']}/capture", json={"amount": 4_000})
    assert response.status_code == 200
    assert response.json()["captured_amount"] == 4_000
    again = client.post(f"/v1/payments/{payment['id']}/capture", json={"amount": 1_000})
    assert again.status_code == 409 and error_code(again) == "invalid_state"


def test_capturing_above_the_authorization_is_refused_and_changes_nothing(
    client: httpx.Client,
) -> None:
    payment = create(client)
    response = client.post(f"/v1/payments/{payment['id']}/capture", json={"amount": 10_001})
    assert response.status_code == 409 and error_code(response) == "amount_exceeds_authorized"
    assert client.get(f"/v1/payments/{payment['id']}").json()["status"] == "authorized"


def test_a_void_releases_the_authorization_and_then_nothing_else_is_allowed(
    client: httpx.Client, stack: RunningStack
) -> None:
    payment = create(client)
    response = client.post(f"/v1/payments/{payment['id']}/void")
    assert response.status_code == 200 and response.json()["status"] == "voided"
    assert postings(stack, payment["id"]) == []
    for action in ("capture", "void", "refund"):
        refused = client.post(f"/v1/payments/{payment['id']}/{action}")
        assert refused.status_code == 409 and error_code(refused) == "invalid_state", action


def test_refunds_repeat_up_to_the_captured_amount_and_list_on_the_payment(
    client: httpx.Client,
) -> None:
    payment = create(client, capture=True)
    first = client.post(f"/v1/payments/{payment['id']}/refund",
                        json={"amount": 3_000, "reason": "requested_by_customer"})
    assert first.status_code == 200 and first.json()["status"] == "captured"
    assert first.json()["refunded_amount"] == 3_000
    too_much = client.post(f"/v1/payments/{payment['id']}/refund", json={"amount": 7_001})
    assert too_much.status_code == 409 and error_code(too_much) == "amount_exceeds_captured"
    rest = client.post(f"/v1/payments/{payment['id']}/refund")
    assert rest.status_code == 200
    body = rest.json()
    assert body["status"] == "refunded" and body["refunded_amount"] == 10_000
    assert [r["amount"] for r in body["refunds"]] == [3_000, 7_000]
    assert sum(r["amount"] for r in body["refunds"]) == body["refunded_amount"]
    after = client.post(f"/v1/payments/{payment['id']}/refund", json={"amount": 1})
    assert after.status_code == 409 and error_code(after) == "invalid_state"


def test_refunding_an_authorized_payment_is_an_invalid_state(client: httpx.Client) -> None:
    payment = create(client)
    response = client.post(f"/v1/payments/{payment['id']}/refund")
    assert response.status_code == 409 and error_code(response) == "invalid_state"


def test_a_dispute_moves_what_remains_to_chargebacks_and_keeps_the_status(
    client: httpx.Client, stack: RunningStack
) -> None:
    payment = create(client, capture=True)
    client.post(f"/v1/payments/{payment['id']}/refund", json={"amount": 2_500})
    response = client.post(f"/v1/payments/{payment['id']}/dispute",
                           json={"reason": "fraudulent"})
    assert response.status_code == 200, response.text
    assert response.json()["status"] == "captured"
    assert response.json()["disputed_amount"] == 7_500
    assert ("dispute", "chargebacks", -7_500) in postings(stack, payment["id"])
    with psycopg.connect(stack.environment.settings.database_url) as conn:
        label = conn.execute("SELECT is_fraud FROM fraud_labels WHERE payment_id = %s",
                             (payment["id"],)).fetchone()
    assert label == (True,)


@pytest.mark.parametrize(("number", "code"), [("4000000000000002", "generic_decline"),
                                              ("4000000000009995", "insufficient_funds")])
def test_the_sandbox_issuer_declines_its_test_cards(client: httpx.Client, number: str,
                                                    code: str) -> None:
    response = client.post("/v1/payments", json={
        "amount": 1_000, "currency": "usd",
        "payment_method": {**CARD, "card": {**CARD["card"], "number": number}}})
    assert response.status_code == 201
    assert response.json()["transaction"]["status"] == "failed"
    assert response.json()["transaction"]["decline_code"] == code


def test_a_command_on_another_merchants_payment_is_not_found(
    client: httpx.Client, stack: RunningStack
) -> None:
    payment = create(client)
    other = stack.environment.create_merchant("Nosy Merchant")
    response = httpx.post(f"{stack.base_url}/v1/payments/{payment['id']}/capture",
                          headers={"Authorization": f"Bearer {other.api_key}"}, timeout=10)
    assert response.status_code == 404


def test_concurrent_capture_and_void_let_exactly_one_win(client: httpx.Client) -> None:
    payment = create(client)
    actions = ["capture", "void"] * 5
    with concurrent.futures.ThreadPoolExecutor(len(actions)) as pool:
        statuses = list(pool.map(
            lambda action: client.post(f"/v1/payments/{payment['id']}/{action}").status_code,
            actions))
    # 202: the ledger had not answered within the time budget (a loaded machine); the command
    # is still applied, or refused, exactly as if it had.
    assert set(statuses) <= {200, 202, 409}, statuses
    assert statuses.count(200) <= 1 and statuses.count(409) >= len(actions) - 1 - statuses.count(
        202), statuses
    final = _settled(client, payment["id"])
    assert final["status"] in {"captured", "voided"}
    assert final["captured_amount"] in {0, 10_000}


def test_concurrent_refunds_never_exceed_what_was_captured(client: httpx.Client) -> None:
    payment = create(client, capture=True)
    with concurrent.futures.ThreadPoolExecutor(12) as pool:
        responses = list(pool.map(
            lambda _: client.post(f"/v1/payments/{payment['id']}/refund",
                                  json={"amount": 1_000}), range(12)))
    statuses = [r.status_code for r in responses]
    assert set(statuses) <= {200, 202, 409}, statuses
    assert statuses.count(409) <= 2, statuses
    assert {error_code(r) for r in responses if r.status_code == 409} <= {
        "amount_exceeds_captured", "invalid_state"}
    final = _settled(client, payment["id"])
    assert final["refunded_amount"] == 10_000 and final["status"] == "refunded"
    assert len(final["refunds"]) == 10


def test_a_retried_refund_with_its_key_refunds_once(client: httpx.Client) -> None:
    payment = create(client, capture=True)
    headers = {"Idempotency-Key": f"refund-{payment['id']}"}
    first = client.post(f"/v1/payments/{payment['id']}/refund", json={"amount": 500},
                        headers=headers)
    again = client.post(f"/v1/payments/{payment['id']}/refund", json={"amount": 500},
                        headers=headers)
    assert first.status_code == again.status_code == 200
    assert first.content == again.content
    assert client.get(f"/v1/payments/{payment['id']}").json()["refunded_amount"] == 500


def test_command_amounts_follow_the_same_rules_as_create(client: httpx.Client) -> None:
    payment = create(client)
    for amount in (0, -1, 10.0, "100", True, 100_000_000):
        response = client.post(f"/v1/payments/{payment['id']}/capture", json={"amount": amount})
        assert response.status_code == 422, (amount, response.text)
        assert response.json()["error"]["param"] == "amount"
    reason = client.post(f"/v1/payments/{payment['id']}/refund", json={"reason": "because"})
    assert reason.status_code == 422 and reason.json()["error"]["param"] == "reason"
