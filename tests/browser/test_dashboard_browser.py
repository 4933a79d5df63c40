"""The dashboard in a real browser: headless Chromium (Debian's ``chromium``) driven by
Playwright, against the real stack. Logs in, filters transactions, refunds one and sees its new
status. Screenshots of every step go to ``.payflow/artifacts/`` (CI keeps them)."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Page, expect, sync_playwright

from payflow.cli.user import ensure_user
from payflow.settings import REPO_ROOT
from payflow.supervisor import free_port
from tests.harness import RunningStack

pytestmark = pytest.mark.integration
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu",
                  "--disable-background-networking", "--disable-component-update",
                  "--disable-sync", "--no-first-run", "--disable-dev-shm-usage"]
expect.set_options(timeout=20_000)
ARTIFACTS = REPO_ROOT / ".payflow" / "artifacts"
PASSWORD = "browser test password"
CARD = {"type": "card", "card": {"number": "4242424242424242", "exp_month": 12,
                                 "exp_year": 2030, "cvc": "123"}}


@pytest.fixture(scope="module")
def dashboard_url(stack: RunningStack) -> str:
    port = free_port()
    stack.supervisor.start("dashboard", "dashboard",
                           extra_env={"PAYFLOW_DASHBOARD_PORT": str(port)})
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{url}/_stcore/health", timeout=2).status_code == 200:
                return url
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    pytest.fail(f"the dashboard did not start: {stack.log('dashboard')[-2000:]}")


@pytest.fixture(scope="module")
def owner(stack: RunningStack) -> tuple[str, str]:
    """A merchant user and one captured payment: (email, payment id)."""
    merchant = stack.environment.create_merchant("Browser Shop")
    email = f"browser-{uuid.uuid4().hex[:8]}@shop.test"
    asyncio.run(ensure_user(stack.environment.settings.database_url, email, PASSWORD,
                            "merchant", merchant.merchant_id))
    created = httpx.post(f"{stack.base_url}/v1/payments", timeout=10,
                         headers={"Authorization": f"Bearer {merchant.api_key}"},
                         json={"amount": 4200, "currency": "usd", "payment_method": CARD})
    assert created.status_code == 201, created.text
    return email, created.json()["transaction"]["id"]


@pytest.fixture
def page() -> Iterator[Page]:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS)
        try:
            tab = browser.new_page(viewport={"width": 1400, "height": 1000})
            tab.set_default_timeout(20_000)
            yield tab
        finally:
            browser.close()


def shot(page: Page, name: str) -> Path:
    path = ARTIFACTS / f"dashboard-{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path


def test_a_merchant_logs_in_filters_refunds_and_sees_the_new_status(
    page: Page, dashboard_url: str, owner: tuple[str, str]
) -> None:
    email, payment_id = owner
    page.goto(dashboard_url)
    page.get_by_label("Email", exact=True).fill(email)
    page.get_by_label("Password", exact=True).fill(PASSWORD)
    shot(page, "1-login")
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_role("heading", name="Overview")).to_be_visible()
    # The KPI card (the revenue chart's legend may say it too, once there is data).
    expect(page.get_by_text("Gross volume").first).to_be_visible()
    shot(page, "2-overview")

    page.get_by_role("link", name="Transactions").click()
    expect(page.get_by_role("heading", name="Transactions")).to_be_visible()
    page.get_by_label("Search: id, last4, processor ref").fill(payment_id)
    page.get_by_role("button", name="Apply filters").click()
    expect(page.get_by_text("Page 1 of 1 · 1 payments")).to_be_visible()
    shot(page, "3-filtered")

    open_by_id = page.get_by_label("…or open by id")
    open_by_id.fill(payment_id)
    open_by_id.press("Enter")
    expect(page.get_by_role("heading", name=f"Payment {payment_id}")).to_be_visible()
    page.get_by_role("button", name="Refund…").click()
    expect(page.get_by_text(f"Refund 42.00 USD of payment {payment_id}?")).to_be_visible()
    shot(page, "4-confirm")
    page.get_by_role("button", name="Confirm refund").click()
    expect(page.get_by_text("Refund done: the payment is now refunded")).to_be_visible()
    expect(page.get_by_text("No actions for a refunded payment.")).to_be_visible()
    shot(page, "5-refunded")
