"""Ledger views through the API (timeline, ledger entries, balances, payouts and their reports,
events), per-merchant rate limits, and rolling API keys with a grace period."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import psycopg
import pytest

from ledger.settle import settle_day
from payflow.merchants import roll_key
from tests.harness import RunningStack

pytestmark = pytest.mark.integration

CARD = {"type": "card", "card": {"number": "4242424242424242", "exp_month": 12,
                                 "exp_year": 2030, "cvc": "123"}}


@pytest.fixture(scope="module")
def client(stack: RunningStack) -> Iterator[httpx.Client]:
    merchant = stack.environment.create_merchant("Views Merchant")
    with httpx.Client(base_url=stack.base_url, timeout=15,
                      headers={"Authorization": f"Bearer {merchant.api_key}"}) as client:
        yield client


def pay(client: httpx.Client, amount: int = 5_000, currency: str = "gbp") -> dict[str, Any]:
    response = client.post("/v1/payments", json={"amount": amount, "currency": currency,
                                                 "payment_method": CARD})
    assert response.status_code == 201, response.text
    result: dict[str, Any] = response.json()["transaction"]
    return result


def test_a_payments_timeline_and_ledger_entries_tell_its_story(client: httpx.Client) -> None:
    payment = pay(client)
    client.post(f"/v1/payments/{payment['id']}/refund", json={"amount": 1_000})
    timeline = client.get(f"/v1/payments/{payment['id']}/timeline").json()["data"]
    assert [item["actor"] for item in timeline] == ["risk-engine", "api"]
    assert "payment.captured.v1" in timeline[0]["type"]
    entries = client.get(f"/v1/payments/{payment['id']}/ledger_entries").json()["data"]
    assert {e["kind"] for e in entries} == {"capture", "refund"}
    debits = sum(e["amount"] for e in entries if e["direction"] == "debit")
    credits = sum(e["amount"] for e in entries if e["direction"] == "credit")
    assert debits == credits
    assert client.get("/v1/payments/pay_nope/timeline").status_code == 404


def test_balances_show_pending_funds_then_payouts_after_settlement(
    client: httpx.Client, stack: RunningStack
) -> None:
    pay(client, 8_000, currency="chf")
    balance = {b["currency"]: b for b in client.get("/api/balances").json()["data"]}
    assert balance["CHF"]["pending"] == 8_000 - (232 + 30)
    day = datetime.now(UTC).date() + timedelta(days=stack.environment.settings
                                               .settlement_delay_days)
    asyncio.run(settle_day(stack.environment.settings.database_url, day))
    after = {b["currency"]: b for b in client.get("/v1/balance").json()["data"]}
    assert after["CHF"]["pending"] == 0 and after["CHF"]["paid_out"] == 8_000 - 262
    payouts = [p for p in client.get("/api/payouts").json()["data"] if p["currency"] == "CHF"]
    assert payouts and payouts[0]["status"] == "paid"
    report = client.get(f"/api/payouts/{payouts[0]['id']}/report.csv")
    assert report.status_code == 200 and report.headers["content-type"].startswith("text/csv")
    assert "capture" in report.text and "total" in report.text


def test_events_list_the_merchants_events_newest_first(client: httpx.Client) -> None:
    payment = pay(client)
    events = client.get("/v1/events", params={"limit": 2}).json()
    assert [e["type"] for e in events["data"]] == ["payment.captured", "payment.authorized"]
    assert events["data"][0]["data"]["id"] == payment["id"]
    only = client.get("/v1/events", params={"type": "payment.authorized"}).json()["data"]
    assert {e["type"] for e in only} == {"payment.authorized"}


def test_events_page_by_the_id_of_the_last_event_seen(client: httpx.Client) -> None:
    pay(client)
    pay(client)
    first = client.get("/v1/events", params={"limit": 2}).json()
    assert first["has_more"] is True
    second = client.get("/v1/events", params={
        "limit": 2, "starting_after": first["data"][-1]["id"]}).json()
    whole = client.get("/v1/events", params={"limit": 4}).json()
    assert [e["id"] for e in first["data"] + second["data"]] == \
        [e["id"] for e in whole["data"]]


def test_a_merchant_over_its_rate_limit_gets_429_with_retry_after(stack: RunningStack) -> None:
    merchant = stack.environment.create_merchant("Busy Merchant")
    with psycopg.connect(stack.environment.settings.database_url, autocommit=True) as conn:
        conn.execute("INSERT INTO merchant_limits VALUES (%s, 0.5, 3)", (merchant.merchant_id,))
    headers = {"Authorization": f"Bearer {merchant.api_key}"}
    statuses = [httpx.get(f"{stack.base_url}/v1/payments", headers=headers, timeout=10)
                for _ in range(6)]
    limited = [r for r in statuses if r.status_code == 429]
    assert [r.status_code for r in statuses[:3]] == [200, 200, 200]
    assert limited, [r.status_code for r in statuses]
    assert int(limited[0].headers["retry-after"]) >= 1
    assert limited[0].json()["error"]["type"] == "rate_limit_error"


def test_a_rolled_key_works_at_once_and_the_old_one_until_its_grace_ends(
    stack: RunningStack,
) -> None:
    merchant = stack.environment.create_merchant("Rolling Merchant")
    new_key = asyncio.run(roll_key(stack.environment.settings.database_url,
                                   merchant.merchant_id, timedelta(seconds=2)))

    def status(key: str) -> int:
        return httpx.get(f"{stack.base_url}/v1/payments", timeout=10,
                         headers={"Authorization": f"Bearer {key}"}).status_code

    assert status(merchant.api_key) == 200
    assert status(new_key) == 200
    time.sleep(2.5)
    assert status(merchant.api_key) == 401
    assert status(new_key) == 200
