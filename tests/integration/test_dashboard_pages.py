"""The dashboard's pages under Streamlit's AppTest, against the real API (``stack``): login,
filters, paging, capture/void/refund with confirmation, errors, expired sessions."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from streamlit.testing.v1 import AppTest

from dashboard import client
from payflow.cli.user import ensure_user
from payflow.settings import REPO_ROOT
from tests.harness import RunningStack

pytestmark = pytest.mark.integration
PASSWORD = "dashboard test password"
CARD = {"type": "card", "card": {"number": "4242424242424242", "exp_month": 12,
                                 "exp_year": 2030, "cvc": "123"}}
PAGES = REPO_ROOT / "dashboard"


@dataclass
class Shop:
    email: str
    api_key: str
    captured: list[str]
    authorized: list[str]


@pytest.fixture(scope="module")
def shop(stack: RunningStack) -> Shop:
    merchant = stack.environment.create_merchant("Dashboard Shop")
    email = f"owner-{uuid.uuid4().hex[:8]}@dashboard.test"
    asyncio.run(ensure_user(stack.environment.settings.database_url, email, PASSWORD,
                            "merchant", merchant.merchant_id))
    headers = {"Authorization": f"Bearer {merchant.api_key}"}
    made: dict[bool, list[str]] = {True: [], False: []}
    with httpx.Client(base_url=stack.base_url, headers=headers, timeout=10) as api:
        for index, capture in enumerate([True, True, True, False, False]):
            response = api.post("/v1/payments", json={
                "amount": 5000 + index, "currency": "usd", "payment_method": CARD,
                "capture": capture, "description": f"dashboard order {index}"})
            assert response.status_code == 201, response.text
            made[capture].append(response.json()["transaction"]["id"])
    return Shop(email, merchant.api_key, made[True], made[False])


def page(stack: RunningStack, shop: Shop, name: str) -> AppTest:
    app = AppTest.from_file(str(PAGES / "app_pages" / f"{name}.py"), default_timeout=30)
    app.session_state["auth"] = client.login(stack.base_url, shop.email, PASSWORD)
    return app.run()


def texts(app: AppTest) -> str:
    parts = [e.value for kind in (app.success, app.error, app.info, app.warning) for e in kind]
    return " | ".join(str(p) for p in parts)


def button(app: AppTest, key: str) -> Any:
    return next(b for b in app.button if b.key == key)


def eventually(check: Callable[[], bool], seconds: float = 15) -> None:
    deadline = time.monotonic() + seconds
    while not check():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.5)


def test_login_page_signs_in_and_refuses_a_wrong_password(stack: RunningStack,
                                                          shop: Shop) -> None:
    app = AppTest.from_file(str(PAGES / "app.py"), default_timeout=30)
    app.session_state["api_base_url"] = stack.base_url
    app.run()
    app.text_input(key="login_email").input(shop.email)
    app.text_input(key="login_password").input("wrong password!")
    app.button[0].click().run()
    assert "Wrong email or password" in texts(app)
    assert "auth" not in app.session_state
    app.text_input(key="login_password").input(PASSWORD)
    app.button[0].click().run()
    assert not app.exception, app.exception
    assert app.session_state["auth"].email == shop.email
    assert any(b.key == "nav_logout" for b in app.sidebar.button)


def test_overview_shows_kpi_cards_and_charts(stack: RunningStack, shop: Shop) -> None:
    app = page(stack, shop, "overview")
    assert not app.exception, app.exception
    labels = [metric.label for metric in app.metric]
    assert labels[:4] == ["Gross volume", "Net revenue", "Payments", "Approval rate"]
    app.radio(key="ov_granularity").set_value("month").run()
    assert not app.exception


def test_transactions_filters_by_status_and_refunds_part_of_a_payment(
    stack: RunningStack, shop: Shop
) -> None:
    app = page(stack, shop, "transactions")
    app.selectbox(key="tx_status").set_value("authorized")
    app.button[0].click().run()  # Apply filters
    shown = set(app.dataframe[0].value["id"])
    assert shown == set(shop.authorized)
    app.selectbox(key="tx_status").set_value("captured")
    app.button[0].click().run()
    target = shop.captured[0]
    app.selectbox(key="tx_selected").set_value(target).run()
    app.number_input(key="tx_refund_amount").set_value(10.0).run()
    button(app, "tx_refund").click().run()
    assert "Refund 10.00 USD" in texts(app)
    button(app, "tx_confirm").click().run()
    assert not app.exception, app.exception
    assert "Refund done" in texts(app), texts(app)
    payment = httpx.get(f"{stack.base_url}/v1/payments/{target}",
                        headers={"Authorization": f"Bearer {shop.api_key}"}).json()
    assert payment["refunded_amount"] == 1000 and payment["status"] == "captured"


def test_a_refund_above_what_remains_is_refused_before_asking(stack: RunningStack,
                                                              shop: Shop) -> None:
    app = page(stack, shop, "transactions")
    app.text_input(key="tx_open_id").input(shop.captured[1]).run()
    app.number_input(key="tx_refund_amount").set_value(999.0).run()
    button(app, "tx_refund").click().run()
    assert "At most 50.01 USD can be refunded" in texts(app)
    assert not any(b.key == "tx_confirm" for b in app.button)


def test_capture_part_and_void_an_authorization(stack: RunningStack, shop: Shop) -> None:
    app = page(stack, shop, "transactions")
    app.text_input(key="tx_open_id").input(shop.authorized[0]).run()
    app.number_input(key="tx_capture_amount").set_value(20.0).run()
    button(app, "tx_capture").click().run()
    button(app, "tx_confirm").click().run()
    assert "Capture done: the payment is now captured" in texts(app), texts(app)
    app.text_input(key="tx_open_id").input(shop.authorized[1]).run()
    button(app, "tx_void").click().run()
    button(app, "tx_cancel").click().run()
    assert not any(b.key == "tx_confirm" for b in app.button)
    button(app, "tx_void").click().run()
    button(app, "tx_confirm").click().run()
    assert "Void done: the payment is now voided" in texts(app), texts(app)


def test_invalid_filters_are_explained_not_sent(stack: RunningStack, shop: Shop) -> None:
    app = page(stack, shop, "transactions")
    app.text_input(key="tx_currency").input("usd")
    app.number_input(key="tx_min").set_value(50.0)
    app.number_input(key="tx_max").set_value(10.0)
    app.button[0].click().run()
    assert "The minimum amount is above the maximum." in texts(app)
    assert not app.dataframe


@pytest.mark.parametrize("name", ["risk", "webhooks", "payouts", "exports"])
def test_every_other_page_renders_without_errors(stack: RunningStack, shop: Shop,
                                                 name: str) -> None:
    app = page(stack, shop, name)
    assert not app.exception, app.exception
    assert not app.error, texts(app)


def test_exports_builds_a_csv_of_the_filtered_transactions(stack: RunningStack,
                                                           shop: Shop) -> None:
    app = page(stack, shop, "exports")
    app.selectbox(key="ex_status").set_value("captured")
    app.button[0].click().run()
    assert not app.exception, app.exception
    csv_text = app.session_state["ex_csv"]
    assert csv_text.startswith("id,created_at,status")
    assert all(",captured," in line for line in csv_text.strip().splitlines()[1:])


def test_an_ended_session_sends_the_user_back_to_login(stack: RunningStack, shop: Shop) -> None:
    app = AppTest.from_file(str(PAGES / "app_pages" / "overview.py"), default_timeout=30)
    auth = client.login(stack.base_url, shop.email, PASSWORD)
    client.ApiClient(auth).logout()
    app.session_state["auth"] = auth
    app.run()
    assert "auth" not in app.session_state
    assert "Please log in." in texts(app)
